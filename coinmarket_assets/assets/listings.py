"""CoinMarketCap's listing of each day, as it stood that day."""

from datetime import date, timedelta

from dagster import AssetExecutionContext, MetadataValue, Output

from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.settings import Settings
from coinmarket_assets.sources.base import (
    HISTORICAL_LISTING_COLUMNS,
    NoHistoricalListingsError,
    SourceError,
)
from coinmarket_assets.storage import universe
from coinmarket_assets.storage.database import connect

DAYS_NAMED = 20  # days without a listing named in the log; the rest are counted


@daily_table_asset(group_name="market_data")
def historical_listings(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> Output[Frame | None]:
    """CoinMarketCap's listing of day D as it stood on D: the COINMARKET_LISTING_DEPTH best-ranked
    coins with rank, price, market cap, volume and supplies; a day is replaced whole.

    With COINMARKET_TICKERS=top:N each day's members are its coins ranked N or better. In the
    other modes the listing is context: when the source has none or fails to give it, the run
    stores none, keeps the stored listings and goes on with the candles.
    """

    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    top_n = settings.point_in_time_top
    listings, unavailable = None, "COINMARKET_LISTING_DEPTH=0: no listing fetched"
    if settings.listing_depth > 0:  # top:N refuses a depth of 0 (settings.py)
        listings, unavailable = _fetch(context, source, settings, first_day, last_day)
    with connect() as conn:
        universe.record_top_n(conn, top_n)
    missing = [] if listings is None else _days_without(listings, first_day, last_day)
    if missing:
        context.log.warning(_missing_line(missing, top_n))
    return Output(
        listings,
        metadata={
            "settings": MetadataValue.json(settings.as_metadata()),
            "listing_depth": settings.listing_depth,
            "run_days_without_listing": len(missing),
            "listings_unavailable": unavailable or "",
        },
    )


def _fetch(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    settings: Settings,
    first_day: date,
    last_day: date,
) -> tuple[Frame | None, str | None]:
    """The run days' listings, or None and why when the source has none (not with top:N)."""
    try:
        with source.exclusive(context):
            listings = source.source.historical_listings(
                first_day, last_day, settings.listing_depth
            )
    except SourceError as error:
        top_n = settings.point_in_time_top
        if top_n is not None and isinstance(error, NoHistoricalListingsError):
            raise SourceError(
                f"COINMARKET_TICKERS=top:{top_n} takes each day's members from the historical "
                f"listings, which the source cannot give: {error}"
            ) from error
        if top_n is not None:
            raise
        # Elsewhere the listing is context only: the run's candles must not wait for it, nor
        # fail with it; the stored listings stay, and the materialization says why.
        context.log.warning(f"no historical listings stored: {error}")
        return None, str(error)
    return _table_rows(listings), None


def _table_rows(listings: Frame) -> Frame:
    """The table's columns and types, by day and rank (the source already sorted and checked)."""
    types = {"trade_date": "datetime64[us]", "coin_id": "int64", "rank": "int64"}
    rows = listings[HISTORICAL_LISTING_COLUMNS].astype(types)
    return rows.sort_values(["trade_date", "rank", "coin_id"], ignore_index=True)


def _days_without(listings: Frame, first_day: date, last_day: date) -> list[date]:
    listed = set(listings["trade_date"].dt.date)
    days = (first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1))
    return [day for day in days if day not in listed]


def _missing_line(missing: list[date], top_n: int | None) -> str:
    named = ", ".join(map(str, missing[:DAYS_NAMED]))
    more = f" and {len(missing) - DAYS_NAMED} more" if len(missing) > DAYS_NAMED else ""
    effect = "; these days have no members" if top_n is not None else ""
    return f"the source has no listing of {len(missing)} of the run's days: {named}{more}{effect}"
