"""With COINMARKET_BACKFILL_CHUNK_DAYS, a long backfill becomes parallel runs of that many days,
and ends with the tables of one single run."""

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest

from coinmarket_assets_tests.dagster_runs import (
    PARTITIONED_ASSETS,
    dump_all,
    empty_tables,
    materialize_days,
)
from coinmarket_assets_tests.service.conftest import service_environment, yesterday
from coinmarket_assets_tests.service.dagster_service import DagsterService, run_tags
from coinmarket_testkit.synthetic import SyntheticMarket

pytestmark = pytest.mark.slow
CHUNK_DAYS = 30
BACKFILL_DAYS = 120


@pytest.fixture(scope="module")
def service(
    service_database: str, service_market: SyntheticMarket, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterService]:
    home = tmp_path_factory.mktemp("chunked")
    env = service_environment(
        home,
        service_database,
        service_market,
        COINMARKET_BACKFILL_CHUNK_DAYS=str(CHUNK_DAYS),
        COINMARKET_SCHEDULE_ENABLED="false",
        COINMARKET_UNIVERSE_SENSOR_ENABLED="false",
    )
    with DagsterService(env, home / "dev.log") as running:
        yield running


def _overlapping(runs: list[dict]) -> bool:
    """Whether some two of the runs were running at the same time."""
    spans = sorted((run["startTime"], run["endTime"]) for run in runs)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def test_a_chunked_backfill_runs_in_parallel_chunks_and_equals_one_run(
    service: DagsterService, service_database: str, monkeypatch: pytest.MonkeyPatch
):
    first_day = (yesterday() - timedelta(days=BACKFILL_DAYS - 1)).isoformat()
    backfill = service.launch_backfill(PARTITIONED_ASSETS, first_day, yesterday().isoformat())
    assert service.wait_for_backfill(backfill) == "COMPLETED_SUCCESS", service.output()[-4000:]
    runs = service.runs({"dagster/backfill": backfill})
    assert all(run["status"] == "SUCCESS" for run in runs)
    chunks = {
        (
            run_tags(run)["dagster/asset_partition_range_start"],
            run_tags(run)["dagster/asset_partition_range_end"],
        )
        for run in runs
    }
    print(f"{len(runs)} runs over {len(chunks)} chunks: {sorted(chunks)}")
    assert len(chunks) == BACKFILL_DAYS // CHUNK_DAYS
    # Chunks run side by side (how many at once depends on how fast each run is).
    assert _overlapping(runs)
    chunked = dump_all(service_database)

    for name in ("COINMARKET_DATABASE_URL", "COINMARKET_SOURCE", "COINMARKET_TICKERS"):
        monkeypatch.setenv(name, service.env[name])
    empty_tables(service_database)
    materialize_days(first_day, yesterday().isoformat())
    assert dump_all(service_database) == chunked
