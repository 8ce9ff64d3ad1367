"""Which days of candles are stored per coin, where they have gaps, and the runs that fill them."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import psycopg
from tabulate import tabulate

CANDLE_ASSET = "historical_trade_data"
# Computed from stored candles only; with CANDLE_ASSET they are schedules.PARTITIONED_ASSETS.
STATISTICS_ASSETS = ("historical_rolling", "period_returns", "top_ranking", "bottom_ranking")
# Gaps at most this many days apart are fetched in one run: each run costs seconds of overhead,
# and re-fetching the stored days between two gaps keeps them as they are (or revises them).
MERGE_GAPS_WITHIN_DAYS = 30


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


def all_gaps(report: Iterable[CoinCoverage]) -> list[tuple[CoinCoverage, DayRange]]:
    return [(coin, gap) for coin in report for gap in coin.gaps]


def merge_ranges(ranges: Iterable[DayRange], within_days: int = 0) -> list[DayRange]:
    """The ranges merged where they overlap or at most ``within_days`` days lie between them."""
    merged: list[DayRange] = []
    for current in sorted(ranges):
        if merged and (current.first - merged[-1].last).days <= within_days + 1:
            last = max(merged[-1].last, current.last)
            merged[-1] = DayRange(merged[-1].first, last)
        else:
            merged.append(current)
    return merged


@dataclass(frozen=True)
class FillPlan:
    """Runs that fetch the missing days, then runs that recompute the statistics they touch."""

    fetch: list[DayRange]
    recompute: list[DayRange]
    before_start: list[DayRange]  # missing days before the first partition: no run fetches them


def fill_plan(report: Sequence[CoinCoverage], start_date: date, affected_days: int) -> FillPlan:
    """Plan the runs that fill every gap of ``report``.

    A candle of day X enters the statistics of days X..X + ``affected_days`` (the RSI lookback,
    or the n of the n-day return when longer), so those days are recomputed too, up to the
    newest stored day.
    """
    gaps = merge_ranges(gap for _, gap in all_gaps(report))
    day_before_start = start_date - timedelta(days=1)
    before_start = [DayRange(g.first, min(g.last, day_before_start)) for g in gaps]
    fetchable = [DayRange(max(g.first, start_date), g.last) for g in gaps if g.last >= start_date]
    fetch = merge_ranges(fetchable, MERGE_GAPS_WITHIN_DAYS)
    newest = max((coin.last_day for coin in report), default=start_date)
    touched = [
        DayRange(r.first, min(r.last + timedelta(days=affected_days), newest)) for r in fetch
    ]
    return FillPlan(
        fetch=fetch,
        recompute=merge_ranges(touched),
        before_start=[g for g in before_start if g.first < start_date],
    )


def materialize_command(assets: Sequence[str], days: DayRange) -> list[str]:
    """The arguments of ``dagster`` that materialize ``assets`` over ``days`` in one run."""
    return [
        "asset",
        "materialize",
        "-m",
        "coinmarket_assets.definitions",
        "--select",
        ",".join(assets),
        "--partition-range",
        f"{days.first}...{days.last}",
    ]


def format_report(report: Sequence[CoinCoverage]) -> str:
    """A table of coins, then one line per gap."""
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


def describe_gaps(gaps: Iterable[tuple[CoinCoverage, DayRange]]) -> str:
    """``ALPHA 2020-03-31, BETA 2020-05-01..2020-05-03``."""
    return ", ".join(f"{coin.ticker} {gap}" for coin, gap in gaps)
