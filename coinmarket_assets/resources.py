"""Dagster resources: where data comes from and the settings of a run."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from dagster import AssetExecutionContext, ConfigurableResource
from pydantic import Field

from coinmarket_assets.settings import (
    BadRows,
    Section,
    Settings,
    SourceSettings,
    default_text,
    expects,
    variable,
)
from coinmarket_assets.sources import Coin, MarketDataSource, open_source, resolve_universe
from coinmarket_assets.storage.database import database_url
from coinmarket_assets.storage.locks import session_lock

# The lock that lets one step of any run call the source at a time, so that concurrent runs
# never multiply the request rate; a killed step releases it with its database session.
SOURCE_LOCK = "market_data_source"


def override(section: type[Section], name: str) -> Any:
    """A launchpad field for the setting ``name``: unset, the environment's value applies."""
    field = section.model_fields[name]
    return Field(
        default=None,
        description=f"{field.description} Values: {expects(field)}. "
        f"Unset: {variable(field)}, default {default_text(field).strip('`')}.",
    )


class MarketDataSourceResource(ConfigurableResource):
    """The market data source (``COINMARKET_SOURCE``): ``coinmarketcap``, ``csv:DIR`` or
    ``html:DIR``."""

    spec: str | None = override(SourceSettings, "source")

    @cached_property
    def source(self) -> MarketDataSource:
        """The source, opened once per run step so its listing and connections are reused."""
        return open_source(SourceSettings.from_env(source=self.spec).source)

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
    """The ``COINMARKET_*`` settings in force; the launchpad can override these for one run.

    Unset fields take the environment's value. The settings read when the code location loads
    (COINMARKET_START_DATE, COINMARKET_RETURN_DAYS, ...) are not here: they shape the partitions
    and lookbacks.
    """

    tickers: str | None = override(Settings, "tickers")
    top_n: int | None = override(Settings, "top_n")
    rsi_period: int | None = override(Settings, "rsi_period")
    std_window: int | None = override(Settings, "std_window")
    rank_size: int | None = override(Settings, "rank_size")
    index_size: int | None = override(Settings, "index_size")
    exclude_tags: str | None = override(Settings, "exclude_tags")
    listing_depth: int | None = override(Settings, "listing_depth")
    batch_coins: int | None = override(Settings, "batch_coins")
    on_bad_rows: BadRows | None = override(Settings, "on_bad_rows")

    @cached_property
    def settings(self) -> Settings:
        """The environment's settings with this run's overrides; invalid values fail, naming
        the setting."""
        return Settings.from_env(**{name: getattr(self, name) for name in type(self).model_fields})
