"""``coinmarket export`` on a materialized market: CSV and Parquet files hold exactly the stored
rows of the days asked for, and bad requests fail clearly without writing anything."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from coinmarket_assets.cli import main
from coinmarket_assets.export import RELATIONS
from coinmarket_assets.storage.database import DATABASE_URL_ENV, connect
from coinmarket_assets.storage.tables import BOOL, DATE, ID, TABLES, TEXT, TIMESTAMP, TableSpec
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.dagster_runs import (
    materialize_market,
    read_table,
)
from coinmarket_testkit.synthetic import default_market

FIRST, LAST = "2020-01-01", "2020-07-18"
FROM, TO = "2020-03-25", "2020-04-15"  # ALPHA's missing day and LATE's listing inside


@pytest.fixture(scope="module")
def stored_market(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The default market, every asset materialized, shared by the module's tests (read only)."""
    with module_database(server_url, "coinmarket_export") as url:
        materialize_market(url, tmp_path_factory.mktemp("cmc"), default_market(), FIRST, LAST)
        yield url


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder for exports; the launcher's home and Dagster's home stay in tmp_path."""
    monkeypatch.setenv("COINMARKET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def market_url(stored_market: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(DATABASE_URL_ENV, stored_market)
    return stored_market


def _coinmarket(*args: str) -> int:
    try:
        return main(list(args))
    except SystemExit as exit_:  # argparse's usage errors
        return int(exit_.code)


def _stored(table: str, dated: bool = True) -> pd.DataFrame:
    frame = read_table(table)
    if dated and TABLES[table].date_column:
        frame = frame[frame["trade_date"].between(FROM, TO)].reset_index(drop=True)
    return frame


def _read_csv(path: Path, spec: TableSpec) -> pd.DataFrame:
    """A CSV export parsed with the table's types (an empty field is NULL, except in text that
    cannot be NULL)."""
    text = {c: "str" for c, t in spec.types.items() if t in (TEXT, DATE, TIMESTAMP)}
    may_be_null = {c.name for c in spec.column_defs if c.type != TEXT or c.nullable}
    frame = pd.read_csv(
        path,
        dtype={**spec.types, **text},
        keep_default_na=False,
        na_values={c: [""] for c in may_be_null},
        true_values=["t"],  # COPY's booleans
        false_values=["f"],
    )
    return _with_datetimes(frame, spec)


def _with_datetimes(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    for column, kind in spec.types.items():
        if kind == DATE:
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
        elif kind == TIMESTAMP:
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
        elif kind == ID:
            frame[column] = frame[column].astype("int64")
        elif kind == BOOL:  # all NULL reads back as objects
            frame[column] = frame[column].astype("boolean")
    return frame


def _assert_exactly_equal(exported: pd.DataFrame, stored: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(exported, stored, check_exact=True, check_dtype=False)
    for column in stored.select_dtypes("float64"):  # bit for bit, not just ==
        bits = exported[column].to_numpy(dtype="float64").view(np.int64)
        assert (bits == stored[column].to_numpy().view(np.int64)).all(), column


@pytest.mark.parametrize("table", list(TABLES))
def test_csv_of_a_range_of_days_holds_exactly_the_stored_rows(
    market_url: str, out: Path, table: str
):
    dates = ["--from", FROM, "--to", TO] if TABLES[table].date_column else []
    file = out / f"{table}.csv"
    assert _coinmarket("export", table, *dates, "--output", str(file)) == 0
    _assert_exactly_equal(_read_csv(file, TABLES[table]), _stored(table))


@pytest.mark.parametrize("table", list(TABLES))
def test_parquet_of_a_range_of_days_holds_exactly_the_stored_rows(
    market_url: str, out: Path, table: str
):
    dates = ["--from", FROM, "--to", TO] if TABLES[table].date_column else []
    file = out / f"{table}.parquet"
    assert _coinmarket("export", table, *dates, "--format", "parquet", "--output", str(file)) == 0
    exported = _with_datetimes(pd.read_parquet(file), TABLES[table])
    _assert_exactly_equal(exported, _stored(table))


def _closes_wide() -> pd.DataFrame:
    candles = _stored("historical_trade_data")
    wide = candles.pivot(index="trade_date", columns="ticker", values="close")
    return wide[sorted(wide.columns)].reset_index().rename_axis(columns=None)


@pytest.mark.parametrize("format_", ["csv", "parquet"])
def test_daily_closes_is_exported_wide_with_one_column_per_coin(
    market_url: str, out: Path, format_: str
):
    file = out / f"closes.{format_}"
    args = ["export", "daily_closes", "--from", FROM, "--to", TO, "--format", format_]
    assert _coinmarket(*args, "--output", str(file)) == 0
    exported = pd.read_csv(file) if format_ == "csv" else pd.read_parquet(file)
    exported["trade_date"] = pd.to_datetime(exported["trade_date"]).astype("datetime64[ns]")
    assert list(exported.columns) == ["trade_date", "ALPHA", "BETA", "DELTA", "GAMMA", "LATE"]
    _assert_exactly_equal(exported, _closes_wide())
    alpha = exported.set_index("trade_date")["ALPHA"]
    assert np.isnan(alpha[pd.Timestamp("2020-03-31")])  # the day ALPHA has no candle


def test_latest_market_is_exported_as_the_view_shows_it(market_url: str, out: Path):
    file = out / "latest.parquet"
    assert _coinmarket("export", "latest_market", "--format", "parquet", "--output", str(file)) == 0
    with connect() as conn:
        cursor = conn.execute("SELECT * FROM latest_market ORDER BY coin_id")
        rows = cursor.fetchall()
        columns = [column.name for column in cursor.description]
    exported = pq.read_table(file)
    assert exported.column_names == columns
    assert [tuple(row.values()) for row in exported.to_pylist()] == rows


def test_csv_goes_to_standard_output_without_output(
    market_url: str, out: Path, capfdbinary: pytest.CaptureFixture[bytes]
):
    file = out / "rolling.csv"
    args = ["export", "historical_rolling", "--from", FROM, "--to", TO]
    assert _coinmarket(*args, "--output", str(file)) == 0
    capfdbinary.readouterr()
    assert _coinmarket(*args) == 0
    printed = capfdbinary.readouterr()
    assert printed.out == file.read_bytes()
    assert printed.out.startswith(b"coin_id,ticker,trade_date,rsi,std_dev\n")
    rows = len(_stored("historical_rolling"))
    assert f"exported {rows} rows of historical_rolling".encode() in printed.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown table 'nope'; choose one of " + ", ".join(RELATIONS)),
        (["period_returns", "--from", "2020-02-01", "--to", "2020-01-31"], "is before --from"),
        (["period_returns", "--from", "2020-02-30"], "not a day like 2020-01-31: '2020-02-30'"),
        (["period_returns", "--format", "xlsx"], "invalid choice: 'xlsx'"),
        (["latest_market", "--to", "2020-01-31"], "latest_market has no days to choose from"),
        (["currency_status", "--from", "2020-01-01"], "currency_status has no days"),
    ],
)
def test_a_bad_request_fails_with_exit_code_2_and_writes_nothing(
    out: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
):
    # Nothing listens there: a request is checked before any database is started or reached.
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://nobody@127.0.0.1:9/nothing")
    assert _coinmarket("export", *args, "--output", str(out / "file")) == 2
    error = capfd.readouterr().err
    assert message in error and "Traceback" not in error
    assert not list(out.iterdir())


def test_parquet_needs_an_output_file(out: Path, capfd: pytest.CaptureFixture[str]):
    assert _coinmarket("export", "period_returns", "--format", "parquet") == 2
    assert "parquet needs --output FILE" in capfd.readouterr().err


@pytest.mark.parametrize("format_", ["csv", "parquet"])
def test_a_failing_export_leaves_no_file_behind(
    empty_database_url: str,
    out: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    format_: str,
):
    monkeypatch.setenv(DATABASE_URL_ENV, empty_database_url)  # not migrated: no tables
    file = out / f"candles.{format_}"
    file.write_text("an earlier export")
    args = ["export", "historical_trade_data", "--format", format_, "--output", str(file)]
    assert _coinmarket(*args) == 1
    assert 'relation "historical_trade_data" does not exist' in capfd.readouterr().err
    assert [path.name for path in out.iterdir()] == [file.name]
    assert file.read_text() == "an earlier export"
