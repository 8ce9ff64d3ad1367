"""The universe sensor (history for coins that join the universe, in one run, once) and the run
failure alert (posted to a webhook on a real loopback socket, or only logged)."""

import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_run_status_sensor_context,
)

from coinmarket_assets.definitions import defs
from coinmarket_assets.resources import (
    SOURCE_LOCK,
    MarketDataSourceResource,
)
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets.sensors import NEW_COINS_TAG, run_failure_alert, universe_sensor
from coinmarket_assets.storage.locks import session_lock
from coinmarket_assets.storage.tables import TABLES
from coinmarket_assets_tests.dagster_cli import python_in_fresh_process
from coinmarket_assets_tests.dagster_runs import (
    dump_all,
    empty_tables,
    materialize_days,
    sensor_tick,
)
from coinmarket_assets_tests.webhook_receiver import webhook_receiver
from coinmarket_testkit.synthetic import SyntheticMarket, default_market

MARKET_DAYS = 200
OLD_COINS = ["ALPHA", "BETA", "GAMMA"]
NEW_COINS = ["DELTA", "LATE"]  # ids 104 and 105
PER_COIN_TABLES = ["historical_trade_data", "historical_rolling", "period_returns"]


def _yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


@pytest.fixture
def market() -> SyntheticMarket:
    """The default market, ending with the newest daily partition (yesterday)."""
    return default_market(_yesterday() - timedelta(days=MARKET_DAYS - 1), MARKET_DAYS)


@pytest.fixture
def history(database_url: str, csv_source: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The whole market history of three of its five coins, stored by one ranged run."""
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(OLD_COINS))
    first, last = _market_days()
    materialize_days(first, last)
    return database_url


def _market_days() -> tuple[str, str]:
    last = _yesterday()
    return (last - timedelta(days=MARKET_DAYS - 1)).isoformat(), last.isoformat()


def _evaluate(**resources: object) -> RunRequest | SkipReason:
    """One tick of the universe sensor."""
    return sensor_tick(universe_sensor, **resources)


def _coin_rows(url: str, table: str, tickers: list[str]) -> bytes:
    """The rows of ``tickers`` in a per-coin table, every column, ordered by the primary key."""
    spec = TABLES[table]
    query = (
        f"COPY (SELECT {', '.join(spec.columns)} FROM {table} "
        f"WHERE ticker = ANY(ARRAY[{', '.join(repr(t) for t in tickers)}]) "
        f"ORDER BY {', '.join(spec.primary_key)}) TO STDOUT (FORMAT csv)"
    )
    with psycopg.connect(url) as conn, conn.cursor().copy(query) as copy:
        return b"".join(bytes(chunk) for chunk in copy)


def test_coins_that_join_the_universe_get_their_history_in_one_run_once(
    history: str, monkeypatch: pytest.MonkeyPatch
):
    first, last = _market_days()
    old_rows = {table: _coin_rows(history, table, OLD_COINS) for table in PER_COIN_TABLES}
    old_rankings = {table: dump_all(history)[table] for table in ("top_ranking", "bottom_ranking")}
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(OLD_COINS + NEW_COINS))

    request = _evaluate()
    assert isinstance(request, RunRequest)
    assert request.run_config == {
        "resources": {"pipeline_settings": {"config": {"tickers": "104,105"}}}
    }
    assert request.tags["dagster/asset_partition_range_start"] == first
    assert request.tags["dagster/asset_partition_range_end"] == last
    assert request.tags[NEW_COINS_TAG] == "DELTA,LATE"
    # The same state gives the same run key: the daemon starts a run for it once.
    again = _evaluate()
    assert isinstance(again, RunRequest)
    assert again.run_key == request.run_key

    result = defs.resolve_job_def("daily_market_data").execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=DagsterInstance.ephemeral()
    )
    assert result.success

    # The other coins' rows are untouched, bookkeeping timestamps included.
    for table in PER_COIN_TABLES:
        assert _coin_rows(history, table, OLD_COINS) == old_rows[table], table
    # Every table, rankings included, equals one run over all five coins.
    after = dump_all(history)
    empty_tables(history)
    materialize_days(first, last)
    assert dump_all(history) == after
    # The generated market has no listings.csv nor global_metrics.csv: only the listing tables,
    # the global metrics and the index (its members come from the listings) stay empty.
    no_file = {"currency_status", "historical_listings", "global_metrics", "market_index"}
    assert all(after[table] for table in TABLES if table not in no_file)
    assert all(after[table] != old_rankings[table] for table in old_rankings)

    # With their history stored, the new coins are no longer new.
    assert isinstance(_evaluate(), SkipReason)


def test_coins_entering_the_top_n_get_their_history(history: str, monkeypatch):
    monkeypatch.setenv("COINMARKET_TICKERS", "all")
    monkeypatch.setenv("COINMARKET_TOP_N", "3")  # without ranks, the smallest ids come first
    skipped = _evaluate()
    assert isinstance(skipped, SkipReason)
    assert "Each of the universe's 3 coins has its history" in str(skipped.skip_message)

    monkeypatch.setenv("COINMARKET_TOP_N", "5")
    request = _evaluate()
    assert isinstance(request, RunRequest)
    assert request.tags[NEW_COINS_TAG] == "DELTA,LATE"


def test_a_coin_the_daily_schedule_already_fetched_still_gets_its_history(
    history: str, monkeypatch
):
    """A coin added before a scheduled run has that run's few days, not its history."""
    yesterday = _yesterday()
    monkeypatch.setenv("COINMARKET_TICKERS", "DELTA")
    materialize_days((yesterday - timedelta(days=3)).isoformat(), yesterday.isoformat())
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join([*OLD_COINS, "DELTA"]))
    request = _evaluate()
    assert isinstance(request, RunRequest)
    assert request.tags[NEW_COINS_TAG] == "DELTA"


# top:N. Coins 1..4 rank 1..4 on each of the LISTED_DAYS days ending yesterday; coin 5 ranks 5
# on yesterday only (a day the daily schedule fetches); candles are stored for coins 1 and 2.
LISTED_DAYS = 40


def _listed_days() -> list[date]:
    last = _yesterday()
    return [last - timedelta(days=back) for back in range(LISTED_DAYS - 1, -1, -1)]


@pytest.fixture
def listings(database_url: str) -> str:
    """Stored listings and the candles of their two top coins, written without Dagster."""
    days = _listed_days()
    ranks = [(day, coin_id, coin_id) for day in days for coin_id in (1, 2, 3, 4)]
    ranks.append((days[-1], 5, 5))
    candles = [(coin_id, f"C{coin_id}", day) for day in days for coin_id in (1, 2)]
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO historical_listings (trade_date, coin_id, ticker, coin_name, slug, rank, "
            "price) VALUES (%s, %s, 'C' || %s::text, 'Coin', 'coin-' || %s::text, %s, 1.0)",
            [(day, coin_id, coin_id, coin_id, rank) for day, coin_id, rank in ranks],
        )
        cursor.executemany(
            "INSERT INTO historical_trade_data (coin_id, ticker, trade_date, open, high, low, "
            "close, volume, market_cap) VALUES (%s, %s, %s, 1, 1, 1, 1, 1, 1)",
            candles,
        )
        # A candle the source lacks: a gap, not a member without history.
        cursor.execute(
            "DELETE FROM historical_trade_data WHERE coin_id = 2 AND trade_date = %s", [days[5]]
        )
    return database_url


def _top(n: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunRequest | SkipReason:
    """A tick in top:N mode, with a source that fails if asked (its folder does not exist)."""
    monkeypatch.setenv("COINMARKET_TICKERS", f"top:{n}")
    return _evaluate(source=MarketDataSourceResource(spec=f"csv:{tmp_path / 'missing'}"))


def _lacking_in_plain_python(url: str, top_n: int, last_day: date) -> dict[int, date]:
    """Members up to ``last_day`` without a candle on any member day, and their first one."""
    with psycopg.connect(url) as conn:
        listed = conn.execute(
            "SELECT trade_date, coin_id, rank FROM historical_listings"
        ).fetchall()
        stored = set(conn.execute("SELECT coin_id, trade_date FROM historical_trade_data"))
    member_days: dict[int, list[date]] = {}
    for day, coin_id, rank in listed:
        if rank <= top_n and day <= last_day:
            member_days.setdefault(coin_id, []).append(day)
    return {
        coin_id: min(days)
        for coin_id, days in member_days.items()
        if not any((coin_id, day) in stored for day in days)
    }


def test_in_top_n_mode_members_of_stored_listings_without_candles_get_one_top_n_run(
    listings: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """Membership comes from the stored listings only, never from the source's listing of today;
    the days the daily schedule fetches (the resync days and the newest) are left to it."""
    monkeypatch.setenv("COINMARKET_RESYNC_DAYS", "3")
    skipped = _top(2, monkeypatch, tmp_path)
    assert isinstance(skipped, SkipReason)
    assert "Each coin of the stored listings' top 2 has candles on its member days" in str(
        skipped.skip_message
    )

    request = _top(5, monkeypatch, tmp_path)  # N raised: coins 3 and 4 have no candle
    assert isinstance(request, RunRequest)
    schedule_first = _yesterday() - timedelta(days=3)
    lacking = _lacking_in_plain_python(listings, 5, schedule_first - timedelta(days=1))
    assert sorted(lacking) == [3, 4]  # not coin 5: a member on a scheduled day only
    assert request.run_config == {
        "resources": {"pipeline_settings": {"config": {"tickers": "top:5"}}}
    }
    assert request.tags[NEW_COINS_TAG] == "C3,C4"
    assert request.tags["dagster/asset_partition_range_start"] == min(lacking.values()).isoformat()
    assert request.tags["dagster/asset_partition_range_end"] == _yesterday().isoformat()
    again = _top(5, monkeypatch, tmp_path)
    assert isinstance(again, RunRequest) and again.run_key == request.run_key
    other = _top(4, monkeypatch, tmp_path)
    assert isinstance(other, RunRequest) and other.run_key != request.run_key


def test_in_top_n_mode_nothing_is_requested_while_a_run_is_in_progress(
    listings: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """A run stores a day's listing before its candles: in between, members lack candles."""
    monkeypatch.setenv("COINMARKET_TICKERS", "top:5")
    instance = DagsterInstance.ephemeral()
    job = defs.resolve_job_def("daily_market_data")
    run = instance.create_run_for_job(job_def=job, status=DagsterRunStatus.STARTED)
    source = MarketDataSourceResource(spec=f"csv:{tmp_path / 'missing'}")
    skipped = sensor_tick(universe_sensor, instance, source=source)
    assert isinstance(skipped, SkipReason)
    assert str(skipped.skip_message).startswith(f"Run {run.run_id[:8]} of daily_market_data")
    instance.report_run_failed(run)
    assert isinstance(sensor_tick(universe_sensor, instance, source=source), RunRequest)


def test_nothing_is_requested_before_any_history_is_stored(
    database_url: str, csv_source: Path, tmp_path: Path
):
    """The first history is a backfill someone starts; the source is not even asked."""
    skipped = _evaluate(source=MarketDataSourceResource(spec=f"csv:{tmp_path / 'missing'}"))
    assert isinstance(skipped, SkipReason)
    assert "No candle is stored yet" in str(skipped.skip_message)


def test_nothing_is_requested_while_a_run_uses_the_source(history: str, monkeypatch):
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(OLD_COINS + NEW_COINS))
    with session_lock(history, SOURCE_LOCK, "a test run"):
        skipped = _evaluate()
    assert isinstance(skipped, SkipReason)
    assert "A run is using the market data source" in str(skipped.skip_message)
    assert isinstance(_evaluate(), RunRequest)


SENSOR_SETTINGS = (
    "from coinmarket_assets.sensors import universe_sensor as s; "
    "print(s.default_status.value, s.minimum_interval_seconds)"
)


def _load_sensor(**env: str) -> subprocess.CompletedProcess[str]:
    return python_in_fresh_process(
        SENSOR_SETTINGS, env, without_prefix="COINMARKET_UNIVERSE_SENSOR"
    )


def test_the_universe_sensor_runs_hourly_by_default_and_can_be_changed():
    default = _load_sensor()
    assert default.stdout.split() == ["RUNNING", "3600"], default.stderr
    changed = _load_sensor(
        COINMARKET_UNIVERSE_SENSOR_ENABLED="false", COINMARKET_UNIVERSE_SENSOR_INTERVAL="600"
    )
    assert changed.stdout.split() == ["STOPPED", "600"], changed.stderr
    invalid = _load_sensor(COINMARKET_UNIVERSE_SENSOR_INTERVAL="5")
    assert invalid.returncode != 0
    assert "COINMARKET_UNIVERSE_SENSOR_INTERVAL must be a whole number, at least 60" in (
        invalid.stderr
    )


def _failed_run(instance: DagsterInstance):
    """A real daily run that fails: a ticker the source does not list."""
    result = defs.resolve_job_def("daily_market_data").execute_in_process(
        tags=partition_range_tags("2020-02-01", "2020-02-05"),
        instance=instance,
        raise_on_error=False,
    )
    assert result.dagster_run.status == DagsterRunStatus.FAILURE
    return result


def _alert(instance: DagsterInstance, result) -> None:
    context = build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
    )
    run_failure_alert(context)


@pytest.fixture
def failed_run(database_url: str, csv_source: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_TICKERS", "ALPHA,NOPE")
    instance = DagsterInstance.ephemeral()
    return instance, _failed_run(instance)


def test_a_failed_run_is_posted_to_the_webhook(failed_run, monkeypatch, capfd):
    instance, result = failed_run
    monkeypatch.setenv("COINMARKET_UI_URL", "https://dagster.example.com")
    capfd.readouterr()
    with webhook_receiver() as receiver:
        monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", receiver.url)
        _alert(instance, result)
    (posted,) = receiver.received
    assert posted["text"].splitlines() == [
        "Dagster run failed: daily_market_data",
        "Days: 2020-02-01...2020-02-05",
        "Failed steps: historical_trade_data",
        "Error: UnknownTickersError: Unknown tickers (not listed by the source): NOPE",
        f"https://dagster.example.com/runs/{result.run_id}",
    ]
    logged = capfd.readouterr().err  # the sensor's log, which the UI shows with each tick
    assert "Dagster run failed: daily_market_data" in logged
    assert "Posted the alert to the webhook" in logged
    assert "secret-token" not in logged


def test_without_a_webhook_the_failure_is_only_logged(failed_run, monkeypatch, capfd):
    instance, result = failed_run
    monkeypatch.delenv("COINMARKET_ALERT_WEBHOOK", raising=False)
    capfd.readouterr()
    _alert(instance, result)
    logged = capfd.readouterr().err
    assert "Dagster run failed: daily_market_data" in logged
    assert "Unknown tickers (not listed by the source): NOPE" in logged
    assert "COINMARKET_ALERT_WEBHOOK is not set: the alert is only logged" in logged


def test_a_broken_webhook_does_not_break_the_sensor(failed_run, monkeypatch, capfd):
    instance, result = failed_run
    capfd.readouterr()
    with webhook_receiver() as receiver:
        receiver.status = 404
        monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", receiver.url)
        _alert(instance, result)
    assert len(receiver.received) == 1
    logged = capfd.readouterr().err
    assert "The alert webhook answered HTTP 404" in logged
    assert "secret-token" not in logged
