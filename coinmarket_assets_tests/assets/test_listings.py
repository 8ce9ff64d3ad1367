"""historical_listings outside top:N: context when the source has listings, nothing (and no
failure) when it has none; and top:N, which cannot run without them."""

import shutil
from pathlib import Path

import psycopg
import pytest

from coinmarket_assets.assets import listings
from coinmarket_assets_tests.assets.test_universe import write_market
from coinmarket_assets_tests.dagster_runs import failure_messages, materialize_days

FIRST, LAST = "2021-01-01", "2021-01-05"
SELECTION = ["historical_listings", "historical_trade_data"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The designed market of test_universe, with and without listings.csv."""
    folder = tmp_path_factory.mktemp("listings")
    write_market(folder / "with", listings=True)
    write_market(folder / "without", listings=False)
    return {"with": folder / "with", "without": folder / "without"}


def _count(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


def _listing_metadata(result: object) -> dict[str, object]:
    event = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "historical_listings"
    )
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_named_coins_without_listings_store_none_and_the_candles_still_load(
    database_url: str, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{sources['without']}")
    monkeypatch.setenv("COINMARKET_TICKERS", "BIGA,BIGB")
    result = materialize_days(FIRST, LAST, selection=SELECTION)
    assert "listings.csv does not exist" in _listing_metadata(result)["listings_unavailable"]
    assert _count(database_url, "SELECT count(*) FROM historical_listings") == 0
    assert _count(database_url, "SELECT count(*) FROM historical_trade_data") == 2 * 5
    assert _count(database_url, "SELECT count(*) FROM universe_membership") == 0


def test_named_coins_with_listings_store_them_as_context_without_membership(
    database_url: str, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{sources['with']}")
    monkeypatch.setenv("COINMARKET_TICKERS", "BIGA,BIGB")
    monkeypatch.setenv("COINMARKET_LISTING_DEPTH", "4")
    result = materialize_days(FIRST, LAST, selection=SELECTION)
    assert _listing_metadata(result)["listings_unavailable"] == ""
    assert _count(database_url, "SELECT count(*) FROM historical_listings") == 4 * 5
    assert _count(database_url, "SELECT max(rank) FROM historical_listings") == 4
    assert _count(database_url, "SELECT count(*) FROM universe_membership") == 0
    # The named coins only: the listing does not widen the universe.
    assert _count(database_url, "SELECT count(DISTINCT coin_id) FROM historical_trade_data") == 2
    # A later run from a source without listings leaves the stored listings as they are.
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{sources['without']}")
    materialize_days(FIRST, LAST, selection=SELECTION)
    assert _count(database_url, "SELECT count(*) FROM historical_listings") == 4 * 5


def test_top_n_without_listings_fails_naming_the_mode_and_the_file(
    database_url: str, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{sources['without']}")
    monkeypatch.setenv("COINMARKET_TICKERS", "top:3")
    result = materialize_days(FIRST, LAST, selection=SELECTION, raise_on_error=False)
    assert not result.success
    messages = failure_messages(result)
    assert "COINMARKET_TICKERS=top:3" in messages
    assert "listings.csv" in messages
    assert _count(database_url, "SELECT count(*) FROM historical_trade_data") == 0


def test_a_listing_depth_of_zero_fetches_and_replaces_no_listing(
    database_url: str, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{sources['with']}")
    monkeypatch.setenv("COINMARKET_TICKERS", "BIGA,BIGB")
    monkeypatch.setenv("COINMARKET_LISTING_DEPTH", "0")
    result = materialize_days(FIRST, LAST, selection=SELECTION)
    assert "COINMARKET_LISTING_DEPTH=0" in _listing_metadata(result)["listings_unavailable"]
    assert _count(database_url, "SELECT count(*) FROM historical_listings") == 0
    assert _count(database_url, "SELECT count(*) FROM historical_trade_data") == 2 * 5


def _listings_dump(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM historical_listings ORDER BY 1, 2").fetchall()


def test_a_run_written_a_day_per_batch_stores_what_one_batch_stores(
    database_url: str, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{sources['with']}")
    monkeypatch.setenv("COINMARKET_TICKERS", "BIGA,BIGB")
    monkeypatch.setenv("COINMARKET_LISTING_DEPTH", "4")
    materialize_days(FIRST, LAST, selection=["historical_listings"])
    whole = _listings_dump(database_url)
    monkeypatch.setattr(listings, "LISTING_ROWS_PER_BATCH", 4)  # one day of depth 4 per batch
    result = materialize_days(FIRST, LAST, selection=["historical_listings"])
    assert _listings_dump(database_url) == whole
    assert len(whole) == 4 * 5
    assert _listing_metadata(result)["run_rows_written"] == 4 * 5


def test_a_listing_failing_after_its_first_batches_keeps_every_stored_day(
    database_url: str,
    sources: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{sources['with']}")
    monkeypatch.setenv("COINMARKET_TICKERS", "BIGA,BIGB")
    monkeypatch.setenv("COINMARKET_LISTING_DEPTH", "4")
    materialize_days(FIRST, LAST, selection=SELECTION)
    stored = _listings_dump(database_url)
    # The same market, its listing of the run's last day spoiled; one day per batch, so the
    # first four days were written before the bad one is read.
    spoiled = tmp_path / "spoiled"
    shutil.copytree(sources["with"], spoiled)
    lines = (spoiled / "listings.csv").read_text().splitlines()
    bad = next(i for i, line in enumerate(lines) if line.startswith(LAST))
    fields = lines[bad].split(",")
    fields[6] = "-1"  # price
    lines[bad] = ",".join(fields)
    (spoiled / "listings.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{spoiled}")
    monkeypatch.setattr(listings, "LISTING_ROWS_PER_BATCH", 4)
    result = materialize_days(FIRST, LAST, selection=SELECTION)
    assert "price is not positive" in _listing_metadata(result)["listings_unavailable"]
    assert _listings_dump(database_url) == stored
    assert _count(database_url, "SELECT count(*) FROM historical_trade_data") == 2 * 5
