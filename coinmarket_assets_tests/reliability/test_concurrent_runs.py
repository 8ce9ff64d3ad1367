"""Runs over overlapping days at the same time end as if they had run one after the other."""

from pathlib import Path

import pytest

from coinmarket_assets_tests.dagster_cli import cli_environment, start_materialize
from coinmarket_assets_tests.dagster_runs import (
    PARTITIONED_ASSETS,
    dump_all,
    empty_tables,
    materialize_days,
)
from coinmarket_testkit.synthetic import SyntheticMarket

# The default market runs from 2020-01-01 for 200 days; the runs share March and April.
EARLIER = ("2020-01-01", "2020-04-30")
LATER = ("2020-03-01", "2020-07-18")


def _serially(url: str, *runs: tuple[str, str]) -> dict[str, bytes]:
    empty_tables(url)
    for first, last in runs:
        materialize_days(first, last)
    return dump_all(url)


@pytest.mark.slow
def test_overlapping_runs_at_once_end_as_one_serial_order(
    database_url: str, csv_source: Path, market: SyntheticMarket, tmp_path: Path
):
    env = cli_environment(tmp_path, csv_source, market.tickers)
    runs = [
        start_materialize(env, PARTITIONED_ASSETS, f"{first}...{last}", tmp_path / f"{first}.log")
        for first, last in (EARLIER, LATER)
    ]
    exit_codes = [run.wait(timeout=300) for run in runs]  # a deadlock would time out here
    assert exit_codes == [0, 0], [path.read_text()[-3000:] for path in tmp_path.glob("*.log")]
    at_once = dump_all(database_url)

    earlier_first = _serially(database_url, EARLIER, LATER)
    later_first = _serially(database_url, LATER, EARLIER)
    # The order matters (the later run's statistics lack history if it runs first), so an
    # interleaving that lost an update would match neither.
    assert earlier_first != later_first
    assert at_once in (earlier_first, later_first)
