"""The whole market's figures of each day: CoinMarketCap's global metrics."""

from datetime import date

from dagster import AssetExecutionContext, Output

from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import daily_table_asset, days_between, run_days
from coinmarket_assets.resources import MarketDataSourceResource
from coinmarket_assets.sources.base import SourceError

DAYS_NAMED = 20  # days without figures named in the log; the rest are counted


@daily_table_asset(group_name="market_context")
def global_metrics(
    context: AssetExecutionContext, source: MarketDataSourceResource
) -> Output[Frame | None]:
    """The whole market as it stood at the end of day D: total and altcoin market cap and 24 h
    volume in USD, Bitcoin's and Ether's dominance, active coins, exchanges and market pairs; a
    day is replaced whole.

    Context, like the listings outside top:N: when the source has no global metrics or fails to
    give them, the run stores none, keeps the stored rows and goes on. A day the source has not
    published yet gets no row.
    """
    first_day, last_day = run_days(context)
    days = (last_day - first_day).days + 1
    try:
        with source.exclusive(context):
            metrics = source.source.global_metrics(first_day, last_day)
    except SourceError as error:
        # Context only: the candles and statistics must not wait for it, nor fail with it.
        context.log.warning(f"no global metrics stored: {error}")
        return Output(None, metadata=_metadata(days, [], str(error)))
    missing = _days_without(metrics, first_day, last_day)
    if missing:
        context.log.warning(f"the source has no global metrics of {_named(missing)}")
    return Output(metrics, metadata=_metadata(days, missing, ""))


def _metadata(days: int, missing: list[date], unavailable: str) -> dict[str, object]:
    return {
        "run_days": days,
        "run_days_without_global_metrics": days if unavailable else len(missing),
        "days_without_global_metrics": _named(missing) if missing else "",
        "global_metrics_unavailable": unavailable,
    }


def _days_without(metrics: Frame, first_day: date, last_day: date) -> list[date]:
    have = set(metrics["trade_date"].dt.date)
    return [day for day in days_between(first_day, last_day) if day not in have]


def _named(missing: list[date]) -> str:
    named = ", ".join(map(str, missing[:DAYS_NAMED]))
    more = f" and {len(missing) - DAYS_NAMED} more" if len(missing) > DAYS_NAMED else ""
    return f"{len(missing)} day(s), not published yet or not in its data: {named}{more}"
