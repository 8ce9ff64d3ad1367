"""CoinMarketCap's listing of each day, as it stood that day."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from dagster import AssetExecutionContext, MetadataValue, Output

from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import daily_table_asset, days_between, run_days
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.settings import Settings
from coinmarket_assets.sources.base import (
    HISTORICAL_LISTING_COLUMNS,
    NoHistoricalListingsError,
    SourceError,
)
from coinmarket_assets.storage import universe
from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.io_manager import FrameStream, KeepStoredRows

DAYS_NAMED = 20  # days without a listing named in the log; the rest are counted
# Listing rows a batch holds at most: a run fetches and writes depth x days rows in batches of
# whole days, so that its memory follows this and not the run's length.
LISTING_ROWS_PER_BATCH = 250_000


@daily_table_asset(group_name="market_data")
def historical_listings(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> Output[FrameStream | None]:
    """CoinMarketCap's listing of day D as it stood on D: the COINMARKET_LISTING_DEPTH best-ranked
    coins with rank, price, market cap, volume, supplies and tags; a day is replaced whole.

    With COINMARKET_TICKERS=top:N each day's members are its coins ranked N or better. In the
    other modes the listing is context: when the source has none or fails to give it, the run
    stores none, keeps the stored listings and goes on with the candles.
    """

    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    with connect() as conn:
        universe.record_top_n(conn, settings.point_in_time_top)
    metadata = {
        "settings": MetadataValue.json(settings.as_metadata()),
        "listing_depth": settings.listing_depth,
    }
    if settings.listing_depth == 0:  # top:N refuses a depth of 0 (settings.py)
        unavailable = "COINMARKET_LISTING_DEPTH=0: no listing fetched"
        metadata |= {"run_days_without_listing": 0, "listings_unavailable": unavailable}
        return Output(None, metadata=metadata)
    fetch = _ListingFetch(context, source, settings, first_day, last_day)
    return Output(FrameStream(fetch.batches, summary=fetch.summary), metadata=metadata)


@dataclass
class _ListingFetch:
    """The run's listings, fetched and written batch by batch (the IO manager consumes
    ``batches``); what was missing is known once they are consumed."""

    context: AssetExecutionContext
    source: MarketDataSourceResource
    settings: Settings
    first_day: date
    last_day: date
    listed: set[date] = field(default_factory=set)
    unavailable: str = ""

    def batches(self) -> Iterator[Frame]:
        self.listed, self.unavailable = set(), ""
        depth = self.settings.listing_depth
        days = max(1, LISTING_ROWS_PER_BATCH // depth)
        try:
            with self.source.exclusive(self.context):
                fetched = self.source.source.historical_listing_batches(
                    self.first_day, self.last_day, depth, days
                )
                for listings in fetched:
                    rows = _table_rows(listings)
                    self.listed.update(rows["trade_date"].dt.date)
                    yield rows
        except SourceError as error:
            self._raise_unless_context(error)
        missing = self.missing()
        if missing:
            self.context.log.warning(_missing_line(missing, self.settings.point_in_time_top))

    def _raise_unless_context(self, error: SourceError) -> None:
        top_n = self.settings.point_in_time_top
        if top_n is not None and isinstance(error, NoHistoricalListingsError):
            raise SourceError(
                f"COINMARKET_TICKERS=top:{top_n} takes each day's members from the historical "
                f"listings, which the source cannot give: {error}"
            ) from error
        if top_n is not None:
            raise error
        # Elsewhere the listing is context only: the run's candles must not wait for it, nor
        # fail with it; the stored listings stay, and the materialization says why.
        self.unavailable = str(error)
        raise KeepStoredRows(f"no historical listings stored: {error}") from error

    def missing(self) -> list[date]:
        if self.unavailable:
            return []
        days = days_between(self.first_day, self.last_day)
        return [day for day in days if day not in self.listed]

    def summary(self) -> dict[str, object]:
        return {
            "run_days_without_listing": len(self.missing()),
            "listings_unavailable": self.unavailable,
        }


def _table_rows(listings: Frame) -> Frame:
    """The table's columns and types, by day and rank (the source already sorted and checked)."""
    types = {"trade_date": "datetime64[us]", "coin_id": "int64", "rank": "int64"}
    rows = listings[HISTORICAL_LISTING_COLUMNS].astype(types)
    return rows.sort_values(["trade_date", "rank", "coin_id"], ignore_index=True)


def _missing_line(missing: list[date], top_n: int | None) -> str:
    named = ", ".join(map(str, missing[:DAYS_NAMED]))
    more = f" and {len(missing) - DAYS_NAMED} more" if len(missing) > DAYS_NAMED else ""
    effect = "; these days have no members" if top_n is not None else ""
    return f"the source has no listing of {len(missing)} of the run's days: {named}{more}{effect}"
