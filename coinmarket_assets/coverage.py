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
LISTINGS_ASSET = "historical_listings"
# Computed from stored tables only: the daily tables (partitions.DAILY_TABLE_ASSETS) but the
# three fetched from the source.
STATISTICS_ASSETS = tuple(
    table for table in DAILY_TABLES if table not in (CANDLE_ASSET, LISTINGS_ASSET, "global_metrics")
)


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
    """A coin's stored candles: the first and last day, how many days, and the missing ones;
    ``end_day``: the coin's last day when it ended before the newest stored day (no day after
    it is missing)."""

    coin_id: int
    ticker: str
    first_day: date
    last_day: date
    stored_days: int
    gaps: tuple[DayRange, ...]
    end_day: date | None = None

    @property
    def missing_days(self) -> int:
        return sum(gap.days for gap in self.gaps)


# One statement, so one snapshot. A stored candle whose next one is more than a day later opens
# a gap; lead() walks each coin's candles in primary-key order, without sorting. A coin's last
# listed day and the newest listing day come from the listings' indexes, a coin at a time.
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
           coalesce(s.gap_firsts, '{}'), coalesce(s.gap_lasts, '{}'),
           c.is_active, c.last_historical_day,
           (SELECT max(h.trade_date) FROM historical_listings h WHERE h.coin_id = s.coin_id),
           (SELECT max(trade_date) FROM historical_listings),
           max(s.last_day) OVER ()
    FROM spans s
    JOIN latest_market l USING (coin_id)
    LEFT JOIN currency_status c USING (coin_id)
    ORDER BY l.ticker, s.coin_id
"""


@dataclass(frozen=True)
class CoinLife:
    """What is stored of a coin's life on CoinMarketCap, and the newest stored days."""

    is_active: bool | None
    last_historical_day: date | None  # currency_status, from the source's coin map
    last_listed_day: date | None  # in historical_listings
    newest_listing_day: date | None
    newest_candle_day: date


def end_day(life: CoinLife) -> date | None:
    """The coin's last day when it ended before the newest stored candle day, else None.

    CoinMarketCap's last day of a coin its map does not call active; when the map says nothing
    of the coin, its last day in the stored listings, if newer listings leave it out. An active
    coin never ended, whatever the dates say (the map may be older than the newest candle).
    """
    ended = None
    if life.is_active is not True and life.last_historical_day is not None:
        ended = life.last_historical_day
    elif life.is_active is None and life.last_listed_day != life.newest_listing_day:
        ended = life.last_listed_day  # later listings, which leave the coin out, are stored
    return ended if ended is not None and ended < life.newest_candle_day else None


def _until(gaps: Iterable[DayRange], end: date | None) -> tuple[DayRange, ...]:
    """The gaps' days up to ``end``: after a coin's end a missing candle is no gap."""
    if end is None:
        return tuple(gaps)
    return tuple(DayRange(gap.first, min(gap.last, end)) for gap in gaps if gap.first <= end)


def coverage(conn: psycopg.Connection) -> list[CoinCoverage]:
    """Every coin with stored candles, by ticker, with the gaps between its first and last day
    (up to its end, for a coin that ended)."""
    report = []
    for row in conn.execute(_COVERAGE):
        coin_id, ticker, first, last, stored, gap_firsts, gap_lasts = row[:7]
        ended = end_day(CoinLife(*row[7:]))
        gaps = (DayRange(*gap) for gap in zip(gap_firsts, gap_lasts, strict=True))
        report.append(
            CoinCoverage(coin_id, ticker, first, last, stored, _until(gaps, ended), ended)
        )
    return report


Gap = tuple[CoinCoverage, DayRange]


def all_gaps(report: Iterable[CoinCoverage]) -> list[Gap]:
    return [(coin, gap) for coin in report for gap in coin.gaps]


def stored_coverage(url: str | None = None) -> list[CoinCoverage]:
    """``coverage`` of the database at ``url`` (default: COINMARKET_DATABASE_URL)."""
    with connect(url) as conn:
        return coverage(conn)


def ever_members(url: str | None, coin_ids: Collection[int], top_n: int) -> set[int]:
    """The coins of ``coin_ids`` ranked ``top_n`` or better in some stored listing: the
    universe of ``top:N``, as the stored listings give it (never today's listing)."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT coin_id FROM historical_listings "
            "WHERE coin_id = ANY(%s) AND rank <= %s",
            [sorted(coin_ids), top_n],
        ).fetchall()
    return {coin_id for (coin_id,) in rows}


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
    """One run that fetches its coins' candles over ``days`` and recomputes what they feed.

    With ``top_n`` it is a ``top:N`` run: membership, not the gaps' coins, decides what it
    fetches (each member on the days it is listed, so never a coin after its end).
    """

    gaps: tuple[Gap, ...]
    days: DayRange
    top_n: int | None = None

    @property
    def coin_ids(self) -> list[int]:
        return sorted({coin.coin_id for coin, _ in self.gaps})

    @property
    def tickers(self) -> list[str]:
        """The coins' tickers, in the order of their ids."""
        names = {coin.coin_id: coin.ticker for coin, _ in self.gaps}
        return [names[coin_id] for coin_id in self.coin_ids]

    @property
    def tickers_setting(self) -> str:
        """COINMARKET_TICKERS of the run: ``top:N``, or the gaps' coins by id."""
        return f"top:{self.top_n}" if self.top_n else ",".join(map(str, self.coin_ids))


def gap_fills(
    gaps: Sequence[Gap], universe: Collection[int], top_n: int | None = None
) -> tuple[list[GapFill], list[Gap]]:
    """The runs that fill the gaps of the coins in ``universe`` (CoinMarketCap ids), and the
    gaps of the other coins, which they leave alone.

    A run spans its first missing day to its coins' newest stored day. A candle of day X
    enters the statistics of the days after X (up to the RSI lookback), and the run re-fetches
    its coins' stored days too (the source may have revised them): ending on the newest day,
    it recomputes every statistic a fetched candle feeds, and none stays computed from a
    replaced one. Any two such spans overlap, so the coins that have not ended share one run;
    a run asks each of its coins for every day of its span, so the coins that ended get one
    run per end day, which stops there. A ``top_n`` run fetches members on their listed days
    only: one run for every coin.
    """
    inside = sorted(((c, g) for c, g in gaps if c.coin_id in universe), key=_gap_order)
    outside = [(c, g) for c, g in gaps if c.coin_id not in universe]
    groups: dict[date | None, list[Gap]] = {}
    for coin, gap in inside:
        groups.setdefault(None if top_n else coin.end_day, []).append((coin, gap))
    fills = [_fill(group, top_n) for _, group in sorted(groups.items(), key=_group_order)]
    return fills, outside


def _fill(gaps: list[Gap], top_n: int | None) -> GapFill:
    first = min(gap.first for _, gap in gaps)
    newest = max(coin.last_day for coin, _ in gaps)
    ends = [coin.end_day for coin, _ in gaps if coin.end_day is not None]
    if not top_n and ends:
        newest = min(newest, *ends)  # one end day per run, the gaps stop there
    return GapFill(tuple(gaps), DayRange(first, newest), top_n)


def _group_order(item: tuple[date | None, list[Gap]]) -> tuple[bool, date]:
    """The coins that have not ended first, then by end day."""
    end = item[0]
    return end is not None, end or date.min


def _gap_order(item: Gap) -> tuple[int, DayRange]:
    return item[0].coin_id, item[1]


def format_report(report: Sequence[CoinCoverage]) -> str:
    """A table of coins, then one line per gap."""
    from tabulate import tabulate

    if not report:
        return "No candles are stored yet."
    ended = [c for c in report if c.end_day]
    headers = ["ticker", "coin_id", "first day", "last day", "stored days", "missing days"]
    rows = [
        [c.ticker, c.coin_id, c.first_day, c.last_day, c.stored_days, c.missing_days]
        for c in report
    ]
    if ended:  # the column only when some coin ended: most reports have none
        headers.append("ended")
        for row, coin in zip(rows, report, strict=True):
            row.append(coin.end_day or "")
    coins = tabulate(rows, headers=headers)
    if ended:
        coins += "\n\n" + describe_ended(ended)
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


def describe_ended(ended: Sequence[CoinCoverage], limit: int = 20) -> str:
    """One line naming the coins that ended, and when (the first ``limit``; the table shows
    each)."""
    named = ", ".join(f"{c.ticker} (id {c.coin_id}) on {c.end_day}" for c in ended[:limit])
    if len(ended) > limit:
        named += f" and {len(ended) - limit} more"
    return (
        f"{len(ended)} coin(s) ended: {named}. After its end day a coin has no candle to "
        "fetch, so no missing day after it is a gap."
    )


def describe_gaps(gaps: Sequence[Gap], limit: int | None = None) -> str:
    """``ALPHA 2020-03-31, BETA 2020-05-01..2020-05-03``; beyond ``limit``, ``and N more``."""
    described = ", ".join(f"{coin.ticker} {gap}" for coin, gap in gaps[:limit])
    if limit is not None and len(gaps) > limit:
        described += f" and {len(gaps) - limit} more"
    return described
