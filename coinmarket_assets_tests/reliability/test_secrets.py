"""Credentials reach no log line, event or error message, whether runs succeed or fail."""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from coinmarket_assets_tests.cmc_server import FakeCoinMarketCap
from coinmarket_assets_tests.dagster_cli import cli_environment, start_materialize
from coinmarket_assets_tests.dagster_runs import PARTITIONED_ASSETS
from coinmarket_assets_tests.synthetic import SyntheticMarket

# The embedded server trusts its Unix socket, so it accepts a URL with any password in it.
DB_PASSWORD = "db-Secret-4471"
API_KEY = "cmc-Secret-9023"
DAYS = "2020-01-01...2020-03-31"
RUN_SECONDS = 300


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def _environment(
    tmp_path: Path, market: SyntheticMarket, server: FakeCoinMarketCap, database_url: str
) -> dict[str, str]:
    env = cli_environment(tmp_path, tmp_path / "unused", market.tickers)
    return env | {
        "COINMARKET_DATABASE_URL": _with_password(database_url, DB_PASSWORD),
        "COINMARKET_SOURCE": "coinmarketcap",
        "COINMARKET_CMC_BASE_URL": server.data_api_url,
        "COINMARKET_CMC_PRO_BASE_URL": server.pro_api_url,
        "COINMARKET_CMC_API_KEY": API_KEY,
        "COINMARKET_CMC_RATE_LIMIT": "100",
        "COINMARKET_CMC_BACKOFF_SECONDS": "0.05",
        "COINMARKET_CMC_RETRY_BUDGET": "4",
    }


def _run(env: dict[str, str], assets: list[str], log: Path) -> int:
    days = None if assets == ["currency_status"] else DAYS
    return start_materialize(env, assets, days, log).wait(RUN_SECONDS)


def _events_mention(database_url: str, secret: str) -> int:
    """Dagster's stored events (messages, errors, metadata) that contain ``secret``."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM dagster.event_logs WHERE strpos(event, %s) > 0", [secret]
        ).fetchone()
    return row[0] if row else 0


def _assert_no_secret(text: str, database_url: str) -> None:
    for secret in (DB_PASSWORD, API_KEY):
        assert secret not in text
        assert _events_mention(database_url, secret) == 0


@pytest.mark.slow
def test_runs_with_retries_and_failures_never_show_a_credential(
    database_url: str, market: SyntheticMarket, tmp_path: Path
):
    with FakeCoinMarketCap(market, api_key=API_KEY, max_days=60) as server:
        env = _environment(tmp_path, market, server, database_url)
        server.fail_next(2, 503)
        server.fail_next(1, 429, retry_after=0.1)
        assert _run(env, ["currency_status"], tmp_path / "status.log") == 0
        server.truncate_next(1)
        server.malformed_next(1)
        assert _run(env, PARTITIONED_ASSETS, tmp_path / "days.log") == 0
        server.fail_next(50, 500)  # more than the retry budget: the run fails
        assert _run(env, PARTITIONED_ASSETS, tmp_path / "failed.log") != 0

    wrong_database = env | {
        "COINMARKET_DATABASE_URL": env["COINMARKET_DATABASE_URL"].replace(
            urlsplit(database_url).path, "/no_such_database"
        )
    }
    assert _run(wrong_database, PARTITIONED_ASSETS, tmp_path / "no_db.log") != 0

    logs = {path.name: path.read_text() for path in tmp_path.glob("*.log")}
    assert "retry" in logs["days.log"].lower() or "Retrying" in logs["status.log"]
    assert "no_such_database" in logs["no_db.log"]  # the error names what is wrong
    _assert_no_secret("\n".join(logs.values()), database_url)
