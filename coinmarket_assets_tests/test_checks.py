"""The asset checks on a real PostgreSQL: they pass on good data, fail naming coins and days on
bad data, and look only at the days a run wrote."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

from coinmarket_assets import checks
from coinmarket_assets.assets.market_data import fresh_candles
from coinmarket_assets.definitions import defs
from coinmarket_assets.storage.database import connect
from coinmarket_assets_tests.dagster_runs import materialize_days

ALL_COINS = [101, 102, 103, 104, 105]
STORED_CHECKS = {
    ("historical_trade_data", checks.NO_BAD_ROWS.name),
    ("historical_trade_data", checks.OHLC_SANE.name),
    ("historical_trade_data", checks.NO_MISSING_DAYS.name),
    ("historical_rolling", checks.ONE_ROW_PER_STORED_CANDLE.name),
    ("top_ranking", checks.CONSISTENT_WITH_RETURNS.name),
    ("top_ranking", checks.ONE_RANK_PER_COIN_AND_DAY.name),
    ("bottom_ranking", checks.CONSISTENT_WITH_RETURNS.name),
    ("bottom_ranking", checks.ONE_RANK_PER_COIN_AND_DAY.name),
}


def _evaluations(result: ExecuteInProcessResult) -> dict[tuple[str, str], AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def _problems(evaluation: AssetCheckEvaluation) -> str:
    return evaluation.metadata["problems"].value


def _execute(statement: str, params: list[object] | None = None) -> None:
    with connect() as conn:
        conn.execute(statement, params)


def _edit_csv(csv_source: Path, ticker: str, day: str, **values: float) -> None:
    """Change a published candle in the csv: source, as a bad upstream answer would."""
    path = csv_source / "daily" / f"{ticker}.csv"
    frame = pd.read_csv(path, dtype=str)
    for column, value in values.items():
        frame.loc[frame["date"] == day, column] = repr(value)
    frame.to_csv(path, index=False)


def test_a_run_reports_every_check_and_names_missing_days_inside_histories(
    database_url: str, csv_source: Path
):
    result = materialize_days("2020-01-01", "2020-04-30")
    evaluations = _evaluations(result)
    assert set(evaluations) == STORED_CHECKS

    missing = evaluations.pop(("historical_trade_data", checks.NO_MISSING_DAYS.name))
    assert not missing.passed
    assert missing.severity == AssetCheckSeverity.WARN
    # ALPHA's four gaps; LATE, listed on 2020-04-10, is not missing the days before its history.
    assert missing.metadata["failing"].value == 4
    assert _problems(missing).splitlines() == [
        "- ALPHA (id 101) 2020-02-10..2020-02-12",
        "- ALPHA (id 101) 2020-03-31",
    ]
    assert all(evaluation.passed for evaluation in evaluations.values())


def test_checks_look_only_at_the_days_a_run_wrote(database_url: str, csv_source: Path):
    materialize_days("2020-01-01", "2020-02-29")
    # Bad rows outside the next run's days: checked directly they fail, naming coin and day.
    _execute(
        "UPDATE historical_trade_data SET low = high * 2 "
        "WHERE ticker = 'BETA' AND trade_date = '2020-01-05'"
    )
    _execute("UPDATE top_ranking SET rank = 9 WHERE trade_date = '2020-01-20' AND rank = 1")

    result = materialize_days("2020-02-15", "2020-02-29")
    evaluations = _evaluations(result)
    assert set(evaluations) == STORED_CHECKS
    # ALPHA's gap of 2020-02-10..12 lies inside its history too, but before the run's days.
    assert all(evaluation.passed for evaluation in evaluations.values())

    # A NaN price only after the run: the IO manager cannot load one (the source never stores it).
    _execute(
        "UPDATE historical_trade_data SET close = 'NaN' "
        "WHERE ticker = 'DELTA' AND trade_date = '2020-01-06'"
    )
    with connect() as conn:
        ohlc = checks.ohlc_problems(conn, date(2020, 1, 1), date(2020, 1, 10), ALL_COINS)
        ranks = checks.ranking_mismatches(
            conn, "top_ranking", date(2020, 1, 20), date(2020, 1, 20), 5, highest_first=True
        )
    assert ohlc.failing == 2
    assert ohlc.problems[0].startswith("BETA (id 102) 2020-01-05: open ")
    assert "< low" in ohlc.problems[0]
    assert ohlc.problems[1].startswith("DELTA (id 104) 2020-01-06: close nan is not a positive")
    assert ranks.failing == 2  # rank 1 is missing, rank 9 is extra
    assert ranks.problems[0].startswith("2020-01-20 rank 1: stored nothing, expected ")
    assert ranks.problems[1].startswith("2020-01-20 rank 9: stored ")
    assert ranks.problems[1].endswith(", expected nothing")


def test_bad_candles_from_the_source_fail_the_ohlc_check_naming_coin_and_day(
    database_url: str, csv_source: Path
):
    _edit_csv(csv_source, "ALPHA", "2020-03-03", close=1e9)  # above its high
    _edit_csv(csv_source, "BETA", "2020-03-04", open=0.0)  # not positive (and below its low)
    result = materialize_days("2020-03-01", "2020-03-05", ["historical_trade_data"])

    assert result.success  # the check reports; it does not block the run
    ohlc = _evaluations(result)[("historical_trade_data", checks.OHLC_SANE.name)]
    assert not ohlc.passed
    assert ohlc.severity == AssetCheckSeverity.ERROR
    assert ohlc.metadata["failing"].value == 2
    lines = _problems(ohlc).splitlines()
    assert lines[0].startswith("- ALPHA (id 101) 2020-03-03: close 1000000000.0 > high ")
    assert lines[1].startswith("- BETA (id 102) 2020-03-04: open 0.0 is not a positive number")


def test_missing_days_use_the_stored_neighbours_of_the_window(database_url: str, csv_source: Path):
    materialize_days("2020-02-01", "2020-02-20", ["historical_trade_data"])
    with connect() as conn:
        # No ALPHA row in the window, but candles before and after it: the day is missing.
        inside = checks.missing_days(conn, date(2020, 2, 11), date(2020, 2, 11), ALL_COINS)
        # Without coin ids, only coins with a candle in the window are looked at.
        unnamed = checks.missing_days(conn, date(2020, 2, 11), date(2020, 2, 11))
        # After the newest stored candle nothing is missing: it is outside the history.
        after = checks.missing_days(conn, date(2020, 2, 21), date(2020, 2, 25), ALL_COINS)
    assert inside.problems == ["ALPHA (id 101) 2020-02-11"]
    assert unnamed.passed
    assert after.passed


def test_a_coin_ranked_twice_on_a_day_fails_naming_coin_and_day(
    database_url: str, csv_source: Path
):
    materialize_days("2020-02-20", "2020-03-05")
    # Rankings are keyed by (day, rank): nothing but the check stops a coin ranked twice.
    _execute(
        "UPDATE top_ranking t SET coin_id = f.coin_id, ticker = f.ticker "
        "FROM top_ranking f WHERE f.trade_date = t.trade_date AND f.rank = 1 "
        "AND t.trade_date = '2020-03-04' AND t.rank = 2"
    )
    with connect() as conn:
        ranked = checks.coins_ranked_twice(conn, "top_ranking", date(2020, 3, 1), date(2020, 3, 5))
        before = checks.coins_ranked_twice(conn, "top_ranking", date(2020, 3, 1), date(2020, 3, 3))
        consistent = checks.ranking_mismatches(
            conn, "top_ranking", date(2020, 3, 1), date(2020, 3, 5), 5, highest_first=True
        )
    assert ranked.failing == 1
    assert ranked.problems[0].endswith(" 2020-03-04: 2 ranks")
    assert before.passed
    assert [p.split(":")[0] for p in consistent.problems] == ["2020-03-04 rank 2"]


def _mismatches(first: str, last: str, coin_ids: list[int] | None = ALL_COINS):
    with connect() as conn:
        return checks.candle_mismatches(
            conn,
            "historical_rolling",
            date.fromisoformat(first),
            date.fromisoformat(last),
            coin_ids,
        )


def test_statistics_that_do_not_match_the_stored_candles_fail_naming_coin_and_day(
    database_url: str, csv_source: Path
):
    materialize_days("2020-02-20", "2020-03-10", ["historical_trade_data", "historical_rolling"])
    assert _mismatches("2020-02-20", "2020-03-10").passed

    _execute(  # a statistic lost
        "DELETE FROM historical_rolling WHERE ticker = 'BETA' AND trade_date = '2020-03-02'"
    )
    _execute(  # a statistic left behind by a candle that is gone
        "DELETE FROM historical_trade_data WHERE ticker = 'GAMMA' AND trade_date = '2020-03-03'"
    )
    _execute(  # a statistic under another ticker than its candle's
        "UPDATE historical_rolling SET ticker = 'OLD' "
        "WHERE ticker = 'ALPHA' AND trade_date = '2020-03-04'"
    )
    found = _mismatches("2020-03-01", "2020-03-10")
    assert found.problems == [
        "BETA (id 102) 2020-03-02: no row for the stored candle",
        "GAMMA (id 103) 2020-03-03: a row without a stored candle",
        "ALPHA (id 101) 2020-03-04: ticker 'OLD', the candle's is 'ALPHA'",
    ]
    assert found.details == {"rows": 39, "candles": 39}  # 4 coins x 10 days, one less each
    # Only the run's coins and days are looked at.
    assert [
        p.split(" 2020")[0] for p in _mismatches("2020-03-01", "2020-03-10", [101]).problems
    ] == ["ALPHA (id 101)"]
    assert _mismatches("2020-03-05", "2020-03-10").passed


@pytest.mark.parametrize(
    ("after_close", "fresh"),
    [(timedelta(hours=36), True), (timedelta(hours=36, seconds=1), False)],
)
def test_freshness_is_measured_from_the_close_of_the_newest_day(
    database_url: str, csv_source: Path, after_close: timedelta, fresh: bool
):
    materialize_days("2020-03-01", "2020-03-05", ["historical_trade_data"])
    closed = datetime(2020, 3, 6, tzinfo=UTC)  # the newest candle, 2020-03-05, closes here
    with connect() as conn:
        outcome = checks.candle_freshness(conn, closed + after_close)
    assert outcome.passed is fresh
    assert outcome.details["newest_day"] == "2020-03-05"
    if not fresh:
        assert outcome.problems[0].startswith("2020-03-05: the newest stored day")
        assert "ALPHA (id 101), BETA (id 102)" in outcome.problems[0]


def test_freshness_fails_on_an_empty_table(database_url: str):
    with connect() as conn:
        outcome = checks.candle_freshness(conn, datetime.now(UTC))
    assert not outcome.passed
    assert outcome.problems == ["historical_trade_data is empty"]


def test_the_freshness_check_runs_alone_without_loading_the_table(
    database_url: str, csv_source: Path
):
    materialize_days("2020-03-01", "2020-03-05", ["historical_trade_data"])
    result = materialize(
        assets=[*defs.assets, fresh_candles],
        selection=AssetSelection.checks(fresh_candles),
        resources=defs.resources,
        instance=DagsterInstance.ephemeral(),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == checks.FRESH_CANDLES.name
    assert not evaluation.passed  # 2020 is long ago
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.metadata["newest_day"].value == "2020-03-05"
    assert not result.get_asset_materialization_events()
    assert not [e for e in result.all_events if e.event_type_value == "LOADED_INPUT"]
