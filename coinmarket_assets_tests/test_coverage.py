"""``coinmarket coverage``: each coin's stored days and gaps, and ``--fill``, which fetches the
missing days and recomputes the statistics they touch."""

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from dagster import AssetSelection

from coinmarket_assets.cli import main
from coinmarket_assets.coverage import (
    CANDLE_ASSET,
    STATISTICS_ASSETS,
    CoinCoverage,
    DayRange,
    coverage,
    fill_plan,
    merge_ranges,
)
from coinmarket_assets.definitions import defs
from coinmarket_assets.schedules import PARTITIONED_ASSETS
from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.table_io import replace_days
from coinmarket_assets.storage.tables import TABLES
from coinmarket_assets_tests.dagster_runs import (
    dump_all,
    materialize_days,
    materialize_unpartitioned,
    read_table,
)
from coinmarket_assets_tests.launcher import COINMARKET, launcher_env, run_launcher
from coinmarket_assets_tests.synthetic import SyntheticMarket

BETA = 102
ALPHA_GAPS = [
    DayRange(date(2020, 2, 10), date(2020, 2, 12)),
    DayRange(date(2020, 3, 31), date(2020, 3, 31)),
]


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _store_candles(market: SyntheticMarket) -> None:
    """The market's candles written straight into historical_trade_data, without Dagster."""
    candles = market.candles().assign(source="csv", fetched_at=pd.Timestamp.now(tz="UTC"))
    first, last = candles["trade_date"].min().date(), candles["trade_date"].max().date()
    with connect() as conn:
        replace_days(
            conn, TABLES["historical_trade_data"], candles, first, last + timedelta(days=1)
        )


def _delete_candles(url: str, coin_id: int, first: str, last: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "DELETE FROM historical_trade_data WHERE coin_id = %s AND trade_date BETWEEN %s AND %s",
            [coin_id, first, last],
        )


def _report() -> list[CoinCoverage]:
    with connect() as conn:
        return coverage(conn)


def _coverage_in_pandas(candles: pd.DataFrame) -> dict[int, tuple]:
    """Per coin: first day, last day, stored days, and the missing days grouped into runs."""
    result = {}
    for coin_id, days in candles.groupby("coin_id")["trade_date"]:
        stored = set(days.dt.date)
        first, last = min(stored), max(stored)
        every_day = pd.date_range(first, last).date
        missing = [day for day in every_day if day not in stored]
        gaps: list[DayRange] = []
        for day in missing:
            if gaps and gaps[-1].last == day - timedelta(days=1):
                gaps[-1] = DayRange(gaps[-1].first, day)
            else:
                gaps.append(DayRange(day, day))
        result[coin_id] = (first, last, len(stored), tuple(gaps))
    return result


def test_the_report_lists_each_coins_first_and_last_day_and_every_gap(
    database_url: str, market: SyntheticMarket
):
    _store_candles(market)
    _delete_candles(database_url, BETA, "2020-05-01", "2020-05-03")
    report = _report()
    assert [c.ticker for c in report] == ["ALPHA", "BETA", "DELTA", "GAMMA", "LATE"]
    expected = _coverage_in_pandas(read_table("historical_trade_data"))
    assert {c.coin_id: (c.first_day, c.last_day, c.stored_days, c.gaps) for c in report} == expected
    by_ticker = {c.ticker: c for c in report}
    assert list(by_ticker["ALPHA"].gaps) == ALPHA_GAPS
    assert by_ticker["ALPHA"].missing_days == 4
    assert by_ticker["BETA"].gaps == (DayRange(_day("2020-05-01"), _day("2020-05-03")),)
    assert by_ticker["LATE"].first_day == _day("2020-04-10")  # a late listing is no gap
    assert by_ticker["LATE"].gaps == ()


def test_the_coverage_command_prints_the_report(
    database_url: str,
    market: SyntheticMarket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
):
    monkeypatch.setenv("COINMARKET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    _store_candles(market)
    assert main(["coverage"]) == 0
    printed = capfd.readouterr().out
    lines = printed.splitlines()
    assert any(line.split()[:4] == ["ALPHA", "101", "2020-01-01", "2020-07-18"] for line in lines)
    assert any(line.split() == ["ALPHA", "101", "2020-02-10", "2020-02-12", "3"] for line in lines)
    assert any(line.split() == ["ALPHA", "101", "2020-03-31", "2020-03-31", "1"] for line in lines)
    assert "2 gap(s):" in printed


def test_fill_with_nothing_stored_runs_nothing(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
):
    monkeypatch.setenv("COINMARKET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["coverage", "--fill"]) == 0
    captured = capfd.readouterr()
    assert "No candles are stored yet." in captured.out
    assert "no gaps to fill" in captured.err


def _range(first: str, last: str) -> DayRange:
    return DayRange(_day(first), _day(last))


def test_gaps_close_together_are_fetched_in_one_run():
    gaps = [
        _range("2020-03-21", "2020-03-22"),  # 40 days after the one before
        _range("2020-01-01", "2020-01-05"),
        _range("2020-01-03", "2020-01-10"),  # overlaps (another coin)
        _range("2020-02-09", "2020-02-09"),  # 29 days after the last
    ]
    separate = [
        _range("2020-01-01", "2020-01-10"),
        _range("2020-02-09", "2020-02-09"),
        _range("2020-03-21", "2020-03-22"),
    ]
    assert merge_ranges(gaps) == separate
    assert merge_ranges(gaps, within_days=28) == separate
    assert merge_ranges(gaps, within_days=29) == [
        _range("2020-01-01", "2020-02-09"),
        _range("2020-03-21", "2020-03-22"),
    ]


def _coin(ticker: str, first: str, last: str, *gaps: DayRange) -> CoinCoverage:
    return CoinCoverage(1, ticker, _day(first), _day(last), 1, tuple(gaps))


def test_the_fill_plan_recomputes_the_statistics_of_the_days_after_each_gap():
    report = [
        _coin("A", "2019-01-01", "2021-06-30", _range("2019-06-01", "2019-06-02")),
        _coin("B", "2019-01-01", "2021-06-30", _range("2019-06-20", "2019-06-20")),
        _coin("C", "2019-01-01", "2021-06-30", _range("2021-05-01", "2021-05-31")),
    ]
    plan = fill_plan(report, start_date=date(2013, 4, 27), affected_days=300)
    assert plan.fetch == [_range("2019-06-01", "2019-06-20"), _range("2021-05-01", "2021-05-31")]
    assert plan.recompute == [
        _range("2019-06-01", "2020-04-15"),  # 300 days after the fetched range
        _range("2021-05-01", "2021-06-30"),  # up to the newest stored day
    ]
    assert plan.before_start == []


def test_missing_days_before_the_first_partition_are_not_fetched():
    report = [_coin("A", "2013-01-01", "2013-12-31", _range("2013-03-01", "2013-05-10"))]
    plan = fill_plan(report, start_date=date(2013, 4, 27), affected_days=300)
    assert plan.before_start == [_range("2013-03-01", "2013-04-26")]
    assert plan.fetch == [_range("2013-04-27", "2013-05-10")]
    assert plan.recompute == [_range("2013-04-27", "2013-12-31")]


def test_the_fill_runs_cover_every_partitioned_asset():
    resolved = PARTITIONED_ASSETS.resolve(defs.resolve_asset_graph())
    assert {key.to_user_string() for key in resolved} == {CANDLE_ASSET, *STATISTICS_ASSETS}
    statistics = AssetSelection.assets(*STATISTICS_ASSETS).resolve(defs.resolve_asset_graph())
    assert len(statistics) == len(STATISTICS_ASSETS)


FIRST, LAST = "2020-01-01", "2020-04-30"


@pytest.mark.slow
def test_fill_restores_deleted_candles_and_their_statistics_and_names_what_the_source_lacks(
    database_url: str, csv_source: Path, tmp_path: Path
):
    materialize_unpartitioned(["currency_status"])
    materialize_days(FIRST, LAST)
    complete = dump_all(database_url)
    # Candles lost, and statistics computed while they were missing.
    _delete_candles(database_url, BETA, "2020-03-01", "2020-03-05")
    materialize_days(FIRST, LAST, selection=STATISTICS_ASSETS)
    assert dump_all(database_url)["historical_rolling"] != complete["historical_rolling"]

    result = run_launcher([COINMARKET, "coverage", "--fill"], launcher_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 gap(s) to fill in 2 run(s)" in result.stderr
    assert (
        "2 gap(s) could not be filled: the source has no candle for those days, or the coin is "
        "not in COINMARKET_TICKERS: ALPHA 2020-02-10..2020-02-12, ALPHA 2020-03-31"
    ) in result.stderr
    assert dump_all(database_url) == complete  # candles and every statistic as before
    assert [c.gaps for c in _report() if c.gaps] == [tuple(ALPHA_GAPS)]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM dagster.runs").fetchone()[0] == 2
