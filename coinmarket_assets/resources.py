"""Dagster resources: where data comes from and the settings of a run."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
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


class PipelineSettingsResource(ConfigurableResource):
    """The ``COINMARKET_*`` settings in force, each overridable for one run."""

    tickers: str | None = Field(default=None, description="Comma-separated tickers.")
    rsi_period: int | None = Field(default=None, description="RSI period in closes.")
    std_window: int | None = Field(default=None, description="Standard deviation window in closes.")
    rank_size: int | None = Field(default=None, description="Coins per daily ranking.")

    @cached_property
    def settings(self) -> Settings:
        overrides: dict[str, object] = {
            name: getattr(self, name)
            for name in ("rsi_period", "std_window", "rank_size")
            if getattr(self, name) is not None
        }
        if self.tickers is not None:
            overrides["tickers"] = parse_tickers(self.tickers)
        return replace(load_settings(), **overrides)
