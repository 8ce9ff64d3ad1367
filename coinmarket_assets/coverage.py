"""Which days of candles are stored per coin, where they have gaps, and the run that fills them.

The gap-fill sensor (in the code location) imports this module: psycopg and tabulate are
imported where they are used, not with it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.tables import DAILY_TABLES

if TYPE_CHECKING:
    import psycopg

CANDLE_ASSET = "historical_trade_data"
# Computed from stored candles only: the daily tables (partitions.DAILY_TABLE_ASSETS) but one.
STATISTICS_ASSETS = tuple(table for table in DAILY_TABLES if table != CANDLE_ASSET)


@dataclass(frozen=True, order=True)
class DayRange:
    """The days first..last, both included."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


@dataclass(frozen=True)
class CoinCoverage:
    """A coin's stored candles: the first and last day, how many days, and the missing ones."""

    coin_id: int
    ticker: str
    first_day: date
    last_day: date
    stored_days: int
    gaps: tuple[DayRange, ...]

    @property
    def missing_days(self) -> int:
        return sum(gap.days for gap in self.gaps)


# One statement, so one snapshot. A stored candle whose next one is more than a day later opens
# a gap; lead() walks each coin's candles in primary-key order, without sorting.
_COVERAGE = """
    WITH candles AS (
        SELECT coin_id, trade_date,
               lead(trade_date) OVER (PARTITION BY coin_id ORDER BY trade_date) AS next_day
        FROM historical_trade_data
    ), spans AS (
        SELECT coin_id, min(trade_date) AS first_day, max(trade_date) AS last_day,
               count(*) AS stored_days,
               array_agg(trade_date + 1 ORDER BY trade_date)
                   FILTER (WHERE next_day > trade_date + 1) AS gap_firsts,
               array_agg(next_day - 1 ORDER BY trade_date)
                   FILTER (WHERE next_day > trade_date + 1) AS gap_lasts
        FROM candles
        GROUP BY coin_id
    )
    SELECT s.coin_id, l.ticker, s.first_day, s.last_day, s.stored_days,
           coalesce(s.gap_firsts, '{}'), coalesce(s.gap_lasts, '{}')
    FROM spans s
    JOIN latest_market l USING (coin_id)
    ORDER BY l.ticker, s.coin_id
"""


def coverage(conn: psycopg.Connection) -> list[CoinCoverage]:
    """Every coin with stored candles, by ticker, with the gaps between its first and last day."""
    return [
        CoinCoverage(
            coin_id,
            ticker,
            first,
            last,
            stored,
            tuple(DayRange(*gap) for gap in zip(gap_firsts, gap_lasts, strict=True)),
        )
        for coin_id, ticker, first, last, stored, gap_firsts, gap_lasts in conn.execute(_COVERAGE)
    ]


Gap = tuple[CoinCoverage, DayRange]


def all_gaps(report: Iterable[CoinCoverage]) -> list[Gap]:
    return [(coin, gap) for coin in report for gap in coin.gaps]


def stored_coverage(url: str | None = None) -> list[CoinCoverage]:
    """``coverage`` of the database at ``url`` (default: COINMARKET_DATABASE_URL)."""
    with connect(url) as conn:
        return coverage(conn)


def fetchable_gaps(report: Iterable[CoinCoverage], start_date: date) -> tuple[list[Gap], list[Gap]]:
    """The gaps' days from ``start_date`` on, and those before it, which no partition holds."""
    day_before_start = start_date - timedelta(days=1)
    fetchable, before_start = [], []
    for coin, gap in all_gaps(report):
        if gap.first < start_date:
            before_start.append((coin, DayRange(gap.first, min(gap.last, day_before_start))))
        if gap.last >= start_date:
            fetchable.append((coin, DayRange(max(gap.first, start_date), gap.last)))
    return fetchable, before_start


@dataclass(frozen=True)
class GapFill:
    """One run that fetches its coins' candles over ``days`` and recomputes what they feed."""

    gaps: tuple[Gap, ...]
    days: DayRange

    @property
    def coin_ids(self) -> list[int]:
        return sorted({coin.coin_id for coin, _ in self.gaps})

    @property
    def tickers(self) -> list[str]:
        """The coins' tickers, in the order of their ids."""
        names = {coin.coin_id: coin.ticker for coin, _ in self.gaps}
        return [names[coin_id] for coin_id in self.coin_ids]


def gap_fill(gaps: Sequence[Gap], universe: Collection[int]) -> tuple[GapFill | None, list[Gap]]:
    """The run that fills the gaps of the coins in ``universe`` (CoinMarketCap ids), and the
    gaps of the other coins, which it leaves alone.

    The run spans the first missing day to its coins' newest stored day. A candle of day X
    enters the statistics of the days after X (up to the RSI lookback), and the run re-fetches
    its coins' stored days too (the source may have revised them): ending on the newest day,
    it recomputes every statistic a fetched candle feeds, and none stays computed from a
    replaced one. So all the gaps are one run: any two such spans overlap.
    """
    inside = tuple(sorted(((c, g) for c, g in gaps if c.coin_id in universe), key=_gap_order))
    outside = [(c, g) for c, g in gaps if c.coin_id not in universe]
    if not inside:
        return None, outside
    first = min(gap.first for _, gap in inside)
    newest = max(coin.last_day for coin, _ in inside)
    return GapFill(inside, DayRange(first, newest)), outside


def _gap_order(item: Gap) -> tuple[int, DayRange]:
    return item[0].coin_id, item[1]


def format_report(report: Sequence[CoinCoverage]) -> str:
    """A table of coins, then one line per gap."""
    from tabulate import tabulate

    if not report:
        return "No candles are stored yet."
    coins = tabulate(
        [
            (c.ticker, c.coin_id, c.first_day, c.last_day, c.stored_days, c.missing_days)
            for c in report
        ],
        headers=["ticker", "coin_id", "first day", "last day", "stored days", "missing days"],
    )
    gaps = all_gaps(report)
    if not gaps:
        return (
            f"{coins}\n\nNo gaps: every coin has a candle on each day from its first to its last."
        )
    listed = tabulate(
        [(c.ticker, c.coin_id, gap.first, gap.last, gap.days) for c, gap in gaps],
        headers=["ticker", "coin_id", "first missing", "last missing", "days"],
    )
    return f"{coins}\n\n{len(gaps)} gap(s):\n{listed}"


def describe_gaps(gaps: Sequence[Gap], limit: int | None = None) -> str:
    """``ALPHA 2020-03-31, BETA 2020-05-01..2020-05-03``; beyond ``limit``, ``and N more``."""
    described = ", ".join(f"{coin.ticker} {gap}" for coin, gap in gaps[:limit])
    if limit is not None and len(gaps) > limit:
        described += f" and {len(gaps) - limit} more"
    return described
