"""Settings of the CoinMarketCap client, from ``COINMARKET_CMC_*`` environment variables."""

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from coinmarket_assets.masking import API_KEY_ENV
from coinmarket_assets.settings import SettingsError, env_value, is_http_url

DATA_API_URL = "https://api.coinmarketcap.com/data-api"
PRO_API_URL = "https://pro-api.coinmarketcap.com"
# CoinMarketCap's own site uses this API; a browser-like agent is required, a robot one refused.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36 coinmarket_assets"
)
HOUR = 3600.0

# Each field's variable and its bounds (low, high, whether low itself is allowed).
VARIABLES = {
    "data_api_url": "COINMARKET_CMC_BASE_URL",
    "pro_api_url": "COINMARKET_CMC_PRO_BASE_URL",
    "api_key": API_KEY_ENV,
    "rate_limit": "COINMARKET_CMC_RATE_LIMIT",
    "connect_timeout": "COINMARKET_CMC_CONNECT_TIMEOUT",
    "read_timeout": "COINMARKET_CMC_READ_TIMEOUT",
    "max_attempts": "COINMARKET_CMC_MAX_ATTEMPTS",
    "retry_budget": "COINMARKET_CMC_RETRY_BUDGET",
    "retry_budget_seconds": "COINMARKET_CMC_RETRY_BUDGET_SECONDS",
    "backoff_seconds": "COINMARKET_CMC_BACKOFF_SECONDS",
    "max_backoff_seconds": "COINMARKET_CMC_MAX_BACKOFF_SECONDS",
    "max_workers": "COINMARKET_CMC_WORKERS",
}
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "rate_limit": (0, 1000, False),
    "connect_timeout": (0, HOUR, False),
    "read_timeout": (0, HOUR, False),
    "max_attempts": (1, 100, True),
    "retry_budget": (0, 100_000, True),
    "retry_budget_seconds": (0, 24 * HOUR, True),
    "backoff_seconds": (0, HOUR, False),
    "max_backoff_seconds": (0, HOUR, False),
    "max_workers": (1, 32, True),
}


@dataclass(frozen=True)
class ClientSettings:
    data_api_url: str = DATA_API_URL
    pro_api_url: str = PRO_API_URL
    api_key: str | None = None
    rate_limit: float = 0.5  # requests per second: polite for the keyless API
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_attempts: int = 6  # per request
    retry_budget: int = 30  # retries per client (one client per run step)
    retry_budget_seconds: float = 600.0  # total time a client may spend waiting to retry
    backoff_seconds: float = 1.0  # first wait; doubles (with jitter) up to max_backoff_seconds
    max_backoff_seconds: float = 60.0
    max_workers: int = 4  # coins fetched in parallel (enough to keep 50 requests/s busy)

    def __post_init__(self) -> None:
        for name, (low, high, low_allowed) in BOUNDS.items():
            _check_bounds(VARIABLES[name], getattr(self, name), low, high, low_allowed)
        if self.max_backoff_seconds < self.backoff_seconds:
            raise SettingsError(
                f"COINMARKET_CMC_MAX_BACKOFF_SECONDS ({self.max_backoff_seconds}) must not be "
                f"below COINMARKET_CMC_BACKOFF_SECONDS ({self.backoff_seconds})"
            )
        for name in ("data_api_url", "pro_api_url"):
            _check_http_url(VARIABLES[name], getattr(self, name))
        if self.api_key is not None:
            _check_api_key(self.api_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ClientSettings":
        """Settings from ``env`` (default: the process environment); unset or blank variables
        take the default. The API key loses surrounding whitespace (a CRLF ``.env`` file)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in fields(cls):
            variable = VARIABLES[field.name]
            if field.name == "api_key":
                values["api_key"] = env.get(variable, "").strip() or None
            elif field.type is int:
                values[field.name] = env_value(env, variable, field.default, int, "a whole number")
            elif field.type is float:
                values[field.name] = env_value(
                    env, variable, field.default, _finite, "a finite number"
                )
            else:
                values[field.name] = env.get(variable, "").strip() or field.default
        return cls(**values)  # type: ignore[arg-type]


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _check_bounds(variable: str, value: float, low: float, high: float, low_allowed: bool) -> None:
    above_low = value >= low if low_allowed else value > low
    if not (math.isfinite(value) and above_low and value <= high):
        floor = f"at least {low}" if low_allowed else f"above {low}"
        raise SettingsError(f"{variable} must be {floor} and at most {high}, not {value}")


def _check_http_url(variable: str, url: str) -> None:
    if not is_http_url(url):
        raise SettingsError(f"{variable} must be an http:// or https:// URL, not {url!r}")


def _check_api_key(key: str) -> None:
    """A key goes into an HTTP header: refuse what requests would quote back in its error."""
    bad = [i for i, char in enumerate(key) if not (char.isascii() and char.isprintable())]
    if not key or bad:
        where = f" (character {bad[0] + 1} of {len(key)})" if bad else ""
        raise SettingsError(
            f"{API_KEY_ENV} holds a control or non-ASCII character{where}: copy the key "
            "again from CoinMarketCap's dashboard (the value is not shown here)"
        )
