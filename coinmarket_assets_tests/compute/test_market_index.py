"""The market index's rules, checked against a reference written in plain Python from the issue's
definition (no pandas), on hand-made days and on random listings."""

import random
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, timedelta

import pandas as pd
import pytest

from coinmarket_assets.compute.market_index import (
    INDEX_COLUMNS,
    index_cut,
    market_index,
    ranks_to_read,
)

# One listing row: (coin_id, rank, market_cap or None).
ListingRow = tuple[int, int, float | None]
IndexRow = tuple[float, int, int, float]  # index_return, members, top_weight_coin_id, top_weight


def reference_index(
    listing: Mapping[date, Sequence[ListingRow]],
    closes: Mapping[tuple[int, date], float],
    size: int,
    excluded: AbstractSet[tuple[date, int]] = frozenset(),
) -> dict[date, IndexRow]:
    """Day D's row from the listing of D - 1 (a key of ``listing``) and the closes.

    Eligible: not excluded on D - 1. Cut: rank minus the excluded coins ranked strictly better
    is at most ``size``. Member: in the cut, market cap > 0, closes on D - 1 (> 0) and D.
    """
    index: dict[date, IndexRow] = {}
    for day, rows in listing.items():
        excluded_ranks = [rank for coin, rank, _ in rows if (day, coin) in excluded]
        members = []
        for coin, rank, cap in rows:
            if (day, coin) in excluded:
                continue
            if rank - len([r for r in excluded_ranks if r < rank]) > size:
                continue
            before, after = closes.get((coin, day)), closes.get((coin, day + timedelta(days=1)))
            if cap is None or cap <= 0 or before is None or after is None or before <= 0:
                continue
            members.append((coin, cap, after / before - 1))
        if not members:
            continue
        total = sum(cap for _, cap, _ in members)
        weights = [(coin, cap / total, change) for coin, cap, change in members]
        top_coin, top_weight, _ = min(weights, key=lambda member: (-member[1], member[0]))
        index_return = sum(weight * change for _, weight, change in weights)
        index[day + timedelta(days=1)] = (index_return, len(members), top_coin, top_weight)
    return index


def _listing_frame(
    listing: Mapping[date, Sequence[ListingRow]],
    excluded: AbstractSet[tuple[date, int]] = frozenset(),
) -> pd.DataFrame:
    rows = [
        (pd.Timestamp(day), coin, rank, cap, (day, coin) in excluded)
        for day, day_rows in listing.items()
        for coin, rank, cap in day_rows
    ]
    frame = pd.DataFrame(rows, columns=["trade_date", "coin_id", "rank", "market_cap", "excluded"])
    return frame.astype(
        {"trade_date": "datetime64[us]", "coin_id": "int64", "rank": "int64"}
    ).astype({"market_cap": "float64", "excluded": bool})


def _closes_frame(closes: Mapping[tuple[int, date], float]) -> pd.DataFrame:
    rows = [(coin, pd.Timestamp(day), close) for (coin, day), close in closes.items()]
    frame = pd.DataFrame(rows, columns=["coin_id", "trade_date", "close"])
    return frame.astype({"coin_id": "int64", "trade_date": "datetime64[us]", "close": "float64"})


def _as_dict(frame: pd.DataFrame) -> dict[date, IndexRow]:
    assert list(frame.columns) == INDEX_COLUMNS
    return {
        row.trade_date.date(): (
            row.index_return,
            row.members,
            row.top_weight_coin_id,
            row.top_weight,
        )
        for row in frame.itertuples(index=False)
    }


def _assert_matches(got: dict[date, IndexRow], expected: dict[date, IndexRow]) -> None:
    assert sorted(got) == sorted(expected)
    for day, (index_return, members, top_coin, top_weight) in expected.items():
        assert got[day][1:3] == (members, top_coin), day
        assert got[day][0] == pytest.approx(index_return, rel=1e-12, abs=1e-15), day
        assert got[day][3] == pytest.approx(top_weight, rel=1e-12), day


D0, D1, D2 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


def test_weights_are_the_listing_market_caps_and_the_return_their_weighted_sum():
    listing = {D0: [(1, 1, 300.0), (2, 2, 100.0), (3, 3, 50.0)]}
    closes = {(1, D0): 10.0, (1, D1): 11.0, (2, D0): 4.0, (2, D1): 3.0, (3, D0): 1.0, (3, D1): 2.0}
    got = _as_dict(market_index(_listing_frame(listing), _closes_frame(closes), 2))
    # Coins 1 and 2: weights 3/4 and 1/4, returns +10 % and -25 %.
    assert got == {D1: (pytest.approx(0.75 * 0.1 + 0.25 * -0.25), 2, 1, 0.75)}
    _assert_matches(got, reference_index(listing, closes, 2))


def test_a_ranked_coin_without_both_closes_or_a_market_cap_is_no_member_and_not_replaced():
    listing = {D0: [(1, 1, 300.0), (2, 2, None), (3, 3, 100.0), (4, 4, 80.0), (5, 5, 60.0)]}
    closes = {(c, d): 1.0 + c for c in range(1, 6) for d in (D0, D1)}
    del closes[(3, D1)]  # no close on D
    closes[(4, D0)] = 0.0  # no return from a zero price
    got = _as_dict(market_index(_listing_frame(listing), _closes_frame(closes), 4))
    assert got == {D1: (0.0, 1, 1, 1.0)}  # coin 5, ranked 5th, does not move up


def test_a_tie_for_the_top_weight_goes_to_the_smaller_coin_id():
    listing = {D0: [(9, 1, 200.0), (4, 2, 200.0), (7, 3, 100.0)]}
    closes = {(c, d): 2.0 for c in (4, 7, 9) for d in (D0, D1)}
    got = _as_dict(market_index(_listing_frame(listing), _closes_frame(closes), 3))
    assert got == {D1: (0.0, 3, 4, 0.4)}


def test_excluded_coins_are_left_out_before_the_cut():
    listing = {D0: [(1, 1, 500.0), (2, 2, 400.0), (3, 3, 300.0), (4, 4, 200.0), (5, 5, 100.0)]}
    closes = {(c, d): 1.0 for c in range(1, 6) for d in (D0, D1)}
    excluded = {(D0, 1), (D0, 3)}
    frame = _listing_frame(listing, excluded)
    assert list(index_cut(frame, 2)["coin_id"]) == [2, 4]
    got = _as_dict(market_index(frame, _closes_frame(closes), 2))
    assert got == {D1: (0.0, 2, 2, pytest.approx(400 / 600))}
    _assert_matches(got, reference_index(listing, closes, 2, excluded))


def test_a_day_without_members_has_no_row():
    listing = {D0: [(1, 1, 100.0)], D1: [(1, 1, 100.0)]}
    closes = {(1, D0): 1.0, (1, D1): 2.0}  # no close on D2
    got = market_index(_listing_frame(listing), _closes_frame(closes), 10)
    assert list(got["trade_date"]) == [pd.Timestamp(D1)]
    empty = market_index(_listing_frame({}), _closes_frame({}), 10)
    assert empty.empty and list(empty.columns) == INDEX_COLUMNS


def test_the_listing_is_read_deeper_by_the_excluded_coins_read():
    listing = {D0: [(1, 1, 5.0), (2, 2, 4.0)], D1: [(1, 1, 5.0), (2, 2, 4.0)]}
    depth = ranks_to_read(_listing_frame(listing, {(D0, 1), (D0, 2), (D1, 2)}), 3)
    assert depth.to_dict() == {pd.Timestamp(D0): 5, pd.Timestamp(D1): 4}


def _random_market(seed: int, days: int, coins: int) -> tuple[dict, dict, set]:
    """Listings with gaps in rank-ordered market caps, NULL and zero caps, missing and zero
    closes, and day-specific excluded coins."""
    rng = random.Random(seed)
    first = date(2023, 1, 1)
    listing, closes, excluded = {}, {}, set()
    for n in range(days + 1):
        day = first + timedelta(days=n)
        for coin in range(1, coins + 1):
            if rng.random() < 0.85:
                closes[(coin, day)] = (
                    rng.choice([0.0, 1e-9]) if rng.random() < 0.02 else rng.uniform(0.1, 50)
                )
        if n == days:
            break
        listed = rng.sample(range(1, coins + 1), rng.randint(0, coins))
        caps = sorted((rng.uniform(1, 1e6) for _ in listed), reverse=True)
        rows = []
        for rank, (coin, cap) in enumerate(zip(listed, caps, strict=True), start=1):
            odd = rng.random()
            rows.append((coin, rank, None if odd < 0.05 else 0.0 if odd < 0.08 else cap))
            if rng.random() < 0.2:
                excluded.add((day, coin))
        if rows and rng.random() < 0.1:  # an exact tie of market caps
            coin, rank, _ = rows[-1]
            rows[-1] = (coin, rank, rows[0][2])
        listing[day] = rows
    return listing, closes, excluded


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("size", [1, 3, 10])
def test_random_listings_match_the_reference(seed: int, size: int):
    listing, closes, excluded = _random_market(seed, days=40, coins=15)
    for tagged in (set(), excluded):
        got = _as_dict(market_index(_listing_frame(listing, tagged), _closes_frame(closes), size))
        _assert_matches(got, reference_index(listing, closes, size, tagged))


def test_each_days_row_depends_only_on_its_own_rows_to_the_bit():
    listing, closes, excluded = _random_market(7, days=12, coins=12)
    frame, prices = _listing_frame(listing, excluded), _closes_frame(closes)
    whole = market_index(frame, prices, 4)
    by_day = [
        market_index(frame[frame["trade_date"] == day], prices, 4)
        for day in sorted(frame["trade_date"].unique())
    ]
    # Shuffled input rows give the same bits too.
    shuffled = market_index(
        frame.sample(frac=1, random_state=3), prices.sample(frac=1, random_state=4), 4
    )
    expected = pd.concat(by_day, ignore_index=True)
    # A close read twice (a coin in the cut of two consecutive days) counts once.
    repeated = market_index(frame, pd.concat([prices, prices]), 4)
    pd.testing.assert_frame_equal(whole, expected, check_exact=True)
    pd.testing.assert_frame_equal(repeated, expected, check_exact=True)
    pd.testing.assert_frame_equal(shuffled, expected, check_exact=True)
