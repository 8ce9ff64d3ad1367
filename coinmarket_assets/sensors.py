"""Sensors: history for coins that join the universe, and alerts when a run fails."""

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from coinmarket_assets.alerts import alert_webhook, failure_message, post_alert
from coinmarket_assets.partitions import daily_partitions
from coinmarket_assets.resources import (
    SOURCE_LOCK,
    MarketDataSourceResource,
    PipelineSettingsResource,
)
from coinmarket_assets.schedules import daily_market_job, partition_range_tags
from coinmarket_assets.settings import WEBHOOK_ENV, load_time_settings
from coinmarket_assets.sources import Coin
from coinmarket_assets.storage.database import connect, database_url
from coinmarket_assets.storage.locks import LOCK_NAMESPACE, lock_key

NEW_COINS_TAG = "coinmarket/new_coins"
TICKERS_IN_TAG = 20
# Queued runs count too: a chunked backfill's days look unfetched until its queued runs store
# them. Not NOT_STARTED: a run that never got submitted would block the sensors forever.
UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def run_in_progress(instance: DagsterInstance, looking_for: str) -> SkipReason | None:
    """Why a sensor waits, if a run is queued or in progress."""
    busy = instance.get_run_records(RunsFilter(statuses=UNFINISHED), limit=1)
    if not busy:
        return None
    run = busy[0].dagster_run
    return SkipReason(
        f"Run {run.run_id[:8]} of {run.job_name} is {run.status.value.lower()}: {looking_for} "
        "when no run is queued or in progress"
    )


def earliest_stored_days(url: str) -> dict[int, date]:
    """Each stored coin's first candle day."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT coin_id, min(trade_date) FROM historical_trade_data GROUP BY coin_id"
        ).fetchall()
    return {int(coin_id): day for coin_id, day in rows}


def newest_day() -> date | None:
    """The newest daily partition (the last completed UTC day), if any."""
    key = daily_partitions.get_last_partition_key()
    return date.fromisoformat(key) if key else None


@contextmanager
def source_lock_if_free(url: str, holder: str = "universe sensor") -> Iterator[bool]:
    """Hold the source lock for the block if no run step holds it; yields whether it does.

    A sensor must not wait: a backfill can hold the lock for hours, longer than a tick may last.
    """
    application = f"coinmarket market_data_source: {holder}"
    with connect(url, autocommit=True, application_name=application) as conn:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, lock_key(SOURCE_LOCK)]
        ).fetchone()
        yield bool(row and row[0])  # closing the connection releases the lock


def coins_lacking_history(
    universe: Sequence[Coin], first_days: dict[int, date], schedule_first_day: date
) -> list[Coin]:
    """The universe's coins with no candle stored before the days the daily schedule fetches
    (it would give a newly added coin only those)."""
    return [
        coin
        for coin in universe
        if coin.coin_id not in first_days or first_days[coin.coin_id] >= schedule_first_day
    ]


def history_request(
    coins: Sequence[Coin], first_day: date, last_day: date, top_n: int | None = None
) -> RunRequest:
    """One run of the daily job over first_day..last_day for ``coins`` only (by CoinMarketCap id,
    which no symbol can make ambiguous), or with ``top_n`` a ``top:N`` run (membership decides
    what it fetches, ``coins`` are what it lacked). The run key is the set of coins (and N):
    Dagster starts a run for a set once."""
    ids = ",".join(str(coin.coin_id) for coin in sorted(coins, key=lambda coin: coin.coin_id))
    run_tickers = ids if top_n is None else f"top:{top_n}"
    key = ids if top_n is None else f"{run_tickers}:{ids}"
    tickers = [coin.ticker for coin in coins]
    shown = ",".join(tickers[:TICKERS_IN_TAG])
    if len(tickers) > TICKERS_IN_TAG:
        shown += f" and {len(tickers) - TICKERS_IN_TAG} more"
    return RunRequest(
        run_key=f"new-coins-{hashlib.sha256(key.encode()).hexdigest()[:16]}",
        run_config={"resources": {"pipeline_settings": {"config": {"tickers": run_tickers}}}},
        tags={
            **partition_range_tags(first_day.isoformat(), last_day.isoformat()),
            NEW_COINS_TAG: shown,
        },
    )


# A member day without its candle; count(h.coin_id) counts the joined candles only.
_MEMBERS_WITHOUT_CANDLES = """
    SELECT l.coin_id,
           (array_agg(l.ticker ORDER BY l.trade_date DESC))[1],
           (array_agg(l.coin_name ORDER BY l.trade_date DESC))[1],
           (array_agg(l.slug ORDER BY l.trade_date DESC))[1],
           min(l.trade_date)
    FROM historical_listings l
    LEFT JOIN historical_trade_data h ON h.coin_id = l.coin_id AND h.trade_date = l.trade_date
    WHERE l.rank <= %(top_n)s AND l.trade_date BETWEEN %(first)s AND %(last)s
    GROUP BY l.coin_id
    HAVING count(h.coin_id) = 0
    ORDER BY l.coin_id
"""


def members_lacking_candles(
    url: str, first_day: date, last_day: date, top_n: int
) -> list[tuple[Coin, date]]:
    """The coins ranked ``top_n`` or better in a stored listing of first_day..last_day without a
    candle stored on any of those member days (N was raised, or a run stored the listing but
    failed before the candles), each with its first member day there, by id."""
    with connect(url) as conn:
        rows = conn.execute(
            _MEMBERS_WITHOUT_CANDLES, {"top_n": top_n, "first": first_day, "last": last_day}
        ).fetchall()
    return [(Coin(coin_id, ticker, name, slug), day) for coin_id, ticker, name, slug, day in rows]


@sensor(
    job=daily_market_job,
    minimum_interval_seconds=load_time_settings().universe_sensor_interval,
    default_status=DefaultSensorStatus.RUNNING
    if load_time_settings().universe_sensor_enabled
    else DefaultSensorStatus.STOPPED,
    description="When coins join the universe (new COINMARKET_TICKERS, or coins entering the top "
    "COINMARKET_TOP_N), requests one run that stores their history over the days already stored "
    "for the other coins; the rankings of those days are recomputed among every stored coin. "
    "With COINMARKET_TICKERS=top:N, membership comes only from the stored historical_listings "
    "(the daily run fetches a new member's lookback itself): it requests one top:N run from the "
    "first stored member day whose coin has no candle on any of its member days (N was raised, "
    "or a run failed between the listing and the candles), when no run is queued or in "
    "progress. Looks every COINMARKET_UNIVERSE_SENSOR_INTERVAL seconds (default 3600), when no "
    "run is using the market data source. COINMARKET_UNIVERSE_SENSOR_ENABLED=false: stopped by "
    "default.",
)
def universe_sensor(
    context: SensorEvaluationContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> RunRequest | SkipReason:
    """Requests the history of coins that joined the universe, once per set of coins."""
    settings = pipeline_settings.settings
    newest = newest_day()
    if newest is None:
        return SkipReason("No day has ended since COINMARKET_START_DATE")
    url = database_url()
    first_days = earliest_stored_days(url)
    if not first_days:
        return SkipReason("No candle is stored yet: the first history is a backfill you start")
    history_start = max(min(first_days.values()), daily_partitions.start.date())
    schedule_first_day = newest - timedelta(days=settings.resync_days)
    if history_start >= schedule_first_day:
        return SkipReason("Only the days the daily schedule fetches are stored: nothing to add")
    top_n = settings.point_in_time_top
    if top_n is not None:
        return _new_members_request(context, url, schedule_first_day, newest, top_n)
    with source_lock_if_free(url) as free:
        if not free:
            return SkipReason("A run is using the market data source; looking at the next tick")
        universe = source.universe(settings)
    lacking = coins_lacking_history(universe, first_days, schedule_first_day)
    if not lacking:
        return SkipReason(f"Each of the universe's {len(universe)} coins has its history")
    context.log.info(f"History to store for {', '.join(c.ticker for c in lacking)}")
    return history_request(lacking, history_start, newest)


def _new_members_request(
    context: SensorEvaluationContext,
    url: str,
    schedule_first_day: date,
    newest: date,
    top_n: int,
) -> RunRequest | SkipReason:
    """top:N: one run from the first member day of the members without candles to the newest
    day; today's listing is never asked (it would look ahead of every stored day).

    The days the daily schedule fetches are left to it: between its listing step and its
    candle step their new members have no candle yet. Waits for queued and running runs too,
    which may be storing a listing before its candles.
    """
    waiting = run_in_progress(context.instance, "members without candles are looked for")
    if waiting is not None:
        return waiting
    before_schedule = schedule_first_day - timedelta(days=1)
    lacking = members_lacking_candles(url, daily_partitions.start.date(), before_schedule, top_n)
    if not lacking:
        return SkipReason(
            f"Each coin of the stored listings' top {top_n} has candles on its member days "
            f"(up to {before_schedule}; membership comes only from historical_listings)"
        )
    coins = [coin for coin, _ in lacking]
    first = min(day for _, day in lacking)
    context.log.info(
        f"Members of the top {top_n} without candles from {first}: "
        f"{', '.join(c.ticker for c in coins)}"
    )
    return history_request(coins, first, newest, top_n)


@run_failure_sensor(
    name="run_failure_alert",
    default_status=DefaultSensorStatus.RUNNING,
    description="Logs a short message for each failed run (job, days, failed steps, first error, "
    "link to the run) and posts it to COINMARKET_ALERT_WEBHOOK (Slack-compatible JSON) when set.",
)
def run_failure_alert(context: RunFailureSensorContext) -> None:
    """Logs the failure of a run and posts it to the alert webhook, if any."""
    message = failure_message(
        context.dagster_run, context.get_step_failure_events(), context.failure_event
    )
    context.log.warning(message)
    webhook = alert_webhook()
    if webhook is None:
        context.log.info(f"{WEBHOOK_ENV} is not set: the alert is only logged")
        return
    post_alert(webhook, message, context.log)
