"""Settings of the CoinMarketCap client, from ``COINMARKET_CMC_*`` environment variables."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from coinmarket_assets.settings import SettingsError, env_value

DATA_API_URL = "https://api.coinmarketcap.com/data-api"
PRO_API_URL = "https://pro-api.coinmarketcap.com"
# CoinMarketCap's own site uses this API; a browser-like agent is required, a robot one refused.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36 coinmarket_assets"
)


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
        if not 0 < self.rate_limit <= 1000:
            raise SettingsError(
                f"COINMARKET_CMC_RATE_LIMIT must be above 0 and at most 1000 requests per second, "
                f"not {self.rate_limit}"
            )
        if not 1 <= self.max_workers <= 32:
            raise SettingsError(f"COINMARKET_CMC_WORKERS must be 1 to 32, not {self.max_workers}")

    @classmethod
    def from_env(cls) -> "ClientSettings":
        env = os.environ
        defaults = cls()
        return cls(
            data_api_url=env.get("COINMARKET_CMC_BASE_URL") or defaults.data_api_url,
            pro_api_url=env.get("COINMARKET_CMC_PRO_BASE_URL") or defaults.pro_api_url,
            api_key=env.get("COINMARKET_CMC_API_KEY") or None,
            rate_limit=_number(env, "COINMARKET_CMC_RATE_LIMIT", defaults.rate_limit),
            retry_budget=_whole(env, "COINMARKET_CMC_RETRY_BUDGET", defaults.retry_budget),
            backoff_seconds=_number(
                env, "COINMARKET_CMC_BACKOFF_SECONDS", defaults.backoff_seconds
            ),
            read_timeout=_number(env, "COINMARKET_CMC_READ_TIMEOUT", defaults.read_timeout),
            max_workers=_whole(env, "COINMARKET_CMC_WORKERS", defaults.max_workers),
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    return env_value(env, name, default, float, "a number")


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    return env_value(env, name, default, int, "a whole number")
