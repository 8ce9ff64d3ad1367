"""COINMARKET_EXCLUDE_TAGS in top_ranking and bottom_ranking: the real assets, IO manager and
checks over period_returns, listings and currency_status rows written here, against a
plain-Python reference of the rule (a coin's tags on a day are its listing's that day, else its
currency_status tags)."""

from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import psycopg
import pytest
from dagster import ExecuteInProcessResult

from coinmarket_assets import checks
from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.dagster_runs import materialize_days

RANKINGS = ["top_ranking", "bottom_ranking"]
FIRST, FALLING, LAST = date(2021, 5, 18), date(2021, 5, 20), date(2021, 5, 21)
EXCLUDE = "stablecoin,wrapped-tokens"
SIZE = 5  # COINMARKET_RANK_SIZE's default

# The 23 coins of the real data, with returns shaped like their real ones into 2021-05-20 (a
# crash): the stablecoins hold still, so they rank 2 and 3 of the top on that day.
COINS = {
    5426: ("SOL", 0.0913),
    825: ("USDT", 0.0020),
    3408: ("USDC", 0.0001),
    2010: ("ADA", -0.0637),
    7278: ("AAVE", -0.0783),
    52: ("XRP", -0.1276),
    3717: ("WBTC", -0.1796),
    1: ("BTC", -0.1797),
    74: ("DOGE", -0.1839),
    3635: ("CRO", -0.2120),
    512: ("XLM", -0.2275),
    1027: ("ETH", -0.2506),
    1958: ("TRX", -0.2624),
    6636: ("DOT", -0.2718),
    873: ("XEM", -0.2739),
    3794: ("ATOM", -0.2781),
    1975: ("LINK", -0.2856),
    7083: ("UNI", -0.2937),
    328: ("XMR", -0.2981),
    1839: ("BNB", -0.3112),
    1720: ("MIOTA", -0.3204),
    2: ("LTC", -0.3302),
    1765: ("EOS", -0.3735),
}
# currency_status tags (now); ADA has none there.
STATUS_TAGS = {
    825: "stablecoin",
    3408: "asset-backed-stablecoin;stablecoin",
    3717: "wrapped-tokens",
}
# Listing rows (day, coin) -> tags; None: listed without tags (currency_status decides).
LISTED_TAGS = {
    (FALLING, 825): None,  # USDT: excluded through currency_status
    (FALLING, 3408): "stablecoin",
    (LAST, 3408): "defi",  # USDC as listed on LAST carries no excluded tag: it counts then
    (LAST, 2010): "wrapped-tokens",  # ADA as listed on LAST is excluded, whatever status says
}

# On LAST, USDC jumps (it counts: its listing that day has no excluded tag) and ADA jumps
# higher (it does not: its listing that day carries wrapped-tokens).
LAST_JUMPS = {3408: 0.5, 2010: 0.6}


def _days() -> list[date]:
    return [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]


def _returns() -> list[tuple[int, str, date, float]]:
    """FALLING as above; the other days' returns drawn (rounded, so that some tie), with the
    stablecoins near zero as they are."""
    rng = np.random.default_rng(20210520)
    rows = []
    for day in _days():
        for coin_id, (ticker, value) in COINS.items():
            if day != FALLING:
                spread = 0.002 if coin_id in (825, 3408) else 0.1
                value = float(np.round(rng.normal(0, spread), 3))
            rows.append(
                (coin_id, ticker, day, LAST_JUMPS.get(coin_id, value) if day == LAST else value)
            )
    return rows


def _tags_on(day: date, coin_id: int) -> str | None:
    if (day, coin_id) in LISTED_TAGS and LISTED_TAGS[(day, coin_id)] is not None:
        return LISTED_TAGS[(day, coin_id)]
    return STATUS_TAGS.get(coin_id)


def _reference(highest_first: bool, excluded: set[str]) -> list[tuple]:
    """Plain Python: each day's coins without an excluded tag that day, ordered by return, then
    ticker, then coin id; the first SIZE."""
    by_day: dict[date, list[tuple[float, str, int]]] = {}
    for coin_id, ticker, day, value in _returns():
        if not set((_tags_on(day, coin_id) or "").split(";")) & excluded:
            by_day.setdefault(day, []).append((value, ticker, coin_id))
    rows = []
    for day in sorted(by_day):
        ordered = sorted(by_day[day], key=lambda e: (-e[0] if highest_first else e[0], *e[1:]))
        for rank, (value, ticker, coin_id) in enumerate(ordered[:SIZE], 1):
            rows.append((day, rank, coin_id, ticker, value))
    return rows


@pytest.fixture(scope="module")
def url(server_url: str, template_url: str) -> Iterator[str]:
    """period_returns of four days, currency_status and some listing rows, with tags."""
    with module_database(server_url, "excluded_tags") as url, psycopg.connect(url) as conn:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO period_returns (coin_id, ticker, trade_date, period_return) "
                "VALUES (%s, %s, %s, %s)",
                _returns(),
            )
            cursor.executemany(
                "INSERT INTO currency_status (coin_id, ticker, coin_name, slug, tags) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(c, t, t, t.lower(), STATUS_TAGS.get(c)) for c, (t, _) in COINS.items()],
            )
            cursor.executemany(
                "INSERT INTO historical_listings (trade_date, coin_id, ticker, coin_name, slug, "
                "rank, price, tags) VALUES (%s, %s, 'T', 'N', 's', %s, 1.0, %s)",
                [(d, c, rank, tags) for rank, ((d, c), tags) in enumerate(LISTED_TAGS.items(), 1)],
            )
        conn.commit()
        yield url


def _rank(url: str, monkeypatch: pytest.MonkeyPatch, **settings: str) -> ExecuteInProcessResult:
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(t for t, _ in COINS.values()))
    resources = {"pipeline_settings": PipelineSettingsResource(**settings)}
    return materialize_days(str(FIRST), str(LAST), RANKINGS, resources)


def _stored(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT trade_date, rank, coin_id, ticker, period_return FROM {table} "
            "ORDER BY trade_date, rank"
        ).fetchall()


def _mismatches(url: str, table: str, exclude_tags: tuple[str, ...]) -> checks.CheckOutcome:
    with psycopg.connect(url) as conn:
        return checks.ranking_mismatches(
            conn,
            table,
            FIRST,
            LAST,
            SIZE,
            highest_first=table == "top_ranking",
            exclude_tags=exclude_tags,
        )


def test_excluded_tags_leave_coins_out_of_the_rankings_by_the_days_tags(
    url: str, monkeypatch: pytest.MonkeyPatch
):
    result = _rank(url, monkeypatch, exclude_tags=EXCLUDE)
    excluded = set(EXCLUDE.split(","))
    top, bottom = _stored(url, "top_ranking"), _stored(url, "bottom_ranking")
    assert top == _reference(True, excluded)
    assert bottom == _reference(False, excluded)
    falling = [ticker for day, _, _, ticker, _ in top if day == FALLING]
    assert falling == ["SOL", "ADA", "AAVE", "XRP", "BTC"]  # five, without USDT, USDC, WBTC
    last = [ticker for day, _, _, ticker, _ in top if day == LAST]
    assert last[0] == "USDC" and "ADA" not in last  # the listing of LAST decides both
    assert [t for d, _, _, t, _ in _reference(True, set()) if d == LAST][:2] == ["ADA", "USDC"]
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 4 and all(e.passed for e in evaluations), [
        e.metadata["problems"].value for e in evaluations
    ]
    (falling_event,) = [
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key.path == ["top_ranking"] and event.partition == str(FALLING)
    ]
    table = falling_event.step_materialization_data.materialization.metadata["ranking"].value
    assert "Left out for an excluded tag: USDT (id 825) +0.20%, USDC (id 3408) +0.01%" in table


def test_without_excluded_tags_every_coin_counts_and_the_check_fails_such_rankings_with_them(
    url: str, monkeypatch: pytest.MonkeyPatch
):
    result = _rank(url, monkeypatch)
    assert _stored(url, "top_ranking") == _reference(True, set())
    assert _stored(url, "bottom_ranking") == _reference(False, set())
    assert all(e.passed for e in result.get_asset_check_evaluations())
    falling = [t for day, _, _, t, _ in _stored(url, "top_ranking") if day == FALLING]
    assert falling == ["SOL", "USDT", "USDC", "ADA", "AAVE"]
    # Rankings stored without the exclusion fail a check that expects it, naming the ranks.
    outcome = _mismatches(url, "top_ranking", ("stablecoin", "wrapped-tokens"))
    assert not outcome.passed
    assert any(p.startswith(f"{FALLING} rank 2: stored USDT (id 825)") for p in outcome.problems)
    assert _mismatches(url, "top_ranking", ()).passed
