"""Data-quality checks on stored rows, each described once in ``CHECKS``: its name, assets,
severity, description and query.

The assets declare their checks with ``specs(asset)`` and run them with ``evaluate_stored`` right
after the IO manager committed their rows: scoped to the run's days (and coins), side by side on
connections of their own; a failing check names the coins and days. ``fresh_candles`` runs on its
own, by a schedule. psycopg is imported by the functions that compose SQL: the specs load with
the code location.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    asset_check,
)

from coinmarket_assets.storage.database import connect, retry_on_lost_connection
from coinmarket_assets.storage.tables import TABLES

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

LISTED = 50  # problems named in full; the rest are counted
FRESHNESS_LIMIT = timedelta(hours=36)


@dataclass(frozen=True)
class CheckOutcome:
    """What a check found: a one-line summary and the problems, the first LISTED named."""

    summary: str
    failing: int  # problems found (rows, or coin-days), all of them
    problems: Sequence[str] = ()  # at most LISTED, each naming its coin and day
    details: dict[str, object] = field(default_factory=dict)
    listed: int | None = None  # how many of ``failing`` the problems name; all of them if None

    @property
    def passed(self) -> bool:
        return self.failing == 0

    def markdown(self) -> str:
        """The problems as a Markdown list, with a count of those left out."""
        if not self.problems:
            return "_none_"
        lines = [f"- {problem}" for problem in self.problems]
        unlisted = self.failing - (len(self.problems) if self.listed is None else self.listed)
        if unlisted > 0:
            lines.append(f"- ... and {unlisted} more")
        return "\n".join(lines)


def _coin(ticker: str, coin_id: int) -> str:
    return f"{ticker} (id {coin_id})"


def _window(first_day: date, last_day: date) -> str:
    return str(first_day) if first_day == last_day else f"{first_day}..{last_day}"


def _scope(
    first_day: date, last_day: date, coin_ids: Sequence[int] | None
) -> tuple[sql.Composable, list[object]]:
    """WHERE conditions for the days (and coins) a run wrote; both columns are indexed."""
    from psycopg import sql

    condition: sql.Composable = sql.SQL("trade_date BETWEEN %s AND %s")
    params: list[object] = [first_day, last_day]
    if coin_ids is not None:
        condition += sql.SQL(" AND coin_id = ANY(%s)")
        params.append(list(coin_ids))
    return condition, params


def ohlc_problems(
    conn: psycopg.Connection,
    first_day: date,
    last_day: date,
    coin_ids: Sequence[int] | None = None,
) -> CheckOutcome:
    """Candles of the days (and coins) whose prices are not positive and finite, or not in
    order: low <= open, close <= high."""
    from psycopg import sql

    scope, params = _scope(first_day, last_day, coin_ids)
    # greatest() is NaN or infinite when any price is: PostgreSQL sorts NaN above every number.
    query = sql.SQL(
        """
        SELECT coin_id, ticker, trade_date, open, high, low, close, count(*) OVER ()
        FROM historical_trade_data
        WHERE {scope} AND NOT (
            least(open, high, low, close) > 0
            AND greatest(open, high, low, close) < 'Infinity'
            AND low <= open AND low <= close AND open <= high AND close <= high)
        ORDER BY trade_date, coin_id
        LIMIT {listed}
        """
    ).format(scope=scope, listed=LISTED)
    rows = conn.execute(query, params).fetchall()
    problems = [
        f"{_coin(ticker, coin_id)} {day}: {'; '.join(_ohlc_reasons(o, h, lo, c))}"
        for coin_id, ticker, day, o, h, lo, c, _ in rows
    ]
    failing = rows[0][-1] if rows else 0
    return CheckOutcome(
        f"{failing} candles of {_window(first_day, last_day)} with bad prices", failing, problems
    )


def _ohlc_reasons(open_: float, high: float, low: float, close: float) -> list[str]:
    prices = {"open": open_, "high": high, "low": low, "close": close}
    reasons = [
        f"{name} {value!r} is not a positive number"
        for name, value in prices.items()
        if not 0 < value < float("inf")
    ]
    for name, value in (("open", open_), ("close", close)):
        if value < low:
            reasons.append(f"{name} {value!r} < low {low!r}")
        if value > high:
            reasons.append(f"{name} {value!r} > high {high!r}")
    return reasons or ["prices out of order"]


def missing_days(
    conn: psycopg.Connection,
    first_day: date,
    last_day: date,
    coin_ids: Sequence[int] | None = None,
) -> CheckOutcome:
    """Days of the window without a candle that lie inside a coin's stored history (after its
    first and before its last stored candle); coins default to those with candles in the window.

    Only the window is scanned: the history's bounds come from the nearest stored candle
    before and after it (index lookups), not from the whole table.
    """
    from psycopg import sql

    coins = (
        sql.SQL("SELECT unnest(%(coins)s::integer[]) AS coin_id")
        if coin_ids is not None
        else sql.SQL(
            "SELECT DISTINCT coin_id FROM historical_trade_data "
            "WHERE trade_date BETWEEN %(first)s AND %(last)s"
        )
    )
    query = sql.SQL(
        """
        WITH coins AS ({coins}),
        bounds AS (
            SELECT c.coin_id,
                (SELECT max(trade_date) FROM historical_trade_data h
                 WHERE h.coin_id = c.coin_id AND h.trade_date < %(first)s) AS before,
                (SELECT min(trade_date) FROM historical_trade_data h
                 WHERE h.coin_id = c.coin_id AND h.trade_date > %(last)s) AS after,
                (SELECT min(trade_date) FROM historical_trade_data h
                 WHERE h.coin_id = c.coin_id
                   AND h.trade_date BETWEEN %(first)s AND %(last)s) AS first_in,
                (SELECT max(trade_date) FROM historical_trade_data h
                 WHERE h.coin_id = c.coin_id
                   AND h.trade_date BETWEEN %(first)s AND %(last)s) AS last_in
            FROM coins c
        ),
        spans AS (
            SELECT coin_id,
                CASE WHEN before IS NULL THEN first_in ELSE %(first)s::date END AS lo,
                CASE WHEN after IS NULL THEN last_in ELSE %(last)s::date END AS hi
            FROM bounds
        ),
        missing AS (
            SELECT s.coin_id, d::date AS day
            FROM spans s, generate_series(s.lo, s.hi, interval '1 day') AS d
            WHERE NOT EXISTS (
                SELECT 1 FROM historical_trade_data h
                WHERE h.coin_id = s.coin_id AND h.trade_date = d::date)
        )
        SELECT m.coin_id, day, count(*) OVER (),
            (SELECT ticker FROM historical_trade_data h WHERE h.coin_id = m.coin_id
             ORDER BY trade_date DESC LIMIT 1)
        FROM missing m
        ORDER BY m.coin_id, day
        LIMIT {listed}
        """
    ).format(coins=coins, listed=LISTED)
    params = {"first": first_day, "last": last_day, "coins": list(coin_ids or [])}
    rows = conn.execute(query, params).fetchall()
    failing = rows[0][2] if rows else 0
    return CheckOutcome(
        f"{failing} coin-days of {_window(first_day, last_day)} without a candle inside the "
        "coin's stored history",
        failing,
        _day_runs([(_coin(ticker, coin_id), day) for coin_id, day, _, ticker in rows]),
        listed=len(rows),
    )


def _day_runs(coin_days: list[tuple[str, date]]) -> list[str]:
    """Consecutive missing days of a coin as one problem: 'BTC (id 1) 2020-01-03..2020-01-05'."""
    runs: list[tuple[str, date, date]] = []
    for coin, day in coin_days:
        if runs and runs[-1][0] == coin and runs[-1][2] + timedelta(days=1) == day:
            runs[-1] = (coin, runs[-1][1], day)
        else:
            runs.append((coin, day, day))
    return [f"{coin} {_window(first, last)}" for coin, first, last in runs]


def coins_ranked_twice(
    conn: psycopg.Connection, table: str, first_day: date, last_day: date
) -> CheckOutcome:
    """Coins of a ranking that hold more than one rank on a day of the window (the rankings'
    key is (day, rank), so nothing but this check stops it)."""
    from psycopg import sql

    scope, params = _scope(first_day, last_day, None)
    repeated = conn.execute(
        sql.SQL(
            "SELECT coin_id, min(ticker), trade_date, count(*), count(*) OVER () FROM {} "
            "WHERE {} GROUP BY coin_id, trade_date HAVING count(*) > 1 "
            "ORDER BY trade_date, coin_id LIMIT {}"
        ).format(sql.Identifier(TABLES[table].name), scope, LISTED),
        params,
    ).fetchall()
    failing = repeated[0][-1] if repeated else 0
    return CheckOutcome(
        f"{failing} coin-days of {_window(first_day, last_day)} ranked more than once",
        failing,
        [f"{_coin(ticker, coin_id)} {day}: {n} ranks" for coin_id, ticker, day, n, _ in repeated],
    )


def candle_mismatches(
    conn: psycopg.Connection,
    table: str,
    first_day: date,
    last_day: date,
    coin_ids: Sequence[int] | None = None,
) -> CheckOutcome:
    """Where a statistics table's rows of the window (and coins) differ from the stored candles:
    exactly one row per candle, with the candle's ticker, is expected.

    Counted by one merge of both tables' rows of the window in primary-key order; the
    differences are listed only when there are some.
    """
    from psycopg import sql

    def rows(source: str) -> sql.Composable:
        query = sql.SQL(
            "SELECT coin_id, trade_date, ticker FROM {} WHERE trade_date BETWEEN %(first)s AND "
            "%(last)s"
        ).format(sql.Identifier(source))
        if coin_ids is not None:
            query += sql.SQL(" AND coin_id = ANY(%(coins)s)")
        return query

    joined = sql.SQL(
        "({}) e FULL JOIN ({}) s ON s.coin_id = e.coin_id AND s.trade_date = e.trade_date"
    ).format(rows("historical_trade_data"), rows(TABLES[table].name))
    differs = sql.SQL("e.ticker IS DISTINCT FROM s.ticker")
    params = {"first": first_day, "last": last_day, "coins": list(coin_ids or [])}
    candles, stored, failing = conn.execute(
        sql.SQL(
            "SELECT count(e.coin_id), count(s.coin_id), count(*) FILTER (WHERE {}) FROM {}"
        ).format(differs, joined),
        params,
    ).fetchone()
    listed = []
    if failing:
        listed = conn.execute(
            sql.SQL(
                "SELECT coalesce(e.coin_id, s.coin_id) AS coin, "
                "coalesce(e.trade_date, s.trade_date) AS day, e.ticker, s.ticker "
                "FROM {} WHERE {} ORDER BY day, coin LIMIT {}"
            ).format(joined, differs, LISTED),
            params,
        ).fetchall()
    return CheckOutcome(
        f"{stored} rows of {_window(first_day, last_day)} for {candles} stored candles: "
        f"{failing} differ",
        failing,
        [_candle_mismatch(*row) for row in listed],
        {"rows": stored, "candles": candles},
    )


def _candle_mismatch(coin_id: int, day: date, candle: str | None, row: str | None) -> str:
    coin = _coin(candle or row or "?", coin_id)
    if row is None:
        return f"{coin} {day}: no row for the stored candle"
    if candle is None:
        return f"{coin} {day}: a row without a stored candle"
    return f"{coin} {day}: ticker {row!r}, the candle's is {candle!r}"


def ranking_mismatches(
    conn: psycopg.Connection,
    table: str,
    first_day: date,
    last_day: date,
    rank_size: int,
    *,
    highest_first: bool,
    top_n: int | None = None,
    exclude_tags: Sequence[str] = (),
) -> CheckOutcome:
    """Ranks of the window's days whose stored row differs from the ``rank_size`` highest (or
    lowest) period returns of that day, ties by ticker, then coin id; with ``top_n``, among the
    coins ranked top_n or better in that day's stored listing only; with ``exclude_tags``,
    without the coins that carry one of them that day (``storage.tags.carrying``)."""
    from psycopg import sql

    order = _return_order(highest_first)
    excluded = _excluded_pairs(conn, first_day, last_day, rank_size, order, top_n, exclude_tags)
    query = sql.SQL(
        """
        WITH excluded AS (
            SELECT * FROM unnest(%(excluded_days)s::date[], %(excluded_coins)s::integer[])
                AS x (trade_date, coin_id)
        ),
        expected AS (
            SELECT trade_date, rank, coin_id, ticker, period_return FROM (
                SELECT trade_date, coin_id, ticker, period_return,
                    row_number() OVER (PARTITION BY trade_date ORDER BY {order}) AS rank
                FROM period_returns p WHERE trade_date BETWEEN %(first)s AND %(last)s
                    AND {members}
                    AND NOT EXISTS (SELECT 1 FROM excluded x
                        WHERE x.trade_date = p.trade_date AND x.coin_id = p.coin_id)
            ) ordered
            WHERE rank <= %(size)s
        ),
        stored AS (
            SELECT trade_date, rank, coin_id, ticker, period_return
            FROM {table} WHERE trade_date BETWEEN %(first)s AND %(last)s
        )
        SELECT coalesce(e.trade_date, s.trade_date) AS day, coalesce(e.rank, s.rank) AS rank,
            s.coin_id, s.ticker, s.period_return, e.coin_id, e.ticker, e.period_return,
            count(*) OVER ()
        FROM expected e FULL JOIN stored s ON s.trade_date = e.trade_date AND s.rank = e.rank
        WHERE (s.coin_id, s.ticker, s.period_return)
            IS DISTINCT FROM (e.coin_id, e.ticker, e.period_return)
        ORDER BY day, rank
        LIMIT {listed}
        """
    ).format(
        order=order,
        members=_members(),
        table=sql.Identifier(TABLES[table].name),
        listed=LISTED,
    )
    params = {
        "first": first_day,
        "last": last_day,
        "size": rank_size,
        "top_n": top_n,
        "excluded_days": [day for day, _ in excluded],
        "excluded_coins": [coin for _, coin in excluded],
    }
    rows = conn.execute(query, params).fetchall()
    problems = [
        f"{row[0]} rank {row[1]}: stored {_entry(row[2:5])}, expected {_entry(row[5:8])}"
        for row in rows
    ]
    failing = rows[0][-1] if rows else 0
    return CheckOutcome(
        f"{failing} ranks of {_window(first_day, last_day)} differ from period_returns",
        failing,
        problems,
    )


def _members() -> sql.Composable:
    """With top:N (``%(top_n)s``), a day ranks only the coins of period_returns ``p`` ranked
    top_n or better in its stored listing."""
    from psycopg import sql

    return sql.SQL(
        """(%(top_n)s::integer IS NULL OR EXISTS (
            SELECT 1 FROM historical_listings l WHERE l.trade_date = p.trade_date
                AND l.coin_id = p.coin_id AND l.rank <= %(top_n)s))"""
    )


def _return_order(highest_first: bool) -> sql.Composable:
    """A day's order of period_returns: by return, then ticker, then coin id."""
    from psycopg import sql

    # COLLATE "C" orders tickers by code point, as Python (and rank_returns) does.
    return sql.SQL('period_return {}, ticker COLLATE "C", coin_id').format(
        sql.SQL("DESC" if highest_first else "ASC")
    )


def _excluded_pairs(
    conn: psycopg.Connection,
    first_day: date,
    last_day: date,
    rank_size: int,
    order: sql.Composable,
    top_n: int | None,
    tags: Sequence[str],
) -> list[tuple[date, int]]:
    """The (day, coin) pairs of the window's period_returns that carry one of ``tags`` that day,
    among each day's best-ordered rows, as far down as leaves ``rank_size`` others (or the whole
    day): asked of ``storage.tags.carrying`` in rounds of a doubling depth."""
    import pandas as pd
    from psycopg import sql

    from coinmarket_assets.storage.tags import carrying

    if not tags:
        return []
    query = sql.SQL(
        """
        SELECT trade_date, coin_id, place, day_rows FROM (
            SELECT trade_date, coin_id,
                row_number() OVER (PARTITION BY trade_date ORDER BY {order}) AS place,
                count(*) OVER (PARTITION BY trade_date) AS day_rows
            FROM period_returns p WHERE trade_date BETWEEN %(first)s AND %(last)s AND {members}
        ) ordered
        WHERE place > %(asked)s AND place <= %(depth)s
        """
    ).format(order=order, members=_members())
    excluded: list[tuple[date, int]] = []
    eligible: dict[date, int] = {}
    open_days: set[date] | None = None  # days still short of rank_size eligible coins
    asked, depth = 0, rank_size
    while open_days is None or open_days:
        params = {"first": first_day, "last": last_day, "top_n": top_n}
        rows = conn.execute(query, params | {"asked": asked, "depth": depth}).fetchall()
        pairs = pd.DataFrame(rows, columns=["trade_date", "coin_id", "place", "day_rows"])
        if open_days is not None:
            pairs = pairs[pairs["trade_date"].isin(open_days)]
        hits = carrying(conn, pairs, tags).to_numpy(dtype=bool)
        excluded += list(zip(pairs["trade_date"][hits], pairs["coin_id"][hits], strict=True))
        for day, count in pairs[~hits].groupby("trade_date").size().items():
            eligible[day] = eligible.get(day, 0) + int(count)
        day_rows = dict(zip(pairs["trade_date"], pairs["day_rows"], strict=False))
        open_days = {
            day
            for day, rows_of_day in day_rows.items()
            if eligible.get(day, 0) < rank_size and rows_of_day > depth
        }
        asked, depth = depth, depth * 2
    return excluded


def _entry(values: Sequence[object]) -> str:
    coin_id, ticker, period_return = values
    if coin_id is None:
        return "nothing"
    return f"{_coin(str(ticker), int(coin_id))} {period_return!r}"


def candle_freshness(
    conn: psycopg.Connection, now: datetime, limit: timedelta = FRESHNESS_LIMIT
) -> CheckOutcome:
    """Whether the newest stored candle closed at most ``limit`` before ``now``.

    Day D's candle closes at D+1 00:00 UTC. With the daily run at 00:30 UTC, one missed run
    (plus its hour of retries) still passes; two missed runs fail.
    """
    newest = conn.execute("SELECT max(trade_date) FROM historical_trade_data").fetchone()[0]
    if newest is None:
        return CheckOutcome("no candle is stored", 1, ["historical_trade_data is empty"])
    closed = datetime.combine(newest + timedelta(days=1), time(), UTC)
    age = now - closed
    details = {"newest_day": str(newest), "age_hours": round(age / timedelta(hours=1), 1)}
    summary = f"the newest candle ({newest}) closed {details['age_hours']} h ago"
    if age <= limit:
        return CheckOutcome(summary, 0, details=details)
    coins = conn.execute(
        "SELECT ticker, coin_id FROM historical_trade_data WHERE trade_date = %s "
        "ORDER BY coin_id LIMIT %s",
        [newest, LISTED],
    ).fetchall()
    problem = (
        f"{newest}: the newest stored day, closed {closed:%Y-%m-%d %H:%M} UTC, "
        f"{details['age_hours']} h before {now:%Y-%m-%d %H:%M} UTC (limit "
        f"{limit / timedelta(hours=1):g} h); coins on it: "
        + ", ".join(_coin(ticker, coin_id) for ticker, coin_id in coins)
    )
    return CheckOutcome(summary, 1, [problem], details)


@dataclass(frozen=True)
class RunScope:
    """What a run wrote into ``table``: its days, and the coins it replaced in per-coin tables,
    with the settings the rows were computed with that a check needs."""

    table: str
    first_day: date
    last_day: date
    coin_ids: Sequence[int] | None = None
    rank_size: int = 0  # rankings: the ranks of a day
    highest_first: bool = True  # rankings: whether rank 1 is the highest return
    top_n: int | None = None  # rankings with top:N: only each day's members are ranked
    exclude_tags: Sequence[str] = ()  # rankings: coins carrying one that day are left out


# A check's query: what it finds in the stored rows of a run's scope (None for a scheduled check).
Query = Callable[["psycopg.Connection", RunScope | None], CheckOutcome]


@dataclass(frozen=True)
class Check:
    """An asset check, described once: the specs and the evaluations are built from it."""

    name: str
    assets: tuple[str, ...]
    severity: AssetCheckSeverity
    description: str
    # None: the asset reports what it found itself (no_bad_rows: the rows the source sent).
    query: Query | None = None
    scheduled: bool = False  # run on its own by a schedule, not by the asset's step

    def spec(self, asset: str) -> AssetCheckSpec:
        return AssetCheckSpec(self.name, asset=asset, description=self.full_description)

    @property
    def full_description(self) -> str:
        severity = "error" if self.severity == AssetCheckSeverity.ERROR else "warning"
        return f"{self.description} ({severity})."


NO_BAD_ROWS = Check(
    "no_bad_rows",
    ("historical_trade_data",),
    AssetCheckSeverity.WARN,
    "The source published no invalid candle for the run's days (with "
    "COINMARKET_ON_BAD_ROWS=skip they are left out and listed here)",
)
OHLC_SANE = Check(
    "ohlc_sane",
    ("historical_trade_data",),
    AssetCheckSeverity.ERROR,
    "Every candle the run wrote has positive, finite prices with low <= open, close <= high",
    lambda conn, s: ohlc_problems(conn, s.first_day, s.last_day, s.coin_ids),
)
NO_MISSING_DAYS = Check(
    "no_missing_days",
    ("historical_trade_data",),
    AssetCheckSeverity.WARN,
    "No coin of the run lacks a candle on a day of the run inside its stored history, between "
    "its first and last stored candle; sources have real gaps",
    lambda conn, s: missing_days(conn, s.first_day, s.last_day, s.coin_ids),
)
# Not on period_returns: its rows need the close n days before too, and finding those pairs
# takes a self-join of the candles that costs a 365-day backfill about 5% more (a target).
ONE_ROW_PER_STORED_CANDLE = Check(
    "one_row_per_stored_candle",
    ("historical_rolling",),
    AssetCheckSeverity.ERROR,
    "The run's days hold exactly one row per stored candle of the run's coins, with the "
    "candle's ticker",
    lambda conn, s: candle_mismatches(conn, s.table, s.first_day, s.last_day, s.coin_ids),
)
CONSISTENT_WITH_RETURNS = Check(
    "consistent_with_period_returns",
    ("top_ranking", "bottom_ranking"),
    AssetCheckSeverity.ERROR,
    "Each of the run's days ranks exactly the rank-size highest (top) or lowest (bottom) "
    "returns stored in period_returns that day (with top:N, among that day's members; with "
    "COINMARKET_EXCLUDE_TAGS, without the coins carrying one of those tags that day), ties by "
    "ticker, then coin id",
    lambda conn, s: ranking_mismatches(
        conn,
        s.table,
        s.first_day,
        s.last_day,
        s.rank_size,
        highest_first=s.highest_first,
        top_n=s.top_n,
        exclude_tags=s.exclude_tags,
    ),
)
ONE_RANK_PER_COIN_AND_DAY = Check(
    "one_row_per_coin_and_day",
    ("top_ranking", "bottom_ranking"),
    AssetCheckSeverity.ERROR,
    "No coin is ranked twice on one of the run's days",
    lambda conn, s: coins_ranked_twice(conn, s.table, s.first_day, s.last_day),
)
FRESH_CANDLES = Check(
    "fresh_candles",
    ("historical_trade_data",),
    AssetCheckSeverity.WARN,
    "The newest stored candle closed (at the UTC midnight ending its day) at most "
    f"{FRESHNESS_LIMIT / timedelta(hours=1):g} hours ago",
    lambda conn, _: candle_freshness(conn, datetime.now(UTC)),
    scheduled=True,
)
CHECKS = (
    NO_BAD_ROWS,
    OHLC_SANE,
    NO_MISSING_DAYS,
    ONE_ROW_PER_STORED_CANDLE,
    CONSISTENT_WITH_RETURNS,
    ONE_RANK_PER_COIN_AND_DAY,
    FRESH_CANDLES,
)


def _of(asset: str) -> list[Check]:
    """The checks the asset's own step evaluates."""
    return [check for check in CHECKS if asset in check.assets and not check.scheduled]


def specs(asset: str) -> list[AssetCheckSpec]:
    """The specs of the checks the asset's step evaluates, for its decorator."""
    return [check.spec(asset) for check in _of(asset)]


def scheduled_check(check: Check) -> AssetChecksDefinition:
    """A check run on its own (by a schedule): it queries the table itself, without an input,
    instead of loading the table through the IO manager."""
    (asset,) = check.assets

    @asset_check(asset=asset, name=check.name, blocking=False, description=check.full_description)
    def _scheduled() -> AssetCheckResult:
        return evaluate(check)

    return _scheduled


def result(check: Check, outcome: CheckOutcome) -> AssetCheckResult:
    """``outcome`` reported as the check's result: the summary, the problems and the details."""
    return AssetCheckResult(
        check_name=check.name,
        passed=outcome.passed,
        severity=check.severity,
        description=outcome.summary,
        metadata={
            "failing": outcome.failing,
            "problems": MetadataValue.md(outcome.markdown()),
            **outcome.details,
        },
    )


@retry_on_lost_connection
def evaluate(
    check: Check, scope: RunScope | None = None, url: str | None = None
) -> AssetCheckResult:
    """Run the check's query on a connection of its own and report it.

    Retried like the IO manager's reads: a check only reads, so repeating it is safe.
    """
    if check.query is None:
        raise ValueError(f"{check.name} has no query: its asset reports it")
    with connect(url) as conn:
        return result(check, check.query(conn, scope))


def evaluate_stored(scope: RunScope) -> list[AssetCheckResult]:
    """The stored-row checks of ``scope.table``'s asset, evaluated at the same time on
    connections of their own (the server works on one while it waits for another)."""
    queried = [check for check in _of(scope.table) if check.query is not None]
    if not queried:
        return []
    with ThreadPoolExecutor(max_workers=len(queried)) as pool:
        futures = [pool.submit(evaluate, check, scope) for check in queried]
        return [future.result() for future in futures]
