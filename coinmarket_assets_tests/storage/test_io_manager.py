"""The IO manager's step lock: a step's read, compute and write are one turn among runs."""

import threading
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    ExecuteInProcessResult,
    build_init_resource_context,
    build_input_context,
    build_output_context,
    materialize,
)

from coinmarket_assets.assets.rankings import top_ranking
from coinmarket_assets.partitions import daily_table_asset
from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.io_manager import FrameStream, PostgresIOManager, TableBatches
from coinmarket_assets.storage.locks import LockLostError
from coinmarket_assets.storage.table_io import read_rows, replace_days
from coinmarket_assets.storage.tables import TABLES
from coinmarket_assets_tests.dagster_runs import failure_messages

STATUS = AssetKey("currency_status")


def _status(market_cap: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "coin_id": [1],
            "ticker": ["BTC"],
            "coin_name": ["Bitcoin"],
            "slug": ["bitcoin"],
            "rank": [1],
            "market_cap": [market_cap],
            "last_update": [pd.Timestamp("2024-01-01", tz="UTC")],
            "is_active": [True],
            "first_historical_day": [pd.Timestamp("2013-04-28")],
            "last_historical_day": [pd.Timestamp("2024-01-01")],
            "tags": ["mineable"],
        }
    )


def _io_manager(url: str) -> PostgresIOManager:
    manager = PostgresIOManager(url=url)
    manager.setup_for_execution(build_init_resource_context())
    return manager


def _write(manager: PostgresIOManager, frame: pd.DataFrame) -> None:
    manager.handle_output(build_output_context(asset_key=STATUS, op_def=top_ranking.op), frame)


def _read(manager: PostgresIOManager) -> pd.DataFrame:
    return manager.load_input(build_input_context(asset_key=STATUS, op_def=top_ranking.op))


def test_the_same_step_of_another_run_reads_only_after_this_one_wrote(database_url: str):
    first_run, second_run = _io_manager(database_url), _io_manager(database_url)
    _write(_io_manager(database_url), _status(1.0))
    seen_by_second: list[float] = []

    def second_step() -> None:
        seen_by_second.append(_read(second_run)["market_cap"].item())
        _write(second_run, _status(3.0))

    assert _read(first_run)["market_cap"].item() == 1.0
    waiting = threading.Thread(target=second_step)
    waiting.start()
    waiting.join(timeout=1.0)
    assert waiting.is_alive(), "the second run read while the first was between read and write"
    _write(first_run, _status(2.0))
    waiting.join(timeout=10)
    assert seen_by_second == [2.0]  # it read the first run's result, not the value before it


def test_a_step_that_fails_before_writing_releases_its_lock_at_teardown(database_url: str):
    failed_run = _io_manager(database_url)
    _write(_io_manager(database_url), _status(1.0))
    _read(failed_run)
    failed_run.teardown_after_execution(build_init_resource_context())

    next_run = _io_manager(database_url)
    done = threading.Event()
    threading.Thread(target=lambda: (_read(next_run), done.set())).start()
    assert done.wait(10), "the lock outlived the failed step"
    _write(next_run, _status(2.0))


def _materialize_one_day(asset: AssetsDefinition, url: str) -> ExecuteInProcessResult:
    return materialize(
        [asset],
        partition_key="2020-01-02",
        resources={"postgres_io_manager": PostgresIOManager(url=url)},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_a_write_error_that_would_repeat_fails_the_step_without_retries(database_url: str):
    """Rows outside the run's days are refused by the IO manager; the step's retry policy must
    not run the step (and its source calls) again for that."""
    calls: list[str] = []

    @daily_table_asset(name="period_returns")  # with the project's retry policy
    def misdated(context: AssetExecutionContext) -> pd.DataFrame:
        calls.append(context.partition_key)
        return pd.DataFrame(
            {"coin_id": [1], "trade_date": [pd.Timestamp("1999-01-01")], "period_return": [0.1]}
        )

    result = _materialize_one_day(misdated, database_url)
    assert not result.success
    assert calls == ["2020-01-02"]
    assert "outside the partitions being written" in failure_messages(result)


def test_an_output_that_is_not_a_dataframe_fails_naming_the_table_and_type(database_url: str):
    """Asset signatures name ``Frame`` (``Any`` to Dagster), so the IO manager checks the type."""

    @daily_table_asset(name="period_returns")
    def not_a_frame() -> dict[str, list[int]]:
        return {"coin_id": [1]}

    result = _materialize_one_day(not_a_frame, database_url)
    assert not result.success
    assert "Asset period_returns returned dict" in failure_messages(result)


def _returns(coin_ids: list[int], days: list[str], value: float) -> pd.DataFrame:
    return pd.DataFrame(
        [(c, f"C{c}", pd.Timestamp(d), value) for c in coin_ids for d in days],
        columns=["coin_id", "ticker", "trade_date", "period_return"],
    )


def test_a_stream_that_fails_midway_leaves_the_stored_days_as_they_were(database_url: str):
    def streamed(fail: bool) -> AssetsDefinition:
        @daily_table_asset(name="period_returns")
        def returns() -> FrameStream:
            def batches() -> Iterator[pd.DataFrame]:
                yield _returns([1], ["2020-01-02"], 2.0)
                if fail:
                    raise RuntimeError("the second batch failed")
                yield _returns([2], ["2020-01-02"], 2.0)

            return FrameStream(batches, coin_ids=[1, 2])

        return returns

    assert _materialize_one_day(streamed(fail=False), database_url).success
    with connect(database_url) as conn:
        stored = read_rows(conn, TABLES["period_returns"])
    failed = _materialize_one_day(streamed(fail=True), database_url)
    assert not failed.success
    assert "the second batch failed" in failure_messages(failed)
    with connect(database_url) as conn:
        pd.testing.assert_frame_equal(read_rows(conn, TABLES["period_returns"]), stored)
    assert list(stored["coin_id"]) == [1, 2]


def test_batched_reads_hand_out_whole_coins_of_the_window_and_count_them(database_url: str):
    spec = TABLES["period_returns"]
    days = ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"]
    with connect(database_url) as conn:
        replace_days(conn, spec, _returns([3, 5, 8], days, 0.5), date(2020, 1, 1), date(2020, 1, 5))
        # A coin whose only row is outside the window.
        replace_days(conn, spec, _returns([9], days[:1], 0.5), date(2020, 1, 1), date(2020, 1, 2))
        window = read_rows(conn, spec, date(2020, 1, 2), date(2020, 1, 5))
    reader = TableBatches(database_url, spec, date(2020, 1, 2), date(2020, 1, 5))
    assert reader.coin_ids() == [3, 5, 8]
    batches = list(reader.by_coins([8, 3, 5], size=2))
    assert [sorted(set(b["coin_id"])) for b in batches] == [[3, 5], [8]]
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), window)
    assert (reader.rows_read, reader.batches_read) == (9, 2)
    by_days = list(reader.by_days(2))
    assert [(first, last) for first, last, _ in by_days] == [
        (date(2020, 1, 2), date(2020, 1, 3)),
        (date(2020, 1, 4), date(2020, 1, 4)),
    ]
    assert [len(frame) for _, _, frame in by_days] == [6, 3]


def test_a_batched_read_after_the_steps_lock_was_lost_fails(database_url: str):
    def lost() -> None:
        raise LockLostError("the lock of step x was lost with its database session")

    reader = TableBatches(
        database_url, TABLES["period_returns"], date(2020, 1, 1), date(2020, 1, 2), check_lock=lost
    )
    with pytest.raises(LockLostError):
        list(reader.by_coins([1], size=1))
