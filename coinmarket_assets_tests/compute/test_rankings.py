import numpy as np
import pandas as pd

from coinmarket_assets.compute.rankings import rank_eligible, rank_returns
from coinmarket_assets_tests.reference import ranking_reference


def _returns() -> pd.DataFrame:
    day1, day2 = pd.Timestamp("2021-01-01"), pd.Timestamp("2021-01-02")
    rows = [
        (day1, 1, "BTC", 0.10),
        (day1, 2, "ETH", 0.10),  # tie with BTC: ticker decides
        (day1, 9, "AAA", -0.20),
        (day1, 3, "XRP", 0.05),
        (day1, 4, "XRP", 0.05),  # same ticker and return: coin id decides
        (day1, 5, "ADA", -0.20),
        (day2, 1, "BTC", 0.01),  # a day with fewer coins than the ranking size
        (day2, 2, "ETH", -0.03),
    ]
    return pd.DataFrame(rows, columns=["trade_date", "coin_id", "ticker", "period_return"])


def _as_tuples(frame: pd.DataFrame) -> list[tuple]:
    return list(
        frame[["trade_date", "rank", "coin_id", "ticker", "period_return"]].itertuples(
            index=False, name=None
        )
    )


def test_top_ranking_orders_highest_first_with_ticker_then_id_ties():
    ranked = rank_returns(_returns(), 5, highest_first=True)
    assert _as_tuples(ranked) == ranking_reference(_returns(), 5, highest_first=True)
    day1 = ranked[ranked["trade_date"] == "2021-01-01"]
    assert list(day1["ticker"]) == ["BTC", "ETH", "XRP", "XRP", "AAA"]
    assert list(day1["coin_id"])[2:4] == [3, 4]


def test_bottom_ranking_orders_lowest_first():
    ranked = rank_returns(_returns(), 3, highest_first=False)
    assert _as_tuples(ranked) == ranking_reference(_returns(), 3, highest_first=False)
    day1 = ranked[ranked["trade_date"] == "2021-01-01"]
    assert list(day1["ticker"]) == ["AAA", "ADA", "XRP"]


def test_days_with_fewer_coins_get_fewer_rows():
    ranked = rank_returns(_returns(), 5, highest_first=True)
    day2 = ranked[ranked["trade_date"] == "2021-01-02"]
    assert list(day2["rank"]) == [1, 2]


def test_no_returns_give_no_rankings():
    assert rank_returns(_returns().iloc[0:0], 5, highest_first=True).empty


# -- COINMARKET_EXCLUDE_TAGS -------------------------------------------------------------------

FALLING_DAY = pd.Timestamp("2021-05-20")
# Shaped like the real 23 coins' returns into 2021-05-20 (a crash): the stablecoins hold still,
# so they rank 2 and 3 of the top; wrapped bitcoin follows bitcoin.
FALLING_RETURNS = [
    (5426, "SOL", 0.0913),
    (825, "USDT", 0.0020),
    (3408, "USDC", 0.0001),
    (2010, "ADA", -0.0637),
    (7278, "AAVE", -0.0783),
    (52, "XRP", -0.1276),
    (3717, "WBTC", -0.1796),
    (1, "BTC", -0.1797),
    (74, "DOGE", -0.1839),
    (3635, "CRO", -0.2120),
    (512, "XLM", -0.2275),
    (1027, "ETH", -0.2506),
    (1958, "TRX", -0.2624),
    (6636, "DOT", -0.2718),
    (873, "XEM", -0.2739),
    (3794, "ATOM", -0.2781),
    (1975, "LINK", -0.2856),
    (7083, "UNI", -0.2937),
    (328, "XMR", -0.2981),
    (1839, "BNB", -0.3112),
    (1720, "MIOTA", -0.3204),
    (2, "LTC", -0.3302),
    (1765, "EOS", -0.3735),
]
FALLING_TAGS = {825: {"stablecoin"}, 3408: {"stablecoin"}, 3717: {"wrapped-tokens"}}
EXCLUDED = {"stablecoin", "wrapped-tokens"}


def _falling_day() -> pd.DataFrame:
    rows = [(FALLING_DAY, coin_id, ticker, value) for coin_id, ticker, value in FALLING_RETURNS]
    return pd.DataFrame(rows, columns=["trade_date", "coin_id", "ticker", "period_return"])


class _Tags:
    """A plain-Python carrying rule over {(day, coin_id): tags}; records what it was asked."""

    def __init__(self, tags: dict[tuple[pd.Timestamp, int], set[str]], excluded: set[str]):
        self.tags, self.excluded = tags, excluded
        self.asked: list[tuple[pd.Timestamp, int]] = []

    def __call__(self, pairs: pd.DataFrame) -> pd.Series:
        keys = list(zip(pairs["trade_date"], pairs["coin_id"], strict=True))
        self.asked += keys
        return pd.Series(
            [bool(self.tags.get(key, set()) & self.excluded) for key in keys], index=pairs.index
        )


def _reference_without(
    returns: pd.DataFrame, tags: _Tags, size: int, highest_first: bool
) -> list[tuple]:
    """Plain Python: drop the coin-days carrying an excluded tag, then rank what is left."""
    kept = [
        not (tags.tags.get((day, coin_id), set()) & tags.excluded)
        for day, coin_id in zip(returns["trade_date"], returns["coin_id"], strict=True)
    ]
    return ranking_reference(returns[kept], size, highest_first)


def test_excluded_tags_take_the_stablecoins_out_of_a_falling_days_top_before_the_cut():
    returns = _falling_day()
    tags = _Tags({(FALLING_DAY, coin): found for coin, found in FALLING_TAGS.items()}, EXCLUDED)
    plain = rank_returns(returns, 5, highest_first=True)
    ranked, left_out = rank_eligible(returns, 5, highest_first=True, carrying=tags)
    assert list(plain["ticker"]) == ["SOL", "USDT", "USDC", "ADA", "AAVE"]
    # Still five coins: the cut comes after the exclusion.
    assert list(ranked["ticker"]) == ["SOL", "ADA", "AAVE", "XRP", "BTC"]
    assert _as_tuples(ranked) == _reference_without(returns, tags, 5, True)
    assert list(left_out["ticker"]) == ["USDT", "USDC"]  # WBTC would not have ranked anyway
    bottom, none_out = rank_eligible(returns, 5, highest_first=False, carrying=tags)
    assert _as_tuples(bottom) == ranking_reference(returns, 5, highest_first=False)
    assert none_out.empty


def test_exclusion_matches_a_plain_python_reference_when_tags_change_by_day():
    rng = np.random.default_rng(14)
    days = pd.date_range("2022-01-01", periods=30)
    coins = [(coin_id, f"C{coin_id % 7}") for coin_id in range(1, 41)]  # tickers repeat
    rows = [
        (day, coin_id, ticker, float(np.round(rng.normal(0, 0.05), 3)))  # rounded: ties
        for day in days
        for coin_id, ticker in coins
        if rng.random() > 0.1 or day == days[3]
    ]
    returns = pd.DataFrame(rows, columns=["trade_date", "coin_id", "ticker", "period_return"])
    labels = ["stablecoin", "wrapped-tokens", "memes", "defi"]
    tag_map = {
        (day, coin_id): {labels[i] for i in range(4) if rng.random() < 0.2}
        for day in days
        for coin_id, _ in coins
    }
    tag_map.update({(days[3], coin_id): {"stablecoin"} for coin_id, _ in coins[:-2]})  # 2 left
    for size in (1, 3, 10):
        for highest_first in (True, False):
            tags = _Tags(tag_map, EXCLUDED)
            ranked, left_out = rank_eligible(
                returns, size, highest_first=highest_first, carrying=tags
            )
            assert _as_tuples(ranked) == _reference_without(returns, tags, size, highest_first)
            assert len(tags.asked) == len(set(tags.asked))  # nobody is asked twice
            plain = {(r[0], r[2]) for r in ranking_reference(returns, size, highest_first)}
            out = set(zip(left_out["trade_date"], left_out["coin_id"], strict=True))
            assert out == {key for key in plain if tag_map[key] & EXCLUDED}
            if size == 3:  # only coins that could still rank are asked about
                assert len(tags.asked) < len(returns) / 3
    assert len(ranked[ranked["trade_date"] == days[3]]) == 2  # fewer coins than size left


def test_without_carrying_coins_every_coin_counts_and_nothing_is_left_out():
    tags = _Tags({}, EXCLUDED)
    ranked, left_out = rank_eligible(_returns(), 5, highest_first=True, carrying=tags)
    assert ranked.equals(rank_returns(_returns(), 5, highest_first=True))
    assert left_out.empty
