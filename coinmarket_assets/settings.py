"""Pipeline settings, read from ``COINMARKET_*`` environment variables and validated."""

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import TypeVar
from urllib.parse import urlsplit

DEFAULT_TICKERS = ("BTC", "ETH", "XRP", "BCH", "NEO", "LTC", "ADA", "TRX")
EARLIEST_START_DATE = date(2009, 1, 3)
# RSI looks at the closes dated within this many calendar days before the day itself.
RSI_LOOKBACK_DAYS = 300
CHART_DAYS = 90  # the days a ranked-coin chart shows, its newest day included
T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use."""


@dataclass(frozen=True)
class Settings:
    """The values in force for a run; each materialization records them in its metadata."""

    tickers: tuple[str, ...] = DEFAULT_TICKERS
    start_date: date = date(2013, 4, 27)
    rsi_period: int = 14
    std_window: int = 14
    return_days: int = 5
    rank_size: int = 5
    top_n: int = 100  # with COINMARKET_TICKERS=all: the highest-ranked coins taken
    resync_days: int = 3  # days before the newest that each daily run fetches again
    on_bad_rows: str = "fail"  # or "skip": keep invalid candles out, report them, store the rest

    def __post_init__(self) -> None:
        if not self.tickers:
            raise SettingsError("COINMARKET_TICKERS names no ticker")
        duplicates = sorted({t for t in self.tickers if self.tickers.count(t) > 1})
        if duplicates:
            raise SettingsError(f"COINMARKET_TICKERS repeats {', '.join(duplicates)}")
        if not EARLIEST_START_DATE <= self.start_date <= datetime.now(UTC).date():
            raise SettingsError(
                f"COINMARKET_START_DATE must be between {EARLIEST_START_DATE} and today, "
                f"not {self.start_date}"
            )
        _check_range("COINMARKET_RSI_PERIOD", self.rsi_period, 2, RSI_LOOKBACK_DAYS - 1)
        _check_range("COINMARKET_STD_WINDOW", self.std_window, 2, RSI_LOOKBACK_DAYS)
        _check_range("COINMARKET_RETURN_DAYS", self.return_days, 1, 366)
        _check_range("COINMARKET_RANK_SIZE", self.rank_size, 1, 100)
        _check_range("COINMARKET_TOP_N", self.top_n, 1, 5000)
        _check_range("COINMARKET_RESYNC_DAYS", self.resync_days, 0, 60)
        if self.on_bad_rows not in ("fail", "skip"):
            raise SettingsError(
                f"COINMARKET_ON_BAD_ROWS must be fail or skip, not {self.on_bad_rows!r}"
            )
        if "ALL" in self.tickers and len(self.tickers) > 1:
            raise SettingsError("COINMARKET_TICKERS=all cannot be combined with other tickers")

    def as_metadata(self) -> dict[str, str | int]:
        values = asdict(self)
        values["tickers"] = ",".join(self.tickers)
        values["start_date"] = self.start_date.isoformat()
        return values


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute http:// or https:// URL."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}")


def env_value(
    env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], expected: str
) -> T:
    """``parse`` of the variable ``name``, ``default`` when unset or blank; a value ``parse``
    rejects fails naming the variable and what it ``expected``."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {expected}, not {raw!r}") from None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return env_value(env, name, default, int, "a whole number")


def _date(env: Mapping[str, str], name: str, default: date) -> date:
    return env_value(env, name, default, date.fromisoformat, "a date like 2013-04-27")


def parse_tickers(raw: str) -> tuple[str, ...]:
    """``"btc, eth"`` -> ``("BTC", "ETH")``; empty entries are an error."""
    tickers = tuple(part.strip().upper() for part in raw.split(","))
    if any(not ticker for ticker in tickers):
        raise SettingsError(f"COINMARKET_TICKERS has an empty entry: {raw!r}")
    return tickers


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default: the process environment), defaults for unset values."""
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    raw_tickers = env.get("COINMARKET_TICKERS", "").strip()
    return Settings(
        tickers=parse_tickers(raw_tickers) if raw_tickers else defaults.tickers,
        start_date=_date(env, "COINMARKET_START_DATE", defaults.start_date),
        rsi_period=_int(env, "COINMARKET_RSI_PERIOD", defaults.rsi_period),
        std_window=_int(env, "COINMARKET_STD_WINDOW", defaults.std_window),
        return_days=_int(env, "COINMARKET_RETURN_DAYS", defaults.return_days),
        rank_size=_int(env, "COINMARKET_RANK_SIZE", defaults.rank_size),
        top_n=_int(env, "COINMARKET_TOP_N", defaults.top_n),
        resync_days=_int(env, "COINMARKET_RESYNC_DAYS", defaults.resync_days),
        on_bad_rows=env.get("COINMARKET_ON_BAD_ROWS", "").strip().lower() or defaults.on_bad_rows,
    )
