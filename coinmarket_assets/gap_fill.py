"""Gap filling as the UI shows it: a sensor that requests one run of the daily job for the days
missing inside the coins' stored histories, and that same run as ``coinmarket coverage --fill``
starts it from a shell."""

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from coinmarket_assets.coverage import (
    GapFill,
    describe_gaps,
    fetchable_gaps,
    gap_fill,
    stored_coverage,
)
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.schedules import daily_market_job, partition_range_tags
from coinmarket_assets.sensors import TICKERS_IN_TAG, source_lock_if_free
from coinmarket_assets.storage.database import database_url

GAP_FILL_TAG = "coinmarket/gap_fill"
INTERVAL_SECONDS = 3600
# Queued runs count too: a chunked backfill's days look like gaps until its queued runs store
# them. Not NOT_STARTED: a run that never got submitted would block the sensor forever.
UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def gap_fill_request(fill: GapFill) -> RunRequest:
    """One run of the daily job over ``fill.days`` for the gaps' coins only, by CoinMarketCap id.
    The run key is the gaps: Dagster starts a run for a set of gaps once, so gaps the source
    cannot fill are not fetched again and again."""
    gaps = ";".join(f"{coin.coin_id}:{gap}" for coin, gap in fill.gaps)
    return RunRequest(
        run_key=f"gap-fill-{hashlib.sha256(gaps.encode()).hexdigest()[:16]}",
        run_config={
            "resources": {
                "pipeline_settings": {"config": {"tickers": ",".join(map(str, fill.coin_ids))}}
            }
        },
        tags={
            **partition_range_tags(fill.days.first.isoformat(), fill.days.last.isoformat()),
            GAP_FILL_TAG: describe_gaps(fill.gaps, limit=TICKERS_IN_TAG),
        },
    )


@contextmanager
def execute_command(request: RunRequest) -> Iterator[list[str]]:
    """The arguments of ``dagster`` that execute ``request``'s run in the instance of
    DAGSTER_HOME and wait for it; its run config is in a file that lasts for the block."""
    with tempfile.TemporaryDirectory(prefix="coinmarket-gap-fill-") as folder:
        config = Path(folder) / "run_config.yaml"
        config.write_text(json.dumps(request.run_config))  # JSON is YAML
        yield [
            "job",
            "execute",
            "-m",
            "coinmarket_assets.definitions",
            "-j",
            daily_market_job.name,
            "-c",
            str(config),
            "--tags",
            json.dumps(request.tags),
        ]


@sensor(
    job=daily_market_job,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.STOPPED,
    description="Fills the gaps `coinmarket coverage` lists (days missing between a coin's first "
    "and last stored candle): requests one run of daily_market_data, tagged coinmarket/gap_fill, "
    "that fetches those coins (by CoinMarketCap id) from the first missing day to their newest "
    "stored day and recomputes their statistics, and the rankings among every stored coin. A "
    "set of gaps is requested once: gaps the source cannot fill are not fetched again. Leaves "
    "out days before COINMARKET_START_DATE and coins not in the universe. Looks hourly, when no "
    "run is queued or in progress. Stopped by default (each fill re-fetches from the source): "
    "switch it on here; `coinmarket coverage --fill` starts the same run from a shell.",
)
def gap_fill_sensor(
    context: SensorEvaluationContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> RunRequest | SkipReason:
    """Requests the run that fills the stored history's gaps, once per set of gaps."""
    busy = context.instance.get_run_records(RunsFilter(statuses=UNFINISHED), limit=1)
    if busy:
        run = busy[0].dagster_run
        return SkipReason(
            f"Run {run.run_id[:8]} of {run.job_name} is {run.status.value.lower()}: gaps are "
            "looked for when no run is queued or in progress"
        )
    settings = pipeline_settings.settings
    url = database_url()
    gaps, before_start = fetchable_gaps(stored_coverage(url), settings.start_date)
    if before_start:
        context.log.info(
            f"Days before COINMARKET_START_DATE {settings.start_date} cannot be fetched: "
            f"{describe_gaps(before_start, limit=TICKERS_IN_TAG)}"
        )
    if not gaps:
        return SkipReason("No gap to fill: every coin has a candle on each day it should")
    with source_lock_if_free(url, holder="gap fill sensor") as free:
        if not free:
            return SkipReason("A run is using the market data source; looking at the next tick")
        universe = source.universe(settings)
    fill, outside = gap_fill(gaps, {coin.coin_id for coin in universe})
    if outside:
        context.log.info(
            "Gaps of coins not in the universe (COINMARKET_TICKERS) are left alone: "
            f"{describe_gaps(outside, limit=TICKERS_IN_TAG)}"
        )
    if fill is None:
        return SkipReason("Only coins outside the universe have gaps")
    context.log.info(f"Gaps to fill over {fill.days}: {describe_gaps(fill.gaps)}")
    return gap_fill_request(fill)
