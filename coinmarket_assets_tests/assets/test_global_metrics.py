"""The global_metrics asset through Dagster's materialize: a backfill stores the source's days;
a day not published yet has no row; without global metrics (no file, a failing source) the run
succeeds, stores nothing, keeps what is stored and says why."""

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from coinmarket_assets_tests.dagster_runs import materialize_days, read_table
from coinmarket_assets_tests.sources.global_metrics_reference import (
    assert_same,
    market_with_btc_and_eth,
    reference_from_file,
    reference_from_market,
)
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import market_global_metrics, write_global_metrics_csv

FIRST, LAST = "2020-01-01", "2020-07-18"  # every day of the market
SELECTION = ["global_metrics"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The market as a csv: source with global_metrics.csv (two days left out), and without."""
    folder = tmp_path_factory.mktemp("global_metrics")
    market = market_with_btc_and_eth()
    for name in ("with", "without"):
        market.write_csv(folder / name)
    metrics = market_global_metrics(market)
    metrics = metrics[~metrics["date"].isin(pd.to_datetime(["2020-03-01", "2020-03-02"]))]
    write_global_metrics_csv(folder / "with", metrics)
    return {"with": folder / "with", "without": folder / "without"}


def metadata(result: object) -> dict[str, object]:
    """The asset's materialization metadata (each day of a run gets the same)."""
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "global_metrics"
    ]
    return {key: value.value for key, value in events[0].materialization.metadata.items()}


def use_csv(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{directory}")
    monkeypatch.setenv("COINMARKET_TICKERS", "BTC")


def test_a_backfill_stores_the_files_days_and_names_the_missing_ones(
    database_url: str, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    use_csv(monkeypatch, sources["with"])
    result = materialize_days(FIRST, LAST, selection=SELECTION)
    path = sources["with"] / "global_metrics.csv"
    assert_same(
        read_table("global_metrics"), reference_from_file(path, date(2020, 1, 1), date(2020, 7, 18))
    )
    found = metadata(result)
    assert found["run_days"] == 200
    assert found["run_days_without_global_metrics"] == 2
    assert found["days_without_global_metrics"].endswith(": 2020-03-01, 2020-03-02")
    assert found["global_metrics_unavailable"] == ""
    # A later run from a source without the file keeps the stored rows and says why.
    use_csv(monkeypatch, sources["without"])
    result = materialize_days("2020-02-01", "2020-02-29", selection=SELECTION)
    assert result.success
    assert "global_metrics.csv does not exist" in metadata(result)["global_metrics_unavailable"]
    assert len(read_table("global_metrics")) == 198


def test_the_live_source_stores_the_servers_days_up_to_the_newest_published(
    database_url: str, monkeypatch: pytest.MonkeyPatch
):
    market = market_with_btc_and_eth()
    with FakeCoinMarketCap(market) as server:
        monkeypatch.setenv("COINMARKET_SOURCE", "coinmarketcap")
        monkeypatch.setenv("COINMARKET_CMC_BASE_URL", server.data_api_url)
        monkeypatch.setenv("COINMARKET_CMC_RATE_LIMIT", "100")
        monkeypatch.setenv("COINMARKET_TICKERS", "BTC")
        server.unpublished_from("2020-07-18")  # the newest day's quote is not out yet
        result = materialize_days("2020-06-01", LAST, selection=SELECTION)
        stored = read_table("global_metrics")
        expected = reference_from_market(market, date(2020, 6, 1), date(2020, 7, 17))
        assert_same(stored, expected)
        assert metadata(result)["run_days_without_global_metrics"] == 1
        # A bad answer fails the global metrics only: the run succeeds and the rows stay.
        server.unpublished_from(None)
        server.corrupt_global_metrics("2020-07-01", "btc_dominance", 250.0)
        result = materialize_days("2020-06-01", LAST, selection=SELECTION)
    assert result.success
    why = metadata(result)["global_metrics_unavailable"]
    assert "2020-07-01: btc_dominance is above 100 % (250.0)" in why
    assert_same(read_table("global_metrics"), expected)
