"""deploy/least_privilege.sql on a real PostgreSQL: the migration role owns and migrates the
schema; the pipeline role runs the asset graph and Dagster's storage with DML only, and any DDL
it attempts is refused."""

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from dagster import DagsterInstance, materialize

from coinmarket_assets.definitions import defs
from coinmarket_assets.storage.dagster_instance import DagsterSchemaError, create_schema
from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets.storage.embedded import create_database
from coinmarket_assets.storage.migrations import (
    apply_migrations,
    ensure_schema_current,
    pending_migrations,
)
from coinmarket_assets.storage.tables import STATE_TABLES, TABLES
from coinmarket_assets_tests.dagster_runs import (
    dump_all,
    materialize_days,
    materialize_unpartitioned,
)
from coinmarket_testkit.databases import database_url_for, drop_database
from coinmarket_testkit.synthetic import (
    default_market,
    market_global_metrics,
    write_global_metrics_csv,
)

PROJECT = Path(__file__).resolve().parents[2]
SETUP_SQL = PROJECT / "deploy" / "least_privilege.sql"
MIGRATOR, PIPELINE = "coinmarket_migrator", "coinmarket_pipeline"
FIRST, LAST = "2020-01-01", "2020-01-30"
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
YOYO_READ = ("_yoyo_migration", "_yoyo_version")  # what the start-up check reads
YOYO_PRIVATE = ("_yoyo_log", "yoyo_lock")


@dataclass(frozen=True)
class Urls:
    admin: str
    migrator: str
    pipeline: str


def _urls(server_url: str, database: str) -> Urls:
    def as_role(role: str) -> str:
        parts = urlsplit(server_url)
        # The roles have no password: the embedded server trusts its Unix socket.
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{quote(role)}@{host}", path=f"/{database}"))

    admin = database_url_for(server_url, database)
    return Urls(admin, as_role(MIGRATOR), as_role(PIPELINE))


def _run_setup(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(SETUP_SQL.read_text())


# Read at collection, before fixtures export test databases' URLs.
EXTERNAL_SERVER = bool(os.environ.get(DATABASE_URL_ENV))


def _require_embedded_server() -> None:
    # The roles are cluster-wide, have fixed names and log in without a password: only the
    # throwaway embedded server is a safe place for them.
    if EXTERNAL_SERVER:
        pytest.skip("needs the embedded test server (COINMARKET_DATABASE_URL is set)")


@pytest.fixture
def roles_only(server_url: str, empty_database_url: str) -> Urls:
    """A fresh database after the administrator's setup, not migrated yet."""
    _require_embedded_server()
    urls = _urls(server_url, urlsplit(empty_database_url).path.lstrip("/"))
    _run_setup(urls.admin)
    return urls


@dataclass(frozen=True)
class Deployment:
    urls: Urls
    source: Path
    tables: dict[str, bytes]  # every data table after the pipeline's runs
    public_tables: set[str]


@pytest.fixture(scope="module")
def deployment(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The documented sequence: setup, migrate as the migrator, setup again, then the real graph
    over a month of days as the pipeline role."""
    _require_embedded_server()
    name = f"coinmarket_least_privilege_{os.getpid()}"
    create_database(server_url, name)
    urls = _urls(server_url, name)
    try:
        _run_setup(urls.admin)
        apply_migrations(urls.migrator)
        _run_setup(urls.admin)
        source = tmp_path_factory.mktemp("cmc")
        _materialize_as(urls.pipeline, source)
        tables = set(_table_owners(urls.admin, "public"))
        yield Deployment(urls, source, dump_all(urls.admin), tables)
    finally:
        drop_database(server_url, name)


def _use_source(patch: pytest.MonkeyPatch, source: Path) -> None:
    patch.setenv("COINMARKET_SOURCE", f"csv:{source}")
    patch.setenv("COINMARKET_TICKERS", ",".join(default_market().tickers))


def _materialize_as(url: str, source: Path) -> None:
    market = default_market()
    market.write_csv(source)
    market.write_listings_csv(source)  # so the pipeline role writes listings too
    write_global_metrics_csv(source, market_global_metrics(market))  # and global metrics
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATABASE_URL_ENV, url)
        _use_source(patch, source)
        assert materialize_unpartitioned(["currency_status"]).success
        assert materialize_days(FIRST, LAST).success


def _table_owners(url: str, schema: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = %s", [schema]
        ).fetchall()
    return dict(rows)


def test_migration_role_applies_migrations_once_and_owns_the_tables(roles_only: Urls):
    applied = apply_migrations(roles_only.migrator)
    assert applied == [path.stem for path in sorted((PROJECT / "sql").glob("V*.sql"))]
    assert apply_migrations(roles_only.migrator) == []
    owners = _table_owners(roles_only.admin, "public")
    assert set(TABLES) | {*YOYO_READ, *YOYO_PRIVATE} <= set(owners)
    assert set(owners.values()) == {MIGRATOR}


def test_setup_hands_tables_an_administrator_migrated_to_the_migration_role(
    server_url: str, database_url: str
):
    _require_embedded_server()
    urls = _urls(server_url, urlsplit(database_url).path.lstrip("/"))
    _run_setup(urls.admin)
    assert set(_table_owners(urls.admin, "public").values()) == {MIGRATOR}
    ensure_schema_current(urls.pipeline)
    assert apply_migrations(urls.migrator) == []


def test_pipeline_role_materializes_the_graph(deployment: Deployment):
    for table, rows in deployment.tables.items():
        assert rows, f"{table} is empty"
    candles = default_market().candles()
    expected = candles["trade_date"].between(FIRST, LAST).sum()
    assert deployment.tables["historical_trade_data"].count(b"\n") == expected


def test_pipeline_role_has_dml_on_data_tables_and_only_reads_migration_history(
    deployment: Deployment,
):
    with psycopg.connect(deployment.urls.pipeline) as conn:

        def granted(table: str) -> set[str]:
            privileges = (*DML, "TRUNCATE", "REFERENCES", "TRIGGER")
            query = "SELECT has_table_privilege(%s, %s)"
            return {p for p in privileges if conn.execute(query, [table, p]).fetchone()[0]}

        tables = [*TABLES, *STATE_TABLES]
        assert {table: granted(table) for table in tables} == {table: set(DML) for table in tables}
        assert {table: granted(table) for table in YOYO_READ} == {t: {"SELECT"} for t in YOYO_READ}
        assert {table: granted(table) for table in YOYO_PRIVATE} == {t: set() for t in YOYO_PRIVATE}
        database = conn.info.dbname
        assert conn.execute(
            "SELECT has_database_privilege(%s, 'CREATE'), has_database_privilege(%s, 'TEMP'),"
            " has_schema_privilege('public', 'CREATE')",
            [database, database],
        ).fetchone() == (False, True, False)


REFUSED_DDL = [
    "DROP TABLE historical_trade_data",
    "ALTER TABLE historical_rolling ADD COLUMN note text",
    "CREATE TABLE public.intruder (id integer)",
    "TRUNCATE top_ranking",
    "CREATE INDEX ON period_returns (period_return)",
    "CREATE SCHEMA intruder",
]
# Forged migration records would hide pending migrations; the lock is the migrator's.
REFUSED_BOOKKEEPING = [
    "DELETE FROM _yoyo_migration",
    "INSERT INTO _yoyo_version VALUES (3, now())",
    "INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 1)",
    "SELECT * FROM _yoyo_log",
]


def _assert_refused(deployment: Deployment, statement: str) -> None:
    with (
        psycopg.connect(deployment.urls.pipeline) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)
    assert dump_all(deployment.urls.admin) == deployment.tables
    assert set(_table_owners(deployment.urls.admin, "public")) == deployment.public_tables
    assert pending_migrations(deployment.urls.pipeline) == []


@pytest.mark.parametrize("statement", REFUSED_DDL)
def test_pipeline_role_is_refused_ddl_and_the_tables_stay_intact(
    deployment: Deployment, statement: str
):
    _assert_refused(deployment, statement)


@pytest.mark.parametrize("statement", REFUSED_BOOKKEEPING)
def test_pipeline_role_may_not_touch_migration_bookkeeping_beyond_reading_it(
    deployment: Deployment, statement: str
):
    _assert_refused(deployment, statement)


def test_pipeline_role_finds_a_current_schema_current_but_cannot_apply_a_pending_one(
    deployment: Deployment,
):
    assert apply_migrations(deployment.urls.pipeline) == []  # what `coinmarket exec` does first
    with psycopg.connect(deployment.urls.admin, autocommit=True) as conn:
        applied = conn.execute(
            "DELETE FROM _yoyo_migration WHERE migration_id = 'V0002__trade_data_provenance' "
            "RETURNING *"
        ).fetchall()
    try:
        # yoyo retries its lock for 10 seconds before reporting the refusal.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            apply_migrations(deployment.urls.pipeline)
    finally:
        with psycopg.connect(deployment.urls.admin, autocommit=True) as conn:
            placeholders = ", ".join(["%s"] * len(applied[0]))
            conn.execute(f"INSERT INTO _yoyo_migration VALUES ({placeholders})", applied[0])
    assert dump_all(deployment.urls.admin) == deployment.tables


def test_tables_of_later_migrations_get_dml_for_the_pipeline(deployment: Deployment):
    with psycopg.connect(deployment.urls.migrator, autocommit=True) as conn:
        conn.execute("CREATE TABLE later_table (id integer GENERATED ALWAYS AS IDENTITY, x text)")
    try:
        with psycopg.connect(deployment.urls.pipeline) as conn:
            conn.execute("INSERT INTO later_table (x) VALUES ('a')")
            conn.execute("UPDATE later_table SET x = 'b'")
            assert conn.execute("SELECT id, x FROM later_table").fetchall() == [(1, "b")]
            conn.execute("DELETE FROM later_table")
    finally:
        with psycopg.connect(deployment.urls.migrator, autocommit=True) as conn:
            conn.execute("DROP TABLE later_table")


def test_dagster_storage_creates_its_tables_in_the_pipelines_schema_and_records_runs(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    shutil.copy(PROJECT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv(DATABASE_URL_ENV, deployment.urls.pipeline)
    _use_source(monkeypatch, deployment.source)
    with DagsterInstance.get() as instance:
        result = materialize(
            [a for a in defs.assets if a.key.path == ["currency_status"]],
            resources=defs.resources,
            instance=instance,
        )
    assert result.success
    owners = _table_owners(deployment.urls.admin, "dagster")
    assert {"runs", "event_logs", "jobs"} <= set(owners)
    assert set(owners.values()) == {PIPELINE}
    with psycopg.connect(deployment.urls.pipeline) as conn:
        assert conn.execute("SELECT count(*) FROM dagster.runs").fetchone() == (1,)


def test_a_missing_dagster_schema_fails_naming_what_to_grant(roles_only: Urls):
    with pytest.raises(DagsterSchemaError, match=r"'dagster_elsewhere'.*CREATE SCHEMA"):
        create_schema(roles_only.pipeline, "dagster_elsewhere")
