"""Every number of the table definitions, pinned at the asset level with the default settings.

One generated market (a csv: source) is materialized through the real assets and IO manager on
PostgreSQL: the candles of 365 days in one run, then the statistics and rankings of the last 60
in another, so that their lookbacks reach back into days the second run does not write. Each
stored table is compared with an independent reference (TA-Lib, plain pandas, plain Python) that
writes the numbers again: RSI(14) over the closes dated within 300 days, the population standard
deviation of the last 14 closes, 5-day returns by date, the top and bottom 5 with ties by ticker
(code point), then coin id. The market is built so that each number shows: coins whose window
reaches across a gap to a close exactly 300 days old, a flat stretch whose RSI is all seed, ties
on purpose, gaps, a late listing. ``python -m benchmarks.mutations`` changes each number in a
copy of the project and lists the tests that fail.
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetKey,
    ExecuteInProcessResult,
    IdentityPartitionMapping,
    TimeWindowPartitionsDefinition,
    build_schedule_context,
)

from coinmarket_assets.definitions import defs
from coinmarket_assets.schedules import daily_market_schedule
from coinmarket_assets.storage.database import DATABASE_URL_ENV, connect
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.dagster_runs import (
    PARTITIONED_ASSETS,
    materialize_days,
    materialize_unpartitioned,
    read_table,
)
from coinmarket_assets_tests.reference import (
    assert_close,
    ranking_reference,
    returns_reference,
    rolling_reference,
)
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, flatten

# The definitions, written again: nothing here is read from the package.
LOOKBACK_DAYS, RSI_PERIOD, STD_WINDOW, RETURN_DAYS, RANK_SIZE, CHART_DAYS = 300, 14, 14, 5, 5, 90

RUN_FIRST = date(2021, 11, 1)  # statistics and rankings from here
LAST = RUN_FIRST + timedelta(days=59)
FIRST = RUN_FIRST - timedelta(days=305)  # candles are stored from here
SOURCE_FIRST = FIRST - timedelta(days=3)  # the source publishes days before and after the runs'
SOURCE_LAST = LAST + timedelta(days=2)
RSI_GAP_COIN, STD_GAP_COIN, FLAT_COIN = 52, 1027, 2010
NUMBER_SETTINGS = ["RSI_PERIOD", "STD_WINDOW", "RETURN_DAYS", "RANK_SIZE", "TOP_N", "RESYNC_DAYS"]


def _candles(closes: np.ndarray, seed: int) -> pd.DataFrame:
    """Consistent candles of the source's days with these closes (one per day)."""
    rng = np.random.default_rng(seed)
    opens = np.concatenate([[closes[0]], closes[:-1]])
    return pd.DataFrame(
        {
            "date": pd.date_range(SOURCE_FIRST, periods=len(closes), freq="D"),
            "open": opens,
            "high": np.maximum(opens, closes) * 1.01,
            "low": np.minimum(opens, closes) * 0.99,
            "close": closes,
            "volume": rng.uniform(1e6, 1e9, len(closes)),
            "market_cap": closes * 1e7,
        }
    )


def _walk(seed: int, start: float, volatility: np.ndarray | float) -> pd.DataFrame:
    days = (SOURCE_LAST - SOURCE_FIRST).days + 1
    steps = np.random.default_rng(seed).normal(0.0, 1.0, days) * volatility
    return _candles(start * np.exp(np.cumsum(steps)), seed)


def _only(candles: pd.DataFrame, *spans: tuple[date, date]) -> pd.DataFrame:
    """The candles dated within the spans (inclusive): the source has gaps elsewhere."""
    dates = candles["date"].dt.date
    kept = np.logical_or.reduce([(dates >= first) & (dates <= last) for first, last in spans])
    return candles[kept].reset_index(drop=True)


def _scaled(candles: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Prices times a power of two: every return is bit-for-bit the same as the original's."""
    columns = ["open", "high", "low", "close", "market_cap"]
    return candles.assign(**{c: candles[c] * factor for c in columns})


def pinning_market() -> SyntheticMarket:
    """Eleven coins (real CoinMarketCap ids) built so that each number of the definitions shows."""

    def index(day: date) -> int:
        return (day - SOURCE_FIRST).days

    days = index(SOURCE_LAST) + 1
    # Wilder's seed (the first 14 changes of a window) weighs (13/14)**286 / 14, about 4e-11,
    # in the RSI of a full window: wild moves there against calm later ones still show it.
    calm_from = index(RUN_FIRST - timedelta(days=LOOKBACK_DAYS - 30))
    btc = _walk(1, 30000.0, np.where(np.arange(days) < calm_from, 0.25, 0.02))
    # Their only close before a long gap is dated exactly 300 days before the run's first day:
    # with it XRP has the 15 closes RSI(14) needs there and ETH the 14 closes of its deviation.
    gap_start = (SOURCE_FIRST, RUN_FIRST - timedelta(days=LOOKBACK_DAYS))
    xrp = _only(_walk(2, 0.5, 0.05), gap_start, (RUN_FIRST - timedelta(days=13), SOURCE_LAST))
    eth = _only(_walk(3, 700.0, 0.05), gap_start, (RUN_FIRST - timedelta(days=12), SOURCE_LAST))
    # Flat (zero volume) from 270 days before the run until 40 days into it: the RSI of the
    # run's first days comes from the moves at the far end of their window (all seed), and
    # then from no move at all (NULL).
    ada = _walk(4, 0.3, 0.05)
    flat = slice(index(RUN_FIRST - timedelta(days=270)), index(RUN_FIRST + timedelta(days=40)))
    flatten(ada, flat, 0.3)
    ada.iloc[flat, ada.columns.get_loc("volume")] = 0.0
    ada.loc[:10, "market_cap"] = 0.0
    # Equal returns on every day: by ticker BCH before LTC (though LTC's id is smaller);
    # by code point SUSHI before stETH (case-insensitively stETH would come first).
    ltc = _walk(5, 150.0, 0.06)
    sushi = _walk(6, 9.8e-05, 0.06)  # small enough for 1e-05 notation in the csv
    # The same ticker and candles (one daily file): the smaller coin id first. A missing day
    # in the run: no return that day nor 5 days later.
    neo = _only(
        _walk(7, 20.0, 0.06),
        (SOURCE_FIRST, RUN_FIRST + timedelta(days=19)),
        (RUN_FIRST + timedelta(days=21), SOURCE_LAST),
    )
    trx = _only(_walk(8, 0.03, 0.05), (RUN_FIRST + timedelta(days=10), SOURCE_LAST))  # new
    return SyntheticMarket(
        [
            SyntheticCoin(1, "BTC", "Bitcoin", btc),
            SyntheticCoin(STD_GAP_COIN, "ETH", "Ethereum", eth),
            SyntheticCoin(RSI_GAP_COIN, "XRP", "XRP", xrp),
            SyntheticCoin(1831, "BCH", "Bitcoin Cash", _scaled(ltc, 4.0)),
            SyntheticCoin(2, "LTC", "Litecoin", ltc),
            SyntheticCoin(1376, "NEO", "Neo", neo),
            SyntheticCoin(31, "NEO", "Neo Twin", neo),
            SyntheticCoin(FLAT_COIN, "ADA", "Cardano", ada),
            SyntheticCoin(1958, "TRX", "TRON", trx),
            SyntheticCoin(6758, "SUSHI", "SushiSwap", sushi),
            SyntheticCoin(8085, "stETH", "Lido Staked ETH", _scaled(sushi, 2.0)),
        ]
    )


@dataclass(frozen=True)
class Pinned:
    source: pd.DataFrame  # the source's candles dated FIRST..LAST, as stored
    statistics_run: ExecuteInProcessResult


@pytest.fixture(scope="module")
def pinned(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pinned]:
    """The market materialized with the default settings: candles FIRST..LAST, then
    statistics and rankings RUN_FIRST..LAST; COINMARKET_DATABASE_URL stays set for reads."""
    market = pinning_market()
    directory = tmp_path_factory.mktemp("pinned") / "cmc"
    market.write_csv(directory)
    tickers = "BTC,ETH,XRP,BCH,LTC,NEO:neo,NEO:neo-twin,ADA,TRX,SUSHI,STETH"
    with module_database(server_url, "pinned") as url, pytest.MonkeyPatch.context() as patch:
        for name in NUMBER_SETTINGS:
            patch.delenv(f"COINMARKET_{name}", raising=False)
        patch.setenv(DATABASE_URL_ENV, url)
        patch.setenv("COINMARKET_SOURCE", f"csv:{directory}")
        patch.setenv("COINMARKET_TICKERS", tickers)
        materialize_days(FIRST.isoformat(), LAST.isoformat(), ["historical_trade_data"])
        run = materialize_days(RUN_FIRST.isoformat(), LAST.isoformat(), PARTITIONED_ASSETS[1:])
        yield Pinned(_stored_source(market), run)


def _stored_source(market: SyntheticMarket) -> pd.DataFrame:
    candles = market.candles()
    stored_days = candles["trade_date"].between(pd.Timestamp(FIRST), pd.Timestamp(LAST))
    return candles[stored_days].reset_index(drop=True)


def _rolling(source: pd.DataFrame, **definition: int) -> pd.DataFrame:
    return rolling_reference(source, pd.date_range(RUN_FIRST, LAST, freq="D"), **definition)


def _assert_column_matches(
    column: str, stored: pd.DataFrame, expected: pd.DataFrame, abs_tol: float, rel_tol: float = 0
) -> None:
    """Every stored row of the run's days has its expected value (NULL where undefined)."""
    assert list(stored.index) == list(expected.index)
    for key, value in expected[column].items():
        actual = stored.at[key, column]
        assert_close(actual, value, abs_tol=abs_tol, rel_tol=rel_tol, what=f"{column} {key}")


def test_the_market_tells_each_neighbouring_definition_apart():
    """The pins below can fail: the market's reference values move by far more than their
    tolerance when any number of the definitions moves by one."""
    source = _stored_source(pinning_market())
    expected = _rolling(source)
    for column, other in [
        ("rsi", {"lookback_days": LOOKBACK_DAYS - 1}),
        ("rsi", {"lookback_days": LOOKBACK_DAYS + 1}),
        ("rsi", {"rsi_period": RSI_PERIOD - 1}),
        ("std_dev", {"lookback_days": LOOKBACK_DAYS - 1}),
        ("std_dev", {"std_window": STD_WINDOW - 1}),
    ]:
        changed = _rolling(source, **other)[column].astype("float64")
        values = expected[column].astype("float64")
        assert (changed.isna() != values.isna()).any() or (changed - values).abs().max() > 1e-6


@pytest.mark.parametrize(
    ("asset", "upstream", "days_before"),
    [
        ("historical_rolling", "historical_trade_data", LOOKBACK_DAYS),
        ("period_returns", "historical_trade_data", RETURN_DAYS),
        ("top_ranking", "period_returns", 0),
        ("bottom_ranking", "period_returns", 0),
        ("ranked_coin_chart", "historical_trade_data", CHART_DAYS - 1),
        ("ranked_coin_chart", "historical_rolling", CHART_DAYS - 1),
        ("ranked_coin_chart", "top_ranking", 0),
        ("ranked_coin_chart", "market_index", CHART_DAYS - 1),
        ("ranked_coin_chart", "global_metrics", CHART_DAYS - 1),
    ],
)
def test_each_day_depends_on_the_upstream_days_it_reads(
    asset: str, upstream: str, days_before: int
):
    """What Dagster's graph (the UI, staleness, automation) takes each day to depend on."""
    downstream = defs.resolve_assets_def(AssetKey(asset))
    partitions = downstream.partitions_def
    assert isinstance(partitions, TimeWindowPartitionsDefinition)
    # Without a mapping of its own, a dependency maps each day to the same day.
    mapping = downstream.get_partition_mapping(AssetKey(upstream)) or IdentityPartitionMapping()
    mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
        partitions.empty_subset().with_partition_keys([LAST.isoformat()]),
        partitions,
        defs.resolve_assets_def(AssetKey(upstream)).partitions_def,
        current_time=datetime(2030, 1, 1, tzinfo=UTC),
    )
    first = LAST - timedelta(days=days_before)
    expected = [d.date().isoformat() for d in pd.date_range(first, LAST, freq="D")]
    assert sorted(mapped.partitions_subset.get_partition_keys()) == expected


def test_the_daily_run_fetches_again_the_3_days_before_the_newest(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("COINMARKET_RESYNC_DAYS", raising=False)
    tick = build_schedule_context(scheduled_execution_time=datetime(2022, 1, 26, 0, 30, tzinfo=UTC))
    (request,) = daily_market_schedule.evaluate_tick(tick).run_requests
    assert request.run_key == "2022-01-25"  # the UTC day that just ended
    assert request.tags["dagster/asset_partition_range_start"] == "2022-01-22"
    assert request.tags["dagster/asset_partition_range_end"] == "2022-01-25"


def test_partition_d_stores_the_candles_of_utc_day_d_and_no_other(pinned: Pinned):
    stored = read_table("historical_trade_data")
    columns = list(pinned.source.columns)
    expected = pinned.source.sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(stored[columns], expected, check_exact=True, check_dtype=False)
    assert stored["trade_date"].min() == pd.Timestamp(FIRST)  # the source starts 3 days earlier
    assert stored["trade_date"].max() == pd.Timestamp(LAST)  # and ends 2 days later
    assert (stored.loc[stored["coin_id"] == FLAT_COIN, "volume"] == 0.0).sum() > 300


def test_rsi_is_wilders_14_over_the_closes_dated_within_300_days(pinned: Pinned):
    stored = read_table("historical_rolling").set_index(["coin_id", "trade_date"])
    _assert_column_matches("rsi", stored, _rolling(pinned.source), abs_tol=1e-9)
    # Only the close dated exactly 300 days before gives the coin its 15th close (its 14th
    # change), so the run must load that day although it writes none before RUN_FIRST.
    assert not np.isnan(stored.at[(RSI_GAP_COIN, pd.Timestamp(RUN_FIRST)), "rsi"])
    assert (stored["rsi"].isna() & stored["std_dev"].notna()).any()  # NULL while it fills
    flat = stored.loc[FLAT_COIN, "rsi"]
    assert flat.notna().any() and flat.isna().any()  # all seed, then a window without a move


def test_std_dev_is_the_population_deviation_of_the_last_14_closes_within_300_days(
    pinned: Pinned,
):
    stored = read_table("historical_rolling").set_index(["coin_id", "trade_date"])
    expected = _rolling(pinned.source)
    _assert_column_matches("std_dev", stored, expected, abs_tol=1e-15, rel_tol=1e-9)
    # The 14th-last close of this coin is dated exactly 300 days before the run's first day.
    assert not np.isnan(stored.at[(STD_GAP_COIN, pd.Timestamp(RUN_FIRST)), "std_dev"])


def _reference_returns(source: pd.DataFrame) -> pd.DataFrame:
    """The 5-day returns of the run's days, with each day's ticker, as the rankings see them."""
    days = pd.date_range(RUN_FIRST, LAST, freq="D")
    returns = returns_reference(source, days, RETURN_DAYS).reset_index()
    tickers = source[["coin_id", "trade_date", "ticker"]]
    return returns.merge(tickers, on=["coin_id", "trade_date"])


def test_returns_are_the_close_over_the_close_dated_5_days_before(pinned: Pinned):
    stored = read_table("period_returns")
    expected = _reference_returns(pinned.source).sort_values(["coin_id", "trade_date"])
    assert list(zip(stored["coin_id"], stored["trade_date"], strict=True)) == list(
        zip(expected["coin_id"], expected["trade_date"], strict=True)
    )
    assert (stored["period_return"].to_numpy() == expected["period_return"].to_numpy()).all()
    first_day = stored[stored["trade_date"] == pd.Timestamp(RUN_FIRST)]
    assert len(first_day) == 10  # each from a close the run does not write; not the new TRX
    neo = stored.loc[stored["coin_id"] == 1376, "trade_date"]
    missing = {RUN_FIRST + timedelta(days=20), RUN_FIRST + timedelta(days=25)}
    assert not missing & set(neo.dt.date)  # its gap day, and 5 days later (no older row used)


def _adjacent(ranked: list[tuple], first: tuple[int, str], second: tuple[int, str]) -> int:
    """Days on which ``first`` (coin id, ticker) is ranked right before ``second``."""
    return sum(
        a[0] == b[0] and a[2:4] == first and b[2:4] == second for a, b in itertools.pairwise(ranked)
    )


def _ties_across_the_cut(returns: pd.DataFrame, highest_first: bool) -> int:
    """Days on which the last ranked return equals the first unranked one."""
    days = 0
    for _, group in returns.groupby("trade_date"):
        ordered = group["period_return"].sort_values(ascending=not highest_first).to_numpy()
        days += len(ordered) > RANK_SIZE and ordered[RANK_SIZE - 1] == ordered[RANK_SIZE]
    return days


@pytest.mark.parametrize(
    ("table", "highest_first"), [("top_ranking", True), ("bottom_ranking", False)]
)
def test_rankings_are_the_5_extreme_returns_ties_by_ticker_code_point_then_coin_id(
    pinned: Pinned, table: str, highest_first: bool
):
    returns = _reference_returns(pinned.source)
    expected = ranking_reference(returns, RANK_SIZE, highest_first)
    assert list(read_table(table).itertuples(index=False, name=None)) == expected
    # The ties are there to be broken, and some cross the rank-size cut.
    assert _adjacent(expected, (6758, "SUSHI"), (8085, "stETH"))  # "S" < "s"
    assert _adjacent(expected, (1831, "BCH"), (2, "LTC"))  # the ticker before the coin id
    assert _adjacent(expected, (31, "NEO"), (1376, "NEO"))  # the same ticker: the coin id
    assert _ties_across_the_cut(returns, highest_first)
    evaluations = pinned.statistics_run.get_asset_check_evaluations()
    assert all(e.passed for e in evaluations if e.asset_key.path[-1] == table)


def _chart_png(day: date) -> bytes:
    materialize_days(day.isoformat(), day.isoformat(), ["ranked_coin_chart"])
    from coinmarket_assets.assets.charts import chart_path

    return chart_path(day.isoformat()).read_bytes()


def _scale_close(coin_id: int, day: date, factor: float) -> None:
    """Multiply one stored close by ``factor`` (a power of two, so that it can be undone)."""
    with connect() as conn:
        updated = conn.execute(
            "UPDATE historical_trade_data SET close = close * %s "
            "WHERE coin_id = %s AND trade_date = %s",
            [factor, coin_id, day],
        )
        assert updated.rowcount == 1


def test_the_chart_of_a_day_draws_the_90_days_ending_with_it(pinned: Pinned):
    oldest = LAST - timedelta(days=CHART_DAYS - 1)
    top = read_table("top_ranking")
    ranked = set(top.loc[top["trade_date"] == pd.Timestamp(LAST), "coin_id"])
    source = pinned.source
    on_both = [
        set(source.loc[source["trade_date"] == pd.Timestamp(day), "coin_id"])
        for day in (oldest - timedelta(days=1), oldest)
    ]
    coin_id = min(ranked.intersection(*on_both))  # drawn, with a close on each of the two days
    drawn = _chart_png(LAST)
    try:
        _scale_close(coin_id, oldest - timedelta(days=1), 2.0)
        assert _chart_png(LAST) == drawn  # the day before the window is not drawn
        _scale_close(coin_id, oldest, 2.0)
        assert _chart_png(LAST) != drawn  # the window's first close is
    finally:
        _scale_close(coin_id, oldest - timedelta(days=1), 0.5)
        _scale_close(coin_id, oldest, 0.5)


@pytest.fixture
def hundred_and_one_coins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A source listing 101 ranked coins, and COINMARKET_TICKERS=all."""
    coins = [
        SyntheticCoin(
            1000 + rank, f"C{rank}", f"Coin {rank}", _candles(np.array([1.0, 1.0 + rank]), rank)
        )
        for rank in range(1, 102)
    ]
    market = SyntheticMarket(coins)
    market.write_csv(tmp_path)
    listing = pd.read_csv(tmp_path / "coins.csv")
    listing.assign(rank=range(101, 0, -1)).to_csv(tmp_path / "coins.csv", index=False)
    monkeypatch.delenv("COINMARKET_TOP_N", raising=False)
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{tmp_path}")
    monkeypatch.setenv("COINMARKET_TICKERS", "all")
    yield


def test_all_means_the_100_highest_ranked_coins(database_url: str, hundred_and_one_coins: None):
    materialize_unpartitioned(["currency_status"])
    status = read_table("currency_status")
    assert sorted(status["rank"]) == list(range(1, 101))
