"""``coinmarket coverage``: each coin's stored days and gaps. Gap filling: the gap_fill_sensor
requests one run of the daily job for the gapped coins, once per set of gaps, and
``coinmarket coverage --fill`` starts that same run and reports what it could not fill."""

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
)

from coinmarket_assets.cli import main
from coinmarket_assets.coverage import (
    STATISTICS_ASSETS,
    CoinCoverage,
    DayRange,
    coverage,
    fetchable_gaps,
    gap_fill,
)
from coinmarket_assets.definitions import defs
from coinmarket_assets.gap_fill import GAP_FILL_TAG, gap_fill_sensor
from coinmarket_assets.resources import MarketDataSourceResource
from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.table_io import replace_days
from coinmarket_assets.storage.tables import TABLES
from coinmarket_assets_tests.dagster_runs import (
    dump_all,
    materialize_days,
    materialize_unpartitioned,
    read_table,
    sensor_tick,
)
from coinmarket_assets_tests.launcher import COINMARKET, launcher_env, run_launcher
from coinmarket_testkit.synthetic import SyntheticMarket

BETA, GAMMA = 102, 103
# The default market lacks these candles of ALPHA: gaps of the source itself.
ALPHA_GAPS = [
    DayRange(date(2020, 2, 10), date(2020, 2, 12)),
    DayRange(date(2020, 3, 31), date(2020, 3, 31)),
]
ALPHA_GAPS_TEXT = "ALPHA 2020-02-10..2020-02-12, ALPHA 2020-03-31"


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


def _coin(coin_id: int, first: str, last: str, *gaps: DayRange) -> CoinCoverage:
    return CoinCoverage(coin_id, f"C{coin_id}", _day(first), _day(last), 1, tuple(gaps))


def test_one_run_fetches_the_gapped_coins_from_the_first_missing_day_to_their_newest_day():
    """A candle feeds the statistics of the days after it, so the run ends on the newest day."""
    report = [
        _coin(1, "2019-01-01", "2021-06-29", _range("2019-06-01", "2019-06-02")),
        _coin(2, "2019-01-01", "2021-06-30", _range("2019-07-01", "2019-07-01")),
        _coin(3, "2019-01-01", "2021-07-01"),  # no gap
        _coin(4, "2019-01-01", "2021-07-02", _range("2018-01-01", "2018-01-01")),
    ]
    gaps, before_start = fetchable_gaps(report, start_date=date(2013, 4, 27))
    assert before_start == []
    fill, outside = gap_fill(gaps, universe={1, 2, 3})
    assert fill is not None
    assert fill.days == _range("2019-06-01", "2021-06-30")  # not coin 3's or 4's newest day
    assert fill.coin_ids == [1, 2]
    assert outside == [(report[3], _range("2018-01-01", "2018-01-01"))]
    assert gap_fill(gaps, universe={3}) == (None, gaps)


def test_missing_days_before_the_first_partition_are_not_fetched():
    coin = _coin(
        1,
        "2013-01-01",
        "2013-12-31",
        _range("2013-02-01", "2013-02-03"),
        _range("2013-03-01", "2013-05-10"),
    )
    gaps, before_start = fetchable_gaps([coin], start_date=date(2013, 4, 27))
    assert before_start == [
        (coin, _range("2013-02-01", "2013-02-03")),
        (coin, _range("2013-03-01", "2013-04-26")),
    ]
    assert gaps == [(coin, _range("2013-04-27", "2013-05-10"))]
    fill, _ = gap_fill(gaps, universe={1})
    assert fill is not None and fill.days == _range("2013-04-27", "2013-12-31")


def test_fill_names_the_gaps_it_leaves_alone_and_starts_no_run_for_them(
    database_url: str, market: SyntheticMarket, csv_source: Path, tmp_path: Path
):
    _store_candles(market)
    _delete_candles(database_url, BETA, "2020-05-01", "2020-05-03")
    before = dump_all(database_url)
    # The start date is read once per process: the launcher's own process reads this one.
    env = launcher_env(tmp_path, COINMARKET_START_DATE="2020-04-01", COINMARKET_TICKERS="ALPHA")
    result = run_launcher([COINMARKET, "coverage", "--fill"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"days before COINMARKET_START_DATE 2020-04-01 cannot be fetched: {ALPHA_GAPS_TEXT}"
    ) in result.stderr
    assert (
        "coins not in COINMARKET_TICKERS are left alone: BETA 2020-05-01..2020-05-03"
    ) in result.stderr
    assert "no gaps to fill" in result.stderr
    assert "3 gap(s):" in result.stdout  # the report
    assert dump_all(database_url) == before


def _evaluate(instance: DagsterInstance | None = None, **resources: object):
    """One tick of the gap-fill sensor."""
    return sensor_tick(gap_fill_sensor, instance, **resources)


def _tickers(request: RunRequest) -> str:
    return request.run_config["resources"]["pipeline_settings"]["config"]["tickers"]


def test_the_sensor_requests_one_run_of_the_gapped_coins_by_id_once_per_set_of_gaps(
    database_url: str, market: SyntheticMarket, csv_source: Path
):
    _store_candles(market)  # 2020-01-01..2020-07-18
    _delete_candles(database_url, BETA, "2020-05-01", "2020-05-03")

    request = _evaluate()
    assert isinstance(request, RunRequest)
    assert gap_fill_sensor.job_name == "daily_market_data"
    assert _tickers(request) == "101,102"
    assert request.tags["dagster/asset_partition_range_start"] == "2020-02-10"
    assert request.tags["dagster/asset_partition_range_end"] == "2020-07-18"
    assert request.tags[GAP_FILL_TAG] == f"{ALPHA_GAPS_TEXT}, BETA 2020-05-01..2020-05-03"
    # The same gaps give the same run key, which Dagster starts once, even when the newest
    # stored day has moved; new gaps, a new key.
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM historical_trade_data WHERE trade_date = '2020-07-18'")
    later = _evaluate()
    assert later.tags["dagster/asset_partition_range_end"] == "2020-07-17"
    assert later.run_key == request.run_key
    _delete_candles(database_url, GAMMA, "2020-06-01", "2020-06-01")
    changed = _evaluate()
    assert changed.run_key != request.run_key
    assert _tickers(changed) == "101,102,103"


def test_the_sensor_leaves_coins_outside_the_universe_alone(
    database_url: str, market: SyntheticMarket, csv_source: Path, monkeypatch: pytest.MonkeyPatch
):
    _store_candles(market)
    _delete_candles(database_url, BETA, "2020-05-01", "2020-05-03")
    monkeypatch.setenv("COINMARKET_TICKERS", "GAMMA,DELTA")  # neither ALPHA nor BETA
    skipped = _evaluate()
    assert isinstance(skipped, SkipReason)
    assert skipped.skip_message == "Only coins outside the universe have gaps"

    monkeypatch.setenv("COINMARKET_TICKERS", "BETA,GAMMA")
    request = _evaluate()
    assert isinstance(request, RunRequest)
    assert request.tags[GAP_FILL_TAG] == "BETA 2020-05-01..2020-05-03"
    assert request.tags["dagster/asset_partition_range_start"] == "2020-05-01"
    assert _tickers(request) == "102"


def test_the_sensor_waits_while_a_run_is_in_progress(
    database_url: str, market: SyntheticMarket, csv_source: Path
):
    _store_candles(market)
    instance = DagsterInstance.ephemeral()
    job = defs.resolve_job_def("daily_market_data")
    run = instance.create_run_for_job(job_def=job, status=DagsterRunStatus.STARTED)
    skipped = _evaluate(instance)
    assert isinstance(skipped, SkipReason)
    assert skipped.skip_message.startswith(f"Run {run.run_id[:8]} of daily_market_data is started")
    instance.report_run_failed(run)
    assert isinstance(_evaluate(instance), RunRequest)


def test_without_gaps_the_sensor_does_not_ask_the_source(database_url: str, tmp_path: Path):
    skipped = _evaluate(source=MarketDataSourceResource(spec=f"csv:{tmp_path / 'missing'}"))
    assert isinstance(skipped, SkipReason)
    assert "No gap to fill" in str(skipped.skip_message)


def test_the_gap_fill_sensor_is_stopped_until_switched_on_in_the_ui():
    """Each fill re-fetches from a rate-limited source: someone decides to let it run."""
    sensor = defs.resolve_sensor_def("gap_fill_sensor")
    assert sensor.default_status == DefaultSensorStatus.STOPPED
    assert "coinmarket coverage --fill" in (sensor.description or "")


FIRST, LAST = "2020-01-01", "2020-04-30"


@pytest.mark.slow
def test_fill_starts_the_sensors_run_which_restores_candles_and_statistics(
    database_url: str, csv_source: Path, tmp_path: Path
):
    materialize_unpartitioned(["currency_status"])
    materialize_days(FIRST, LAST)
    complete = dump_all(database_url)
    # Candles lost, and statistics computed while they were missing.
    _delete_candles(database_url, BETA, "2020-03-01", "2020-03-05")
    materialize_days(FIRST, LAST, selection=STATISTICS_ASSETS)
    assert dump_all(database_url)["historical_rolling"] != complete["historical_rolling"]
    requested = _evaluate()
    assert isinstance(requested, RunRequest)

    result = run_launcher([COINMARKET, "coverage", "--fill"], launcher_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 gap(s) of ALPHA, BETA to fill in one run over 2020-02-10..2020-04-30" in (
        result.stderr
    )
    assert (
        f"2 gap(s) could not be filled: the source has no candle for those days: {ALPHA_GAPS_TEXT}"
    ) in result.stderr
    assert dump_all(database_url) == complete  # candles and every statistic as before
    assert [c.gaps for c in _report() if c.gaps] == [tuple(ALPHA_GAPS)]
    # The run is the one the sensor requested, in the instance the UI shows.
    instance = DagsterInstance.from_config(str(tmp_path / "home" / "dagster_home"))
    (run,) = instance.get_runs()
    assert (run.job_name, run.status) == ("daily_market_data", DagsterRunStatus.SUCCESS)
    assert run.run_config == requested.run_config
    tags = {k: v for k, v in requested.tags.items() if k != "dagster/sensor_name"}
    assert tags.items() <= run.tags.items()
