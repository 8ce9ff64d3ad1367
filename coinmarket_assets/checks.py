"""Data-quality checks on stored rows, each scoped to the days a run wrote.

Plain functions over a psycopg connection: the assets run them right after their rows are
committed and report them as asset checks; a failing check names the coins and days.
psycopg is imported by the functions that compose SQL: the specs load with the code location.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from coinmarket_assets.storage.database import connect, retry_on_lost_connection
from coinmarket_assets.storage.tables import TABLES

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

LISTED = 50  # problems named in full; the rest are counted
FRESHNESS_LIMIT = timedelta(hours=36)

OHLC_SANE = "ohlc_sane"
NO_MISSING_DAYS = "no_missing_days"
ONE_ROW_PER_COIN_AND_DAY = "one_row_per_coin_and_day"
CONSISTENT_WITH_RETURNS = "consistent_with_period_returns"
FRESH_CANDLES = "fresh_candles"


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


def duplicate_coin_days(
    conn: psycopg.Connection,
    table: str,
    first_day: date,
    last_day: date,
    coin_ids: Sequence[int] | None = None,
) -> CheckOutcome:
    """Rows beyond the first of any (coin, day) in the window: count against count distinct.

    A table with a valid unique index on exactly (coin_id, trade_date), as the per-coin tables'
    primary keys are, cannot hold any: the rows are counted, not compared (a scan of an 8-year
    backfill's rows took over a second per table). The rankings' key is (day, rank), so there
    the rows are compared, and a coin ranked twice on one day is caught.
    """
    from psycopg import sql

    scope, params = _scope(first_day, last_day, coin_ids)
    table_id = sql.Identifier(TABLES[table].name)
    window = _window(first_day, last_day)
    if _unique_per_coin_and_day(conn, TABLES[table].name):
        (total,) = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table_id, scope), params
        ).fetchone()
        summary = f"{total} rows of {window}, one per coin and day by the table's unique key"
        return CheckOutcome(summary, 0, [], {"rows": total, "distinct_coin_days": total})
    total, distinct = conn.execute(
        sql.SQL("SELECT count(*), count(DISTINCT (coin_id, trade_date)) FROM {} WHERE {}").format(
            table_id, scope
        ),
        params,
    ).fetchone()
    repeated = conn.execute(
        sql.SQL(
            "SELECT coin_id, min(ticker), trade_date, count(*) FROM {} WHERE {} "
            "GROUP BY coin_id, trade_date HAVING count(*) > 1 "
            "ORDER BY trade_date, coin_id LIMIT {}"
        ).format(table_id, scope, LISTED),
        params,
    ).fetchall()
    return CheckOutcome(
        f"{total} rows of {window}, {distinct} distinct coin-days",
        total - distinct,
        [f"{_coin(ticker, coin_id)} {day}: {n} rows" for coin_id, ticker, day, n in repeated],
        {"rows": total, "distinct_coin_days": distinct},
    )


def _unique_per_coin_and_day(conn: psycopg.Connection, table: str) -> bool:
    """Whether a valid, unconditional unique index of ``table`` has exactly the key columns
    coin_id and trade_date."""
    row = conn.execute(
        """
        SELECT EXISTS (
            SELECT 1 FROM pg_index i
            WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indisvalid
                AND i.indpred IS NULL AND i.indnkeyatts = 2
                AND ARRAY(
                    SELECT a.attname::text FROM pg_attribute a
                    WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[])
                    ORDER BY a.attname
                ) = ARRAY['coin_id', 'trade_date'])
        """,
        [table],
    ).fetchone()
    return bool(row and row[0])


def ranking_mismatches(
    conn: psycopg.Connection,
    table: str,
    first_day: date,
    last_day: date,
    rank_size: int,
    *,
    highest_first: bool,
) -> CheckOutcome:
    """Ranks of the window's days whose stored row differs from the ``rank_size`` highest (or
    lowest) period returns of that day, ties by ticker, then coin id."""
    from psycopg import sql

    direction = sql.SQL("DESC" if highest_first else "ASC")
    # COLLATE "C" orders tickers by code point, as Python (and rank_returns) does.
    query = sql.SQL(
        """
        WITH expected AS (
            SELECT trade_date, rank, coin_id, ticker, period_return FROM (
                SELECT trade_date, coin_id, ticker, period_return,
                    row_number() OVER (PARTITION BY trade_date
                        ORDER BY period_return {direction}, ticker COLLATE "C", coin_id) AS rank
                FROM period_returns WHERE trade_date BETWEEN %(first)s AND %(last)s
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
    ).format(direction=direction, table=sql.Identifier(TABLES[table].name), listed=LISTED)
    params = {"first": first_day, "last": last_day, "size": rank_size}
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


def check_spec(name: str, asset: str, description: str) -> AssetCheckSpec:
    """A check evaluated by the asset itself after its rows are committed."""
    return AssetCheckSpec(name, asset=asset, description=description)


@retry_on_lost_connection
def evaluate(
    check_name: str,
    severity: AssetCheckSeverity,
    check: Callable[[psycopg.Connection], CheckOutcome],
    url: str | None = None,
) -> AssetCheckResult:
    """Run ``check`` on a connection of its own and report it as an asset check result.

    Retried like the IO manager's reads: a check only reads, so repeating it is safe.
    """
    with connect(url) as conn:
        outcome = check(conn)
    return AssetCheckResult(
        check_name=check_name,
        passed=outcome.passed,
        severity=severity,
        description=outcome.summary,
        metadata={
            "failing": outcome.failing,
            "problems": MetadataValue.md(outcome.markdown()),
            **outcome.details,
        },
    )


# A check to evaluate: its name, its severity, and the query it runs.
Evaluation = tuple[str, AssetCheckSeverity, Callable[["psycopg.Connection"], CheckOutcome]]


def evaluate_all(evaluations: Sequence[Evaluation]) -> list[AssetCheckResult]:
    """``evaluate`` each, at the same time on connections of their own (the server works on
    one while it waits for another), results in the order given."""
    with ThreadPoolExecutor(max_workers=len(evaluations) or 1) as pool:
        futures = [pool.submit(evaluate, *evaluation) for evaluation in evaluations]
        return [future.result() for future in futures]
