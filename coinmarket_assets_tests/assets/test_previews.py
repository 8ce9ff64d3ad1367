"""What users see of a run on a real PostgreSQL: each ranking day's table of coins, a preview in
every materialization, and one structured log line per table write and per coin fetched,
without credentials."""

from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, EventLogEntry, ExecuteInProcessResult, materialize

from coinmarket_assets.assets.rankings import TABLE_DAYS
from coinmarket_assets.definitions import defs
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets_tests.dagster_runs import PARTITIONED_ASSETS, read_table
from coinmarket_assets_tests.hostile_secrets import with_password
from coinmarket_assets_tests.reference import ranking_reference
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import (
    SyntheticMarket,
    market_global_metrics,
    write_global_metrics_csv,
)

DB_PASSWORD = "db-Secret-5150"
API_KEY = "cmc-Secret-7777"


def _run(
    selection: Sequence[str], first_day: str | None = None, last_day: str | None = None
) -> tuple[ExecuteInProcessResult, list[EventLogEntry]]:
    """One run, and every entry of its event log: log lines, events, metadata."""
    instance = DagsterInstance.ephemeral()
    tags = {}
    if first_day and last_day:
        tags = partition_range_tags(first_day, last_day)
    result = materialize(
        assets=list(defs.assets),
        selection=list(selection),
        resources=defs.resources,
        tags=tags,
        instance=instance,
    )
    return result, list(instance.all_logs(result.run_id))


def _fields(entries: list[EventLogEntry], event: str) -> list[dict[str, str]]:
    """The key=value fields of the log lines of ``event``."""
    return [
        dict(part.split("=", 1) for part in entry.user_message.split())
        for entry in entries
        if entry.user_message.startswith(f"event={event} ")
    ]


def _mentions(entries: list[EventLogEntry], secret: str) -> list[str]:
    """Entries (messages, events and their metadata) that contain ``secret``."""
    return [text for text in map(repr, entries) if secret in text]


def _materializations(result: ExecuteInProcessResult, asset: str) -> dict[str, dict]:
    return {
        m.partition: {key: getattr(v, "value", v) for key, v in m.metadata.items()}
        for m in (e.materialization for e in result.get_asset_materialization_events())
        if m.asset_key.path[-1] == asset
    }


@pytest.fixture
def url_with_password(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test database's URL with a password (the embedded server trusts its socket)."""
    url = with_password(database_url, DB_PASSWORD)
    monkeypatch.setenv("COINMARKET_DATABASE_URL", url)
    yield url


def _table_rows(markdown: str) -> list[tuple[int, str, int, str]]:
    """(rank, ticker, coin id, return) of a ranking table."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    return [(int(r), t.strip(), int(c), p.strip()) for r, t, c, p in rows[1:]]


@pytest.fixture
def with_listings(csv_source: Path, market: SyntheticMarket) -> Path:
    """The csv source with its daily listings and global metrics, so that every daily table
    gets rows."""
    market.write_listings_csv(csv_source)
    write_global_metrics_csv(csv_source, market_global_metrics(market))
    return csv_source


def test_each_ranking_day_shows_its_coins_as_a_table(database_url: str, with_listings: Path):
    result, _ = _run(PARTITIONED_ASSETS, "2020-03-01", "2020-04-30")
    returns = read_table("period_returns")
    days = pd.date_range("2020-03-01", "2020-04-30").strftime("%Y-%m-%d")

    for table, highest_first, word in [
        ("top_ranking", True, "Highest"),
        ("bottom_ranking", False, "Lowest"),
    ]:
        shown = _materializations(result, table)
        assert sorted(shown) == list(days)
        # The run's newest days each show their own table; a long run's older days do not.
        assert [day for day in days if "ranking" in shown[day]] == list(days[-TABLE_DAYS:])
        for day in days[-TABLE_DAYS:]:
            markdown = shown[day]["ranking"]
            assert markdown.startswith(f"**{word} 5-day returns on {day}**")
            expected = ranking_reference(returns[returns["trade_date"] == day], 5, highest_first)
            assert _table_rows(markdown) == [
                (rank, ticker, coin_id, f"{value:+.2%}")
                for _, rank, coin_id, ticker, value in expected
            ]

    for asset in PARTITIONED_ASSETS:
        assert all("preview" in m for m in _materializations(result, asset).values()), asset


def test_a_day_without_returns_says_so(database_url: str, csv_source: Path):
    result, _ = _run(
        ["historical_trade_data", "period_returns", "top_ranking"], "2020-03-01", "2020-03-02"
    )
    shown = _materializations(result, "top_ranking")
    assert shown["2020-03-02"]["ranking"] == (
        "**Highest 5-day returns on 2020-03-02**: no coin has a stored return that day."
    )


def test_every_table_write_logs_one_line_with_its_counts_and_no_credentials(
    url_with_password: str, with_listings: Path
):
    status, status_messages = _run(["currency_status"])
    days, day_messages = _run(PARTITIONED_ASSETS, "2020-03-01", "2020-04-30")
    assert status.success and days.success

    (upsert,) = _fields(status_messages, "table_write")
    assert upsert["table"] == "currency_status"
    assert upsert["mode"] == "upsert"
    assert int(upsert["rows"]) == len(read_table("currency_status"))

    writes = _fields(day_messages, "table_write")
    assert sorted(w["table"] for w in writes) == sorted(PARTITIONED_ASSETS)
    for write in writes:
        # A first run into an empty database: the run's rows are the whole table.
        assert int(write["rows"]) == len(read_table(write["table"])), write
        assert (write["first_day"], write["last_day"], write["days"]) == (
            "2020-03-01",
            "2020-04-30",
            "61",
        )
        assert write["replaced"] == "0"
        assert float(write["seconds"]) >= 0
    reads = _fields(day_messages, "table_read")
    # market_index reads the listings too (by narrow queries, logged as a batched input).
    assert {r["table"] for r in reads} == {
        "historical_listings",
        "historical_trade_data",
        "period_returns",
    }

    assert _mentions(day_messages, "event=table_write")  # the search sees the log lines
    assert not _mentions(status_messages + day_messages, DB_PASSWORD)


def test_each_coin_fetched_logs_one_line_with_its_counts_and_no_api_key(
    database_url: str, market: SyntheticMarket, monkeypatch: pytest.MonkeyPatch
):
    with FakeCoinMarketCap(market, api_key=API_KEY, max_days=30) as server:
        monkeypatch.setenv("COINMARKET_SOURCE", "coinmarketcap")
        monkeypatch.setenv("COINMARKET_CMC_BASE_URL", server.data_api_url)
        monkeypatch.setenv("COINMARKET_CMC_PRO_BASE_URL", server.pro_api_url)
        monkeypatch.setenv("COINMARKET_CMC_API_KEY", API_KEY)
        monkeypatch.setenv("COINMARKET_CMC_RATE_LIMIT", "100")
        monkeypatch.setenv("COINMARKET_TICKERS", ",".join(market.tickers))
        result, messages = _run(["historical_trade_data"], "2020-03-01", "2020-04-29")
    assert result.success

    fetched = {int(line["coin_id"]): line for line in _fields(messages, "coin_fetched")}
    assert len(_fields(messages, "coin_fetched")) == len(market.coins)
    stored = read_table("historical_trade_data")
    for coin in market.coins:
        line = fetched[coin.coin_id]
        calls = [
            r
            for r in server.requests
            if "historical" in r.path and r.query.get("id") == str(coin.coin_id)
        ]
        assert line["ticker"] == coin.ticker
        assert (line["first_day"], line["last_day"], line["days_requested"]) == (
            "2020-03-01",
            "2020-04-29",
            "60",
        )
        # Received, before trimming: a page may reach past the first day (ALPHA's gap).
        assert int(line["candles"]) >= (stored["coin_id"] == coin.coin_id).sum()
        assert int(line["pages"]) == len(calls) >= 2  # 60 days at 30 per answer
        assert float(line["seconds"]) > 0
    assert fetched[102]["candles"] == "60"  # BETA, without gaps
    assert fetched[105]["candles"] == "20"  # LATE, listed on 2020-04-10
    assert not _mentions(messages, API_KEY)
