"""A coin is its CoinMarketCap id: after a rename (same id, new ticker, as MATIC became POL), the
statistics of days whose candles keep the old ticker are recomputed like any other coin's."""

from pathlib import Path

import pandas as pd
import pytest

from coinmarket_assets import checks
from coinmarket_assets.coverage import STATISTICS_ASSETS
from coinmarket_assets.sources.base import stored_universe
from coinmarket_assets_tests.dagster_runs import (
    materialize_days,
    materialize_unpartitioned,
    read_table,
)
from coinmarket_assets_tests.reference import assert_rolling_matches, rolling_reference
from coinmarket_testkit.synthetic import SyntheticMarket

FIRST, LAST = "2020-01-01", "2020-04-30"
OLD_FIRST, OLD_LAST = "2020-02-01", "2020-03-31"  # recomputed after the rename
BETA_ID, OLD, NEW = 102, "BETA", "NEWBETA"
HISTORY = ["historical_trade_data", "historical_rolling", "period_returns"]


def _rename_beta(csv_source: Path, monkeypatch: pytest.MonkeyPatch, market: SyntheticMarket):
    """The source lists coin 102 under a new ticker, name and slug; the universe names it so."""
    path = csv_source / "coins.csv"
    coins = pd.read_csv(path, dtype=str, keep_default_na=False)
    renamed = coins["coin_id"] == str(BETA_ID)
    coins.loc[renamed, ["ticker", "name", "slug"]] = [NEW, "New Beta", "new-beta"]
    coins.to_csv(path, index=False)
    (csv_source / "daily" / f"{OLD}.csv").rename(csv_source / "daily" / f"{NEW}.csv")
    tickers = [NEW if ticker == OLD else ticker for ticker in market.tickers]
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(tickers))


def _recompute_old_days_with_rsi_period_7(
    monkeypatch: pytest.MonkeyPatch, before: pd.DataFrame
) -> None:
    """Recompute the statistics of days whose candles keep the old ticker with another RSI
    period: every coin's rows of those days, the renamed one's too, hold TA-Lib's RSI(7), the
    checks cover them, and the other days are untouched."""
    candles = read_table("historical_trade_data")
    beta = candles[candles["coin_id"] == BETA_ID]
    assert set(beta.loc[beta["trade_date"] <= OLD_LAST, "ticker"]) == {OLD}

    monkeypatch.setenv("COINMARKET_RSI_PERIOD", "7")
    result = materialize_days(OLD_FIRST, OLD_LAST, STATISTICS_ASSETS)

    days = pd.date_range(OLD_FIRST, OLD_LAST, freq="D")
    rolling = read_table("historical_rolling")
    in_run = rolling["trade_date"].isin(days)
    recomputed = rolling[in_run].set_index(["coin_id", "trade_date"])
    assert len(recomputed.loc[BETA_ID]) == len(days)
    assert_rolling_matches(recomputed, rolling_reference(candles, days, rsi_period=7))
    pd.testing.assert_frame_equal(
        rolling[~in_run].reset_index(drop=True),
        before[~before["trade_date"].isin(days)].reset_index(drop=True),
    )
    evaluations = {
        (e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()
    }
    assert all(e.passed for e in evaluations.values())
    matched = evaluations[("historical_rolling", checks.ONE_ROW_PER_STORED_CANDLE.name)]
    assert matched.metadata["rows"].value == len(recomputed)  # the renamed coin's rows too


def test_a_renamed_coin_is_recomputed_on_days_before_its_rename(
    database_url: str, csv_source: Path, market: SyntheticMarket, monkeypatch: pytest.MonkeyPatch
):
    materialize_unpartitioned(["currency_status"])
    materialize_days(FIRST, LAST, HISTORY)
    before = read_table("historical_rolling")
    _rename_beta(csv_source, monkeypatch, market)
    materialize_unpartitioned(["currency_status"])
    status = read_table("currency_status").set_index("coin_id")
    assert (status.at[BETA_ID, "ticker"], status.at[BETA_ID, "slug"]) == (NEW, "new-beta")

    _recompute_old_days_with_rsi_period_7(monkeypatch, before)


def test_without_currency_status_a_coin_is_named_by_its_newest_candle(
    database_url: str, csv_source: Path, market: SyntheticMarket, monkeypatch: pytest.MonkeyPatch
):
    materialize_days(FIRST, LAST, HISTORY)
    before = read_table("historical_rolling")
    _rename_beta(csv_source, monkeypatch, market)
    materialize_days("2020-05-01", "2020-05-01", ["historical_trade_data"])
    candles = read_table("historical_trade_data").set_index(["coin_id", "trade_date"])
    assert candles.at[(BETA_ID, pd.Timestamp("2020-05-01")), "ticker"] == NEW  # the newest
    assert read_table("currency_status").empty

    _recompute_old_days_with_rsi_period_7(monkeypatch, before)


def _names(*rows: tuple[int, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["coin_id", "ticker", "slug"]).astype(
        {"ticker": "str", "slug": "str"}
    )


def test_entries_name_coins_by_current_ticker_slug_or_id():
    names = _names(
        (3890, "POL", "polygon-ecosystem-token"),  # currency_status
        (3890, "MATIC", "polygon-ecosystem-token"),  # its newest candle, fetched before the rename
        (7, "UNI", "uniswap"),
        (8, "UNI", "universe"),
        (9, "UNI", None),  # no currency_status row: a missing slug matches any
    )
    assert stored_universe(names, ["POL"]) == ([3890], [])
    assert stored_universe(names, ["matic"]) == ([3890], [])
    assert stored_universe(names, ["UNI:uniswap"]) == ([7, 9], [])
    assert stored_universe(names, ["UNI"]) == ([7, 8, 9], [])
    assert stored_universe(names, ["1027", "POL:polygon", "NOPE"]) == (
        [1027],
        ["POL:polygon", "NOPE"],
    )
