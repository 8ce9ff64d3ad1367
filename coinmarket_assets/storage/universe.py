"""The point-in-time universe of ``COINMARKET_TICKERS=top:N``, read from the stored listings.

On day D the members are the coins ranked N or better in D's stored listing
(``historical_listings``): never today's listing, so no day looks ahead and coins that died
since still count on the days they were members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import psycopg


@dataclass(frozen=True)
class MemberSpan:
    """A coin that is a member on some day of a range: its first and last member day there, and
    the first and last day of the range on which the stored listing holds it at all."""

    coin_id: int
    first_member_day: date
    last_member_day: date
    first_listed_day: date
    last_listed_day: date


_MEMBER_SPANS = """
    SELECT coin_id,
           min(trade_date) FILTER (WHERE rank <= %(top_n)s),
           max(trade_date) FILTER (WHERE rank <= %(top_n)s),
           min(trade_date),
           max(trade_date)
    FROM historical_listings
    WHERE trade_date BETWEEN %(first)s AND %(last)s
    GROUP BY coin_id
    HAVING min(rank) <= %(top_n)s
    ORDER BY coin_id
"""


def member_spans(
    conn: psycopg.Connection, first_day: date, last_day: date, top_n: int
) -> list[MemberSpan]:
    """Every coin that is a member on at least one day of first_day..last_day, by coin id."""
    rows = conn.execute(
        _MEMBER_SPANS, {"top_n": top_n, "first": first_day, "last": last_day}
    ).fetchall()
    return [MemberSpan(*row) for row in rows]


def listed_days(conn: psycopg.Connection, first_day: date, last_day: date) -> list[date]:
    """The days of first_day..last_day that have a stored listing."""
    rows = conn.execute(
        "SELECT DISTINCT trade_date FROM historical_listings "
        "WHERE trade_date BETWEEN %s AND %s ORDER BY trade_date",
        [first_day, last_day],
    ).fetchall()
    return [day for (day,) in rows]


def members(conn: psycopg.Connection, first_day: date, last_day: date, top_n: int) -> pd.DataFrame:
    """The members of each day of first_day..last_day: ``trade_date`` (datetime64 at midnight,
    as the IO manager loads days), ``coin_id`` and ``rank``, by day and rank."""
    import pandas as pd

    rows = conn.execute(
        "SELECT trade_date, coin_id, rank FROM historical_listings "
        "WHERE trade_date BETWEEN %s AND %s AND rank <= %s ORDER BY trade_date, rank, coin_id",
        [first_day, last_day, top_n],
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["trade_date", "coin_id", "rank"])
    return frame.astype({"trade_date": "datetime64[us]", "coin_id": "int64", "rank": "int64"})


def record_top_n(conn: psycopg.Connection, top_n: int | None) -> None:
    """Store the N that ``universe_membership`` shows; None (the other modes) empties it."""
    if top_n is None:
        conn.execute("DELETE FROM universe_settings")
        return
    conn.execute(
        "INSERT INTO universe_settings (singleton, top_n, updated_at) VALUES (true, %s, %s) "
        "ON CONFLICT (singleton) DO UPDATE SET top_n = EXCLUDED.top_n, "
        "updated_at = EXCLUDED.updated_at",
        [top_n, datetime.now(UTC)],
    )


def member_names(
    conn: psycopg.Connection, first_day: date, last_day: date, coin_ids: list[int]
) -> dict[int, tuple[str, str, str]]:
    """Each coin's ticker, name and slug on its last listed day of first_day..last_day."""
    rows = conn.execute(
        "SELECT DISTINCT ON (coin_id) coin_id, ticker, coin_name, slug FROM historical_listings "
        "WHERE trade_date BETWEEN %s AND %s AND coin_id = ANY(%s) "
        "ORDER BY coin_id, trade_date DESC",
        [first_day, last_day, coin_ids],
    ).fetchall()
    return {coin_id: (ticker, name, slug) for coin_id, ticker, name, slug in rows}


def with_candle_on(conn: psycopg.Connection, day: date, coin_ids: list[int]) -> set[int]:
    """The coins of ``coin_ids`` with a stored candle on ``day``."""
    rows = conn.execute(
        "SELECT coin_id FROM historical_trade_data WHERE trade_date = %s AND coin_id = ANY(%s)",
        [day, coin_ids],
    ).fetchall()
    return {coin_id for (coin_id,) in rows}


def first_historical_days(conn: psycopg.Connection, coin_ids: list[int]) -> dict[int, date]:
    """The first day of data that currency_status knows of each coin (coins it lacks left out)."""
    rows = conn.execute(
        "SELECT coin_id, first_historical_day FROM currency_status "
        "WHERE coin_id = ANY(%s) AND first_historical_day IS NOT NULL",
        [coin_ids],
    ).fetchall()
    return dict(rows)


def fetch_window(
    span: MemberSpan,
    run_first: date,
    lookback_days: int,
    *,
    tracked: bool,
    born: date | None = None,
) -> tuple[date, date]:
    """The days of a member's candles a run of run_first.. fetches: the days from its first to
    its last listed day of the run, and the ``lookback_days`` before its first member day.

    The part of the lookback before the run is left out for a ``tracked`` coin (its candle of
    the day before the run is stored: it was followed already), and nothing before the coin's
    first day of data (``born``, when known) is asked for.
    """
    lookback = span.first_member_day - timedelta(days=lookback_days)
    if tracked:
        lookback = max(lookback, run_first)
    if born is not None:
        lookback = max(lookback, born)
    return min(lookback, span.first_listed_day), span.last_listed_day
