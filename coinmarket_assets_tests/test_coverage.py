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
    build_sensor_context,
)

from coinmarket_assets.cli import main
from coinmarket_assets.coverage import (
    STATISTICS_ASSETS,
    CoinCoverage,
    DayRange,
    coverage,
    fetchable_gaps,
    gap_fills,
)
from coinmarket_assets.definitions import defs
from coinmarket_assets.gap_fill import GAP_FILL_TAG, gap_fill_sensor
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
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


def _coverage_in_pandas(
    candles: pd.DataFrame, ends: dict[int, date] | None = None
) -> dict[int, tuple]:
    """Per coin: first day, last day, stored days, and the missing days grouped into runs (none
    after the coin's end in ``ends``)."""
    result = {}
    for coin_id, days in candles.groupby("coin_id")["trade_date"]:
        stored = set(days.dt.date)
        first, last = min(stored), max(stored)
        every_day = pd.date_range(first, last).date
        end = (ends or {}).get(coin_id, date.max)
        missing = [day for day in every_day if day not in stored and day <= end]
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
    (fill,), outside = gap_fills(gaps, universe={1, 2, 3})
    assert fill.days == _range("2019-06-01", "2021-06-30")  # not coin 3's or 4's newest day
    assert fill.coin_ids == [1, 2]
    assert outside == [(report[3], _range("2018-01-01", "2018-01-01"))]
    assert gap_fills(gaps, universe={3}) == ([], gaps)


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
    (fill,), _ = gap_fills(gaps, universe={1})
    assert fill.days == _range("2013-04-27", "2013-12-31")


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


# Dead coins. GAMMA's coin map says it ended on GAMMA_END, yet a candle after it is stored;
# DELTA's map says nothing, and the stored listings leave it out after DELTA_LAST_LISTED.
DELTA = 104
GAMMA_END = date(2020, 5, 31)
DELTA_LAST_LISTED = date(2020, 7, 5)
NEWEST_LISTING = date(2020, 7, 10)


def _set_life(url: str, coin_id: int, ticker: str, is_active: bool, last_day: date) -> None:
    """The coin map's word on a coin, as currency_status stores it."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO currency_status (coin_id, ticker, coin_name, slug, is_active, "
            "last_historical_day) VALUES (%s, %s, %s, %s, %s, %s)",
            [coin_id, ticker, ticker.title(), ticker.lower(), is_active, last_day],
        )


def _list(url: str, coin_id: int, ticker: str, rank: int, first: date, last: date) -> None:
    """The coin in the stored listing of each day first..last, at ``rank``."""
    days = pd.date_range(first, last).date
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO historical_listings (trade_date, coin_id, ticker, coin_name, slug, "
            "rank, price) VALUES (%s, %s, %s, %s, %s, %s, 1.0)",
            [(day, coin_id, ticker, ticker.title(), ticker.lower(), rank) for day in days],
        )


@pytest.fixture
def dead_coins(database_url: str, market: SyntheticMarket) -> str:
    """The market's candles (2020-01-01..2020-07-18) with GAMMA and DELTA ended, each with
    missing days before and after its end, and BETA active with a gap."""
    _store_candles(market)
    _delete_candles(database_url, BETA, "2020-05-01", "2020-05-03")
    _set_life(database_url, BETA, "BETA", True, date(2020, 3, 1))  # an old map: still active
    _delete_candles(database_url, GAMMA, "2020-05-10", "2020-05-12")
    _delete_candles(database_url, GAMMA, "2020-05-25", "2020-07-17")  # straddles the end
    _set_life(database_url, GAMMA, "GAMMA", False, GAMMA_END)
    _delete_candles(database_url, DELTA, "2020-06-20", "2020-06-21")
    _delete_candles(database_url, DELTA, "2020-07-08", "2020-07-09")
    _list(database_url, 101, "ALPHA", 1, date(2020, 7, 1), NEWEST_LISTING)
    _list(database_url, DELTA, "DELTA", 2, date(2020, 7, 1), DELTA_LAST_LISTED)
    return database_url


def test_a_coin_that_ended_has_no_gap_after_its_end_and_the_report_says_when(
    dead_coins: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
):
    ends = {GAMMA: GAMMA_END, DELTA: DELTA_LAST_LISTED}
    expected = _coverage_in_pandas(read_table("historical_trade_data"), ends)
    report = _report()
    assert {c.coin_id: (c.first_day, c.last_day, c.stored_days, c.gaps) for c in report} == expected
    assert {c.ticker: c.end_day for c in report} == {
        "ALPHA": None,
        "BETA": None,  # the map calls it active: its old last day does not end it
        "DELTA": DELTA_LAST_LISTED,
        "GAMMA": GAMMA_END,
        "LATE": None,
    }
    by_ticker = {c.ticker: c for c in report}
    assert by_ticker["GAMMA"].last_day == date(2020, 7, 18)  # the stray candle after its end
    assert by_ticker["GAMMA"].gaps == (
        _range("2020-05-10", "2020-05-12"),
        _range("2020-05-25", "2020-05-31"),
    )
    assert by_ticker["DELTA"].gaps == (_range("2020-06-20", "2020-06-21"),)
    assert by_ticker["BETA"].gaps == (_range("2020-05-01", "2020-05-03"),)

    monkeypatch.setenv("COINMARKET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["coverage"]) == 0
    printed = capfd.readouterr().out
    lines = [line.split() for line in printed.splitlines()]
    assert ["GAMMA", "103", "2020-01-01", "2020-07-18", "143", "10", "2020-05-31"] in lines
    assert ["BETA", "102", "2020-01-01", "2020-07-18", "197", "3"] in lines
    assert (
        "2 coin(s) ended: DELTA (id 104) on 2020-07-05, GAMMA (id 103) on 2020-05-31. After its "
        "end day a coin has no candle to fetch, so no missing day after it is a gap."
    ) in printed


def test_coins_that_ended_get_runs_that_stop_on_their_end_day():
    """One run asks each of its coins for every day of its span: a coin that ended must not
    share a run that goes on after its end."""
    report = [
        _coin(1, "2019-01-01", "2021-06-30", _range("2019-06-01", "2019-06-02")),
        _ended(2, "2020-03-01", _range("2019-07-01", "2019-07-01")),
        _ended(3, "2020-03-01", _range("2019-08-01", "2019-08-03")),
        _ended(4, "2019-12-31", _range("2019-05-01", "2019-05-01")),
    ]
    gaps, _ = fetchable_gaps(report, start_date=date(2013, 4, 27))
    fills, outside = gap_fills(gaps, universe={1, 2, 3, 4})
    assert outside == []
    assert [(fill.coin_ids, fill.days) for fill in fills] == [
        ([1], _range("2019-06-01", "2021-06-30")),
        ([4], _range("2019-05-01", "2019-12-31")),
        ([2, 3], _range("2019-07-01", "2020-03-01")),
    ]
    ends = {coin.coin_id: coin.end_day for coin in report}
    for fill in fills:
        assert all(ends[c] is None or fill.days.last <= ends[c] for c in fill.coin_ids)
    # A top:N run fetches each member on its listed days only: one run for all.
    (top,), _ = gap_fills(gaps, universe={1, 2, 3, 4}, top_n=5)
    assert (top.coin_ids, top.days, top.tickers_setting) == (
        [1, 2, 3, 4],
        _range("2019-05-01", "2021-06-30"),
        "top:5",
    )


def _ended(coin_id: int, end: str, *gaps: DayRange) -> CoinCoverage:
    return CoinCoverage(coin_id, f"C{coin_id}", _day("2019-01-01"), _day(end), 1, gaps, _day(end))


def _requests(**resources: object) -> list[RunRequest] | SkipReason:
    """Every run request of one gap-fill sensor tick, or why it skipped."""
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(),
        resources={
            "source": MarketDataSourceResource(),
            "pipeline_settings": PipelineSettingsResource(),
            **resources,
        },
    )
    result = gap_fill_sensor.evaluate_tick(context)
    return result.run_requests or SkipReason(result.skip_message)


def _run_days(request: RunRequest) -> DayRange:
    return _range(
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    )


def test_the_sensor_never_requests_a_day_after_a_coins_end(dead_coins: str, csv_source: Path):
    requests = _requests()
    assert isinstance(requests, list)
    runs = {_tickers(request): _run_days(request) for request in requests}
    assert runs == {
        "101,102": _range("2020-02-10", "2020-07-18"),  # ALPHA's and BETA's gaps
        "103": _range("2020-05-10", "2020-05-31"),  # GAMMA's, up to its end
        "104": _range("2020-06-20", "2020-07-05"),  # DELTA's, up to its last listed day
    }
    tags = {_tickers(request): request.tags[GAP_FILL_TAG] for request in requests}
    assert tags["103"] == "GAMMA 2020-05-10..2020-05-12, GAMMA 2020-05-25..2020-05-31"
    assert len({request.run_key for request in requests}) == 3


def test_in_top_n_mode_one_top_n_run_fills_the_gaps_of_the_stored_listings_members(
    dead_coins: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_TICKERS", "top:1")  # ALPHA; DELTA ranks 2: never a member
    requests = _requests(source=MarketDataSourceResource(spec=f"csv:{tmp_path / 'missing'}"))
    assert isinstance(requests, list)
    (request,) = requests  # the source was not asked: its folder does not exist
    assert _tickers(request) == "top:1"
    assert _run_days(request) == _range("2020-02-10", "2020-07-18")
    assert request.tags[GAP_FILL_TAG] == ALPHA_GAPS_TEXT
    monkeypatch.setenv("COINMARKET_TICKERS", "top:2")
    (wider,) = _requests(source=MarketDataSourceResource(spec=f"csv:{tmp_path / 'missing'}"))
    assert _tickers(wider) == "top:2"
    assert wider.tags[GAP_FILL_TAG] == f"{ALPHA_GAPS_TEXT}, DELTA 2020-06-20..2020-06-21"
    assert wider.run_key != request.run_key


def test_statistics_assets_are_the_daily_tables_computed_from_stored_tables():
    assert STATISTICS_ASSETS == (
        "historical_rolling",
        "period_returns",
        "market_index",
        "top_ranking",
        "bottom_ranking",
    )
