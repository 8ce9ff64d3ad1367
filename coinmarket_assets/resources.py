"""Dagster resources: where data comes from and the settings of a run."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import Enum
from functools import cached_property

from dagster import AssetExecutionContext, ConfigurableResource
from pydantic import Field

from coinmarket_assets.settings import Settings, load_settings, parse_tickers
from coinmarket_assets.sources import (
    DEFAULT_SOURCE,
    Coin,
    MarketDataSource,
    open_source,
    resolve_universe,
)
from coinmarket_assets.storage.database import database_url
from coinmarket_assets.storage.locks import session_lock

# The lock that lets one step of any run call the source at a time, so that concurrent runs
# never multiply the request rate; a killed step releases it with its database session.
SOURCE_LOCK = "market_data_source"


class MarketDataSourceResource(ConfigurableResource):
    """The market data source (``COINMARKET_SOURCE``): ``coinmarketcap``, ``csv:DIR`` or
    ``html:DIR``."""

    spec: str | None = Field(
        default=None, description="Overrides COINMARKET_SOURCE for this run, e.g. csv:/data/cmc."
    )

    @cached_property
    def source(self) -> MarketDataSource:
        """The source, opened once per run step so its listing and connections are reused."""
        return open_source(self.spec or os.environ.get("COINMARKET_SOURCE") or DEFAULT_SOURCE)

    @contextmanager
    def exclusive(self, context: AssetExecutionContext) -> Iterator[None]:
        """Hold the instance-wide source lock for the block, waiting for other runs' steps."""
        holder = f"run {context.run.run_id[:8]} {context.op_def.name}"
        with session_lock(database_url(), SOURCE_LOCK, holder, context.log):
            yield

    def universe(self, settings: Settings) -> list[Coin]:
        """The coins the settings name; unknown tickers fail, naming each one."""
        return resolve_universe(self.source.listing(), settings.tickers, settings.top_n)


_DEFAULTS = Settings()


class BadRows(Enum):
    """What a run does with an invalid candle (``COINMARKET_ON_BAD_ROWS``)."""

    fail = "fail"
    skip = "skip"


class PipelineSettingsResource(ConfigurableResource):
    """The ``COINMARKET_*`` settings in force; the launchpad can override these for one run.

    Unset fields take the environment's value. COINMARKET_START_DATE and COINMARKET_RETURN_DAYS
    are not here: they shape the partitions and lookbacks when the code location loads.
    """

    tickers: str | None = Field(
        default=None,
        description="Comma-separated symbols (BTC), SYMBOL:slug, CoinMarketCap ids, or all. "
        f"Unset: COINMARKET_TICKERS, default {','.join(_DEFAULTS.tickers)}.",
    )
    top_n: int | None = Field(
        default=None,
        description="With tickers=all, how many of the highest-ranked coins (1-5000). "
        f"Unset: COINMARKET_TOP_N, default {_DEFAULTS.top_n}.",
    )
    rsi_period: int | None = Field(
        default=None,
        description="RSI period in closes (2-299). "
        f"Unset: COINMARKET_RSI_PERIOD, default {_DEFAULTS.rsi_period}.",
    )
    std_window: int | None = Field(
        default=None,
        description="Standard deviation window in stored closes (2-300). "
        f"Unset: COINMARKET_STD_WINDOW, default {_DEFAULTS.std_window}.",
    )
    rank_size: int | None = Field(
        default=None,
        description="Coins per daily ranking (1-100). "
        f"Unset: COINMARKET_RANK_SIZE, default {_DEFAULTS.rank_size}.",
    )
    on_bad_rows: BadRows | None = Field(
        default=None,
        description="fail: an invalid candle fails the run; skip: it is left out and reported. "
        f"Unset: COINMARKET_ON_BAD_ROWS, default {_DEFAULTS.on_bad_rows}.",
    )

    @cached_property
    def settings(self) -> Settings:
        """The environment's settings with this run's overrides; invalid values fail, naming
        the setting."""
        overrides: dict[str, object] = {
            name: getattr(self, name)
            for name in ("top_n", "rsi_period", "std_window", "rank_size")
            if getattr(self, name) is not None
        }
        if self.tickers is not None:
            overrides["tickers"] = parse_tickers(self.tickers)
        if self.on_bad_rows is not None:
            overrides["on_bad_rows"] = self.on_bad_rows.value
        return replace(load_settings(), **overrides)
