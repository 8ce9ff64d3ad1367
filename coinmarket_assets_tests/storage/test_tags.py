from datetime import date

import pandas as pd

from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.tags import carrying

DAY, NEXT = date(2024, 1, 1), date(2024, 1, 2)


def _store(conn) -> None:
    conn.execute(
        "INSERT INTO currency_status (coin_id, ticker, coin_name, slug, tags) VALUES "
        "(1, 'BTC', 'Bitcoin', 'bitcoin', 'mineable;pow'), "
        "(2, 'USDT', 'Tether', 'tether', 'stablecoin'), "
        "(3, 'WBTC', 'Wrapped Bitcoin', 'wbtc', NULL), "
        "(4, 'NEW', 'New', 'new', 'stablecoin')"
    )
    conn.execute(
        "INSERT INTO historical_listings (trade_date, coin_id, ticker, coin_name, slug, rank, "
        "price, tags) VALUES "
        "(%(d)s, 1, 'BTC', 'Bitcoin', 'bitcoin', 1, 1, 'pow'), "
        "(%(d)s, 3, 'WBTC', 'Wrapped Bitcoin', 'wbtc', 2, 1, 'defi;wrapped-tokens'), "
        "(%(d)s, 4, 'NEW', 'New', 'new', 3, 1, 'defi'), "
        "(%(n)s, 4, 'NEW', 'New', 'new', 3, 1, NULL)",
        {"d": DAY, "n": NEXT},
    )


def test_a_days_listing_tags_decide_and_currency_status_fills_in_where_it_has_none(
    database_url: str,
):
    pairs = pd.DataFrame(
        {
            "trade_date": pd.to_datetime([DAY, DAY, DAY, DAY, NEXT, NEXT]),
            "coin_id": [1, 2, 3, 4, 4, 5],
        }
    )
    with connect() as conn:
        _store(conn)
        excluded = carrying(conn, pairs, ["stablecoin", "wrapped-tokens"])
    # 2: not listed, a stablecoin by currency_status; 3: wrapped in its listing of the day;
    # 4: listed without the tag on DAY (the listing wins), listed without tags on NEXT
    # (currency_status fills in); 5: known nowhere.
    assert excluded.tolist() == [False, True, True, False, True, False]


def test_a_coin_is_excluded_only_by_a_tag_it_carries(database_url: str):
    pairs = pd.DataFrame({"trade_date": pd.to_datetime([DAY]), "coin_id": [2]})
    with connect() as conn:
        _store(conn)
        assert carrying(conn, pairs, []).tolist() == [False]
        assert carrying(conn, pairs, ["defi"]).tolist() == [False]
