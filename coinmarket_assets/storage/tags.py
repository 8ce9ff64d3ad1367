"""Which coins carry an excluded tag on a day (COINMARKET_EXCLUDE_TAGS).

A coin's tags on day D are those of D's stored listing; where that listing does not give them
(the coin is not listed, or without tags), its ``currency_status`` tags.
"""

from collections.abc import Sequence

import pandas as pd
import psycopg

from coinmarket_assets.sources.base import TAG_SEPARATOR
from coinmarket_assets.storage.database import connect, retry_on_lost_connection

_CARRYING = """
    SELECT p.trade_date, p.coin_id
    FROM unnest(%(days)s::date[], %(coins)s::integer[]) AS p (trade_date, coin_id)
    LEFT JOIN historical_listings l ON l.trade_date = p.trade_date AND l.coin_id = p.coin_id
    LEFT JOIN currency_status s ON s.coin_id = p.coin_id
    WHERE string_to_array(coalesce(l.tags, s.tags), %(separator)s) && %(tags)s::text[]
"""


def carrying(conn: psycopg.Connection, pairs: pd.DataFrame, tags: Sequence[str]) -> pd.Series:
    """For each row of ``pairs`` (``trade_date``, ``coin_id``), whether the coin carries one of
    ``tags`` that day; all False when ``tags`` is empty (nothing is asked of the database)."""
    if not tags or pairs.empty:
        return pd.Series(False, index=pairs.index)
    found = conn.execute(
        _CARRYING,
        {
            "days": list(pd.to_datetime(pairs["trade_date"]).dt.date),
            "coins": [int(coin) for coin in pairs["coin_id"]],
            "separator": TAG_SEPARATOR,
            "tags": list(tags),
        },
    ).fetchall()
    hits = set(found)
    keys = zip(pd.to_datetime(pairs["trade_date"]).dt.date, pairs["coin_id"], strict=True)
    return pd.Series([(day, int(coin)) in hits for day, coin in keys], index=pairs.index)


@retry_on_lost_connection
def carrying_stored(pairs: pd.DataFrame, tags: Sequence[str]) -> pd.Series:
    """``carrying`` asked on a connection of its own, retried while the database restarts."""
    if not tags or pairs.empty:
        return pd.Series(False, index=pairs.index)
    with connect() as conn:
        return carrying(conn, pairs, tags)
