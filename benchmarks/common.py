"""What every target shares: sizes, results, the embedded database and the generated markets."""

import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from coinmarket_assets.dagster_flags import DAGSTER_FLAGS
from coinmarket_assets.storage.tables import DAILY_TABLES
from coinmarket_testkit.databases import database_url_for, embedded_server
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, random_walk

PROJECT = Path(__file__).resolve().parents[1]
REAL_DATA = PROJECT.parent / "shared" / "data" / "cmc"

# Fixed days keep every run's data identical. Histories end on LAST_HISTORY_DAY; the daily runs
# that follow take the days after it, so the source publishes EXTRA_DAYS more.
LAST_HISTORY_DAY = date(2026, 4, 14)
EXTRA_DAYS = 10
SEED = 20_260_414
SYNTHETIC_ID_BASE = 1_000_000  # above every real CoinMarketCap id in the shared data
PARTITIONED_TABLES = DAILY_TABLES  # the assets of partitions.DAILY_TABLE_ASSETS


@dataclass(frozen=True)
class Sizes:
    """How much data each target uses, and how often it repeats a measurement."""

    reps: int  # repetitions whose median is reported (targets 1, 2, 5)
    write_rows: int  # target 1
    write_coins: int
    backfill_coins: int  # target 2
    backfill_days: int
    daily_coins: int  # targets 3 and 4
    short_history_days: int  # target 3
    long_history_days: int  # targets 3 and 4
    daily_reps: int  # target 3
    fetch_seconds: float  # target 5: the length of one repetition at each rate
    import_reps: int  # target 6


FULL = Sizes(
    reps=3,
    write_rows=1_000_000,
    write_coins=500,
    backfill_coins=100,
    backfill_days=365,
    daily_coins=500,
    short_history_days=365,
    long_history_days=2922,  # 8 years: 2018-04-15..2026-04-14
    daily_reps=5,
    fetch_seconds=25.0,
    import_reps=7,
)
QUICK = Sizes(
    reps=2,
    write_rows=20_000,
    write_coins=20,
    backfill_coins=10,
    backfill_days=30,
    daily_coins=20,
    short_history_days=40,
    long_history_days=120,
    daily_reps=2,
    fetch_seconds=3.0,
    import_reps=2,
)


@dataclass
class Figure:
    """One measured figure next to its target; ``passed`` is None for context figures."""

    name: str
    measured: str
    target: str
    passed: bool | None
    value: float  # the raw number, for machine-readable output


@dataclass
class TargetResult:
    number: int
    title: str
    figures: list[Figure] = field(default_factory=list)
    method: str = ""  # how it is measured, in Markdown
    details: list[str] = field(default_factory=list)  # raw timings, breakdowns (Markdown lines)
    commands: list[str] = field(default_factory=list)  # exact commands run, when any
    limits: str = ""  # what limits the figure, shown when a target is missed
    profile: str = ""  # profiler output, with --profile
    seconds: float = 0.0  # wall time of the whole target
    error: str = ""

    @property
    def passed(self) -> bool:
        checked = [f.passed for f in self.figures if f.passed is not None]
        return not self.error and bool(checked) and all(checked)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def timed(action: Callable[[], object]) -> float:
    """Seconds that ``action`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def span_text(days: int) -> str:
    """``8 years`` for 2922 days, ``40 days`` otherwise."""
    years = round(days / 365.25)
    if years and abs(days - years * 365.25) < 1:
        return f"{years} year" + ("s" if years > 1 else "")
    return f"{days} days"


def seconds_text(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


# -- environment -----------------------------------------------------------------------------


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without pipeline or Dagster settings, plus ``values``: a
    benchmark must not pick up, say, a COINMARKET_RSI_PERIOD from the user's shell."""
    env = {k: v for k, v in os.environ.items() if not _is_setting(k)}
    return {**env, **values}


def _is_setting(name: str) -> bool:
    return name.startswith("COINMARKET_") or name in ("DAGSTER_HOME", *DAGSTER_FLAGS)


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Run the block with ``values`` as the only pipeline settings, then put them back.

    Only COINMARKET_* variables and ``values`` are restored.
    """
    touched = {k for k in os.environ if k.startswith("COINMARKET_")} | set(values)
    saved = {k: os.environ.get(k) for k in touched}
    for name in touched:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- generated markets -----------------------------------------------------------------------


@dataclass(frozen=True)
class MarketFiles:
    """A market written as a ``csv:`` source directory."""

    market: SyntheticMarket
    directory: Path
    first_day: date
    last_day: date

    @property
    def tickers(self) -> list[str]:
        return self.market.tickers

    @property
    def source(self) -> str:
        return f"csv:{self.directory}"


def synthetic_coin(index: int, first_day: date, days: int) -> SyntheticCoin:
    """A seeded random walk; start prices span 1e-5 to 1e4 so numbers take every notation."""
    rng = np.random.default_rng([SEED, index])
    start_price = float(10 ** rng.uniform(-5, 4))
    volatility = float(rng.uniform(0.01, 0.08))
    candles = random_walk(SEED + index, first_day, days, start_price, volatility)
    return SyntheticCoin(
        SYNTHETIC_ID_BASE + index, f"SYN{index:04d}", f"Synthetic {index}", candles
    )


def real_coins(directory: Path | None, first_day: date, last_day: date) -> list[SyntheticCoin]:
    """The real coins' published candles, dates shifted so that each ends on ``last_day``.

    Most of the shared files end in 2021; shifting keeps their prices, gaps, flat runs and
    zeros while covering the benchmark's days.
    """
    if directory is None or not (directory / "coins.csv").is_file():
        return []
    coins = []
    for coin in SyntheticMarket.from_csv(directory).coins:
        candles = coin.candles.copy()
        candles["date"] += pd.Timestamp(last_day) - candles["date"].max()
        candles = candles[candles["date"] >= pd.Timestamp(first_day)].reset_index(drop=True)
        coins.append(SyntheticCoin(coin.coin_id, coin.ticker, coin.name, candles))
    return coins


def bench_market(
    coins: int, first_day: date, last_day: date, real_data: Path | None
) -> SyntheticMarket:
    """``coins`` coins over first_day..last_day: the real ones first (when present), then
    synthetic ones."""
    real = real_coins(real_data, first_day, last_day)[:coins]
    days = (last_day - first_day).days + 1
    synthetic = [synthetic_coin(i, first_day, days) for i in range(coins - len(real))]
    return SyntheticMarket(real + synthetic)


def write_market(market: SyntheticMarket, directory: Path) -> None:
    """The ``csv:`` layout; pandas writes floats in their shortest exact form."""
    (directory / "daily").mkdir(parents=True, exist_ok=True)
    market.write_coins_csv(directory)
    for coin in market.coins:
        coin.candles.to_csv(
            directory / "daily" / f"{coin.ticker}.csv", index=False, date_format="%Y-%m-%d"
        )


# -- the database and shared state -------------------------------------------------------------


class Workspace:
    """One embedded PostgreSQL server and a temporary folder for a whole benchmark run.

    Targets create their own databases; target 4 leaves its 8-year history for target 3.
    """

    def __init__(self, root: Path, sizes: Sizes, real_data: Path | None, profile: Path | None):
        self.root = root
        self.sizes = sizes
        self.real_data = real_data if real_data and (real_data / "coins.csv").is_file() else None
        self.profile_dir = profile
        self.histories: dict[tuple[int, int], str] = {}  # (coins, days) -> database URL
        self._markets: dict[tuple[int, date, date], MarketFiles] = {}
        self._server = ExitStack()
        self._admin_url = ""

    def start(self) -> None:
        # Stopped with the benchmark however it ends (a watchdog stops it after a SIGKILL).
        self._admin_url = self._server.enter_context(embedded_server(self.root / "postgres"))

    def stop(self) -> None:
        self._server.close()

    def database(self, name: str) -> str:
        """A new database with the project's migrations applied."""
        from coinmarket_assets.storage.embedded import create_database
        from coinmarket_assets.storage.migrations import apply_migrations

        create_database(self._admin_url, name)
        url = database_url_for(self._admin_url, name)
        apply_migrations(url)
        return url

    def postgres_version(self) -> str:
        import psycopg

        with psycopg.connect(self._admin_url) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])

    def market(self, coins: int, first_day: date, last_day: date) -> MarketFiles:
        """The market of ``coins`` coins over the days, written once per run as a csv source."""
        key = (coins, first_day, last_day)
        if key not in self._markets:
            directory = self.root / f"market_{coins}_{first_day}_{last_day}"
            market = bench_market(coins, first_day, last_day, self.real_data)
            write_market(market, directory)
            self._markets[key] = MarketFiles(market, directory, first_day, last_day)
        return self._markets[key]

    def real_coin_count(self) -> int:
        return len(real_coins(self.real_data, LAST_HISTORY_DAY, LAST_HISTORY_DAY))


def history_days(days: int, last_day: date = LAST_HISTORY_DAY) -> tuple[date, date]:
    """The first and last day of ``days`` days ending on ``last_day``."""
    return last_day - timedelta(days=days - 1), last_day


def days_for_rows(rows: int, coins: int) -> int:
    """Days of a market whose newest ``rows`` rows span every coin, with room for late listings."""
    return math.ceil(rows / coins * 1.15) + 1
