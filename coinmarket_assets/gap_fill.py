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
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from coinmarket_assets.coverage import (
    Gap,
    GapFill,
    describe_gaps,
    ever_members,
    fetchable_gaps,
    gap_fills,
    stored_coverage,
)
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.schedules import daily_market_job, partition_range_tags
from coinmarket_assets.sensors import TICKERS_IN_TAG, run_in_progress, source_lock_if_free
from coinmarket_assets.settings import Settings
from coinmarket_assets.storage.database import database_url

GAP_FILL_TAG = "coinmarket/gap_fill"
INTERVAL_SECONDS = 3600


def gap_fill_request(fill: GapFill) -> RunRequest:
    """One run of the daily job over ``fill.days`` for the gaps' coins only, by CoinMarketCap id
    (a ``top:N`` run in that mode). The run key is the gaps: Dagster starts a run for a set of
    gaps once, so gaps the source cannot fill are not fetched again and again."""
    gaps = ";".join(f"{coin.coin_id}:{gap}" for coin, gap in fill.gaps)
    if fill.top_n:
        gaps = f"top:{fill.top_n};{gaps}"
    return RunRequest(
        run_key=f"gap-fill-{hashlib.sha256(gaps.encode()).hexdigest()[:16]}",
        run_config={
            "resources": {"pipeline_settings": {"config": {"tickers": fill.tickers_setting}}}
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
    "and last stored candle, up to its end for a coin that ended): requests a run of "
    "daily_market_data, tagged coinmarket/gap_fill, that fetches those coins (by CoinMarketCap "
    "id) from the first missing day to their newest stored day and recomputes their statistics, "
    "and the rankings among every stored coin; a coin that ended gets a run that stops on its "
    "end day, never later. With COINMARKET_TICKERS=top:N it is one top:N run, for the coins "
    "ever ranked N or better in the stored listings. A set of gaps is requested once: gaps the "
    "source cannot fill are not fetched again. Leaves out days before COINMARKET_START_DATE and "
    "coins not in the universe. Looks hourly, when no run is queued or in progress. Stopped by "
    "default (each fill re-fetches from the source): switch it on here; `coinmarket coverage "
    "--fill` starts the same runs from a shell.",
)
def gap_fill_sensor(
    context: SensorEvaluationContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> list[RunRequest] | SkipReason:
    """Requests the runs that fill the stored history's gaps, once per set of gaps."""
    waiting = run_in_progress(context.instance, "gaps are looked for")
    if waiting is not None:
        return waiting
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
    if settings.point_in_time_top is None:
        with source_lock_if_free(url, holder="gap fill sensor") as free:
            if not free:
                return SkipReason("A run is using the market data source; looking at the next tick")
            fills, outside = universe_gap_fills(url, gaps, settings, source)
    else:
        fills, outside = universe_gap_fills(url, gaps, settings, source)
    if outside:
        context.log.info(
            f"Gaps of coins not in the universe ({universe_name(settings)}) are left alone: "
            f"{describe_gaps(outside, limit=TICKERS_IN_TAG)}"
        )
    if not fills:
        return SkipReason("Only coins outside the universe have gaps")
    for fill in fills:
        context.log.info(f"Gaps to fill over {fill.days}: {describe_gaps(fill.gaps)}")
    return [gap_fill_request(fill) for fill in fills]


def universe_gap_fills(
    url: str, gaps: list[Gap], settings: Settings, source: MarketDataSourceResource
) -> tuple[list[GapFill], list[Gap]]:
    """The runs for the gaps of the universe's coins, and the other coins' gaps. top:N: the
    coins ever ranked N or better in the stored listings, the source is not asked; otherwise
    the coins COINMARKET_TICKERS names, as the source lists them (the caller holds the source
    lock)."""
    top_n = settings.point_in_time_top
    if top_n is None:
        universe = {coin.coin_id for coin in source.universe(settings)}
    else:
        universe = ever_members(url, {coin.coin_id for coin, _ in gaps}, top_n)
    return gap_fills(gaps, universe, top_n)


def universe_name(settings: Settings) -> str:
    """What the universe is, for messages about the coins outside it."""
    top_n = settings.point_in_time_top
    if top_n is None:
        return "COINMARKET_TICKERS"
    return f"top:{top_n} of the stored listings"
