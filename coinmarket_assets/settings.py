"""Every ``COINMARKET_*`` setting, declared once: its variable, type, bounds, default, one-line
description, and whether it is a secret, can be overridden per run in the launchpad, or is read
once when the code location loads (it shapes the partitions, lookbacks, schedule and sensors).

Each section is validated on its own, so that a bad CoinMarketCap setting fails the runs that
call CoinMarketCap, not ``coinmarket migrate``. docs/settings.md and the environment lists of
deploy/ are generated from these declarations: ``python -m coinmarket_assets.settings_docs``.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, ClassVar, Self, Union, get_args, get_origin
from urllib.parse import urlsplit

import annotated_types
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUseDefault
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_TICKERS = ("BTC", "ETH", "XRP", "BCH", "NEO", "LTC", "ADA", "TRX")
# COINMARKET_TICKERS=top:N: each day's members are the coins ranked N or better in that day's
# stored listing (tickers are upper-cased when read).
TOP_PREFIX = "TOP:"
EARLIEST_START_DATE = date(2009, 1, 3)
# RSI looks at the closes dated within this many calendar days before the day itself.
RSI_LOOKBACK_DAYS = 300
CHART_DAYS = 90  # the days a ranked-coin chart shows, its newest day included
HOUR = 3600
DATA_API_URL = "https://api.coinmarketcap.com/data-api"
PRO_API_URL = "https://pro-api.coinmarketcap.com"
# The secrets' variables, named for the code that treats each kind of secret its own way.
DATABASE_URL_ENV = "COINMARKET_DATABASE_URL"
API_KEY_ENV = "COINMARKET_CMC_API_KEY"
WEBHOOK_ENV = "COINMARKET_ALERT_WEBHOOK"


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use."""


def setting(
    variable: str,
    default: Any,
    description: str,
    *,
    secret: bool = False,
    per_run: bool = False,
    expects: str | None = None,
    unset: str | None = None,
    **bounds: float,
) -> Any:
    """A field read from ``variable``. ``expects`` says what a valid value is when the type and
    ``bounds`` do not; ``unset`` says what an unset (``None``) default means."""
    extra = {"secret": secret, "per_run": per_run, "expects": expects, "unset": unset}
    return Field(
        default,
        validation_alias=variable,
        description=description,
        repr=not secret,  # a secret never shows in a repr, an error or a log of the settings
        json_schema_extra={key: value for key, value in extra.items() if value is not None},
        **bounds,
    )


class Section(BaseSettings):
    """A group of settings read and validated together; a blank variable takes the default."""

    # A section's validator is built when first used: a process pays only for what it reads.
    model_config = SettingsConfigDict(
        case_sensitive=True,
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        defer_build=True,
    )
    title: ClassVar[str]
    read_at: ClassVar[str] = "run time"

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, **_: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Constructing a section never reads the environment: only ``from_env`` does.
        return (init_settings,)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()  # a CRLF .env file, a stray space
            if not value:
                raise PydanticUseDefault()
        return value

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """The section from the process environment, with ``overrides`` (by field name; None
        overrides nothing) on top. An invalid value fails naming its variable and what it
        expects, never showing a secret's value."""
        values = dict(EnvSettingsSource(cls, case_sensitive=True)())
        for name, value in overrides.items():
            if value is not None:
                values[variable(cls.model_fields[name])] = value
        try:
            return cls(**values)
        except ValidationError as error:
            raise SettingsError(explain(cls, error)) from None


# What the settings say about themselves: the docs, the deploy lists and the errors use these.


def _extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def variable(field: FieldInfo) -> str:
    return str(field.validation_alias)


def is_secret(field: FieldInfo) -> bool:
    return bool(_extra(field).get("secret"))


def is_per_run(field: FieldInfo) -> bool:
    return bool(_extra(field).get("per_run"))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bound(field: FieldInfo, kind: type) -> float | None:
    name = kind.__name__.lower()
    return next((getattr(m, name) for m in field.metadata if isinstance(m, kind)), None)


def _range(field: FieldInfo) -> str:
    """`` between 2 and 299``, `` above 0 and at most 60``, ``, at least 60`` or nothing."""
    ge, gt = _bound(field, annotated_types.Ge), _bound(field, annotated_types.Gt)
    le = _bound(field, annotated_types.Le)
    if ge is not None and le is not None:
        return f" between {_number(ge)} and {_number(le)}"
    if gt is not None and le is not None:
        return f" above {_number(gt)} and at most {_number(le)}"
    if ge is not None:
        return f", at least {_number(ge)}"
    return f" above {_number(gt)}" if gt is not None else ""


def _base_type(field: FieldInfo) -> Any:
    """``int`` of ``int | None``."""
    if get_origin(field.annotation) in (Union, UnionType):
        return next(kind for kind in get_args(field.annotation) if kind is not type(None))
    return field.annotation


def expects(field: FieldInfo) -> str:
    """What a valid value is, e.g. ``a whole number between 2 and 299``."""
    explicit = _extra(field).get("expects")
    if explicit:
        return explicit
    kind = _base_type(field)
    if kind is bool:
        return "true or false"
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return " or ".join(member.value for member in kind)
    names = {int: "a whole number", float: "a number"}
    return names.get(kind, "text") + _range(field)


def default_text(field: FieldInfo) -> str:
    """The default as the docs show it: ``14``, ``BTC,ETH``, or what unset means."""
    value = field.default
    if value is None or value == ():
        return _extra(field).get("unset", "unset")
    if isinstance(value, tuple):
        value = ",".join(value)
    elif isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, float):
        value = _number(value)
    return f"`{value}`"


def explain(section: type[Section], error: ValidationError) -> str:
    """Each problem as ``VARIABLE must be ..., not 'value'``; a secret's value is never shown."""
    fields = {variable(field): field for field in section.model_fields.values()}
    fields |= section.model_fields
    problems = []
    for problem in error.errors(include_url=False):
        # A ValueError of the checks above: its message (if any) says what is wrong.
        reason = str(problem["ctx"]["error"]) if problem["type"] == "value_error" else ""
        if not problem["loc"]:  # a check of several settings: its message names them
            problems.append(reason)
            continue
        field = fields[str(problem["loc"][0])]
        if reason:
            problems.append(f"{variable(field)} {reason}")
        elif is_secret(field):
            problems.append(f"{variable(field)} must be {expects(field)}")
        else:
            problems.append(f"{variable(field)} must be {expects(field)}, not {problem['input']!r}")
    return "; ".join(problems)


# Checks of single values. A ValueError without a message means "not what the setting expects".


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute http:// or https:// URL."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _http_url(url: str) -> str:
    if not is_http_url(url):
        raise ValueError()
    return url


def _parse_tickers(raw: Any) -> Any:
    """``"btc, eth"`` -> ``("BTC", "ETH")``; empty entries are an error."""
    if not isinstance(raw, str):
        return raw
    tickers = tuple(part.strip().upper() for part in raw.split(","))
    if any(not ticker for ticker in tickers):
        raise ValueError(f"has an empty entry: {raw!r}")
    return tickers


def _parse_tags(raw: Any) -> Any:
    """``"Stablecoin, wrapped-tokens"`` -> ``("stablecoin", "wrapped-tokens")``: CoinMarketCap's
    tag slugs, lower-cased and sorted; empty entries are an error."""
    if not isinstance(raw, str):
        return raw
    tags = [part.strip().lower() for part in raw.split(",")]
    if any(not tag for tag in tags):
        raise ValueError(f"has an empty entry: {raw!r}")
    return tuple(sorted(set(tags)))


def _check_tickers(tickers: tuple[str, ...]) -> tuple[str, ...]:
    if not tickers:
        raise ValueError("names no ticker")
    tops = [ticker for ticker in tickers if ticker.startswith(TOP_PREFIX)]
    if tops and len(tickers) > 1:
        raise ValueError("cannot combine top:N with other tickers")
    if tops and not (tops[0][len(TOP_PREFIX) :].isdigit() and int(tops[0][len(TOP_PREFIX) :]) > 0):
        raise ValueError(f"top:N needs a whole number N of at least 1, not {tops[0].lower()!r}")
    duplicates = sorted({ticker for ticker in tickers if tickers.count(ticker) > 1})
    if duplicates:
        raise ValueError(f"repeats {', '.join(duplicates)}")
    if "ALL" in tickers and len(tickers) > 1:
        raise ValueError("cannot combine all with other tickers")
    return tickers


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _in_the_past(day: date) -> date:
    if not EARLIEST_START_DATE <= day <= datetime.now(UTC).date():
        raise ValueError()
    return day


def _cron(cron: str) -> str:
    """Checked as Dagster checks it, so that a bad value fails naming the variable."""
    from dagster import DagsterInvalidDefinitionError, ScheduleDefinition

    try:
        ScheduleDefinition(name="cron_check", cron_schedule=cron, job_name="cron_check")
    except DagsterInvalidDefinitionError:
        raise ValueError() from None
    return cron


def _source(spec: str) -> str:
    kind, _, argument = spec.partition(":")
    if not (spec == "coinmarketcap" or (kind in ("csv", "html") and argument.strip())):
        raise ValueError()
    return spec


def _api_key(key: str) -> str:
    """A key goes into an HTTP header: refuse what requests would quote back in its error."""
    bad = [i for i, char in enumerate(key) if not (char.isascii() and char.isprintable())]
    if bad:
        raise ValueError(
            f"holds a control or non-ASCII character (character {bad[0] + 1} of {len(key)}): "
            "copy the key again from CoinMarketCap's dashboard (the value is not shown here)"
        )
    return key


Tickers = Annotated[
    tuple[str, ...], NoDecode, BeforeValidator(_parse_tickers), AfterValidator(_check_tickers)
]
Tags = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_parse_tags)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Seconds = Annotated[float, Field(allow_inf_nan=False)]


class BadRows(StrEnum):
    """What a run does with an invalid candle."""

    fail = "fail"
    skip = "skip"


# The sections. Docstrings become the headings' text in docs/settings.md.


class StorageSettings(Section):
    """Where the data lives."""

    title = "Storage"

    database_url: str | None = setting(
        DATABASE_URL_ENV,
        None,
        "The PostgreSQL 13+ database (libpq URL) of the data and of Dagster's own tables.",
        secret=True,
        expects="a libpq URL such as postgresql://user@host:5432/coinmarket",
        unset="unset: embedded PostgreSQL",
    )
    home: Path = setting(
        "COINMARKET_HOME",
        Path(".coinmarket"),
        "The folder of the embedded database, Dagster's home and the charts.",
        expects="a folder",
    )


class SourceSettings(Section):
    """Where market data comes from."""

    title = "Source"

    source: Annotated[str, AfterValidator(_source)] = setting(
        "COINMARKET_SOURCE",
        "coinmarketcap",
        "The market data source: CoinMarketCap's API, or saved csv or html files.",
        per_run=True,
        expects="coinmarketcap, csv:DIR or html:DIR",
    )


class Settings(Section):
    """What a run stores and computes; each materialization records these in its metadata."""

    title = "Pipeline"

    tickers: Tickers = setting(
        "COINMARKET_TICKERS",
        DEFAULT_TICKERS,
        "The coins: symbols (BTC), SYMBOL:slug (BTC:bitcoin), CoinMarketCap ids (1), all "
        "(today's top COINMARKET_TOP_N), or top:N (each day's top N as the market stood that day).",
        per_run=True,
        expects="comma-separated tickers, all, or top:N",
    )
    top_n: int = setting(
        "COINMARKET_TOP_N",
        100,
        "With COINMARKET_TICKERS=all: how many of the highest-ranked coins.",
        per_run=True,
        ge=1,
        le=5000,
    )
    rsi_period: int = setting(
        "COINMARKET_RSI_PERIOD",
        14,
        "RSI period, in closes.",
        per_run=True,
        ge=2,
        le=RSI_LOOKBACK_DAYS - 1,
    )
    std_window: int = setting(
        "COINMARKET_STD_WINDOW",
        14,
        "Standard deviation window, in stored closes.",
        per_run=True,
        ge=2,
        le=RSI_LOOKBACK_DAYS,
    )
    rank_size: int = setting(
        "COINMARKET_RANK_SIZE", 5, "Coins per daily ranking.", per_run=True, ge=1, le=100
    )
    resync_days: int = setting(
        "COINMARKET_RESYNC_DAYS",
        3,
        "Days before the newest that the daily schedule fetches again, to pick up revisions.",
        ge=0,
        le=60,
    )
    index_size: int = setting(
        "COINMARKET_INDEX_SIZE",
        10,
        "Coins in market_index: the top N of the day before's listing, weighted by market cap.",
        per_run=True,
        ge=1,
        le=1000,
    )
    exclude_tags: Tags = setting(
        "COINMARKET_EXCLUDE_TAGS",
        (),
        "CoinMarketCap tags whose coins the rankings and market_index leave out "
        "(stablecoin,wrapped-tokens); empty: none.",
        per_run=True,
        expects="comma-separated tag slugs",
        unset="empty",
    )
    listing_depth: int = setting(
        "COINMARKET_LISTING_DEPTH",
        1000,
        "How many of each day's highest-ranked coins historical_listings stores; 0: none "
        "(no listing request; not with top:N).",
        per_run=True,
        ge=0,
        le=100_000,
    )
    batch_coins: int = setting(
        "COINMARKET_BATCH_COINS",
        500,
        "Coins a statistics step holds at once: peak memory follows it, results do not.",
        per_run=True,
        ge=1,
        le=100_000,
    )
    on_bad_rows: Annotated[BadRows, BeforeValidator(_lower)] = setting(
        "COINMARKET_ON_BAD_ROWS",
        BadRows.fail,
        "fail: an invalid candle fails its run; skip: it is left out, reported, the rest stored.",
        per_run=True,
    )

    @model_validator(mode="after")
    def _listing_holds_the_universe(self) -> Self:
        top = self.point_in_time_top
        if top is not None and self.listing_depth < top:
            raise ValueError(
                f"COINMARKET_LISTING_DEPTH ({self.listing_depth}) must be at least the N of "
                f"COINMARKET_TICKERS=top:{top}: the listing holds each day's members"
            )
        return self

    @property
    def point_in_time_top(self) -> int | None:
        """The N of ``top:N``: each day's members come from that day's stored listing; None in
        the other modes (named coins, or ``all``: today's top COINMARKET_TOP_N)."""
        first = self.tickers[0]
        return int(first[len(TOP_PREFIX) :]) if first.startswith(TOP_PREFIX) else None

    @property
    def start_date(self) -> date:
        return load_time_settings().start_date

    @property
    def return_days(self) -> int:
        return load_time_settings().return_days

    def as_metadata(self) -> dict[str, str | int]:
        """The values in force, as a materialization records them."""
        values: dict[str, str | int] = self.model_dump(mode="json")
        values["tickers"] = ",".join(self.tickers)
        values["exclude_tags"] = ",".join(self.exclude_tags)
        values["start_date"] = self.start_date.isoformat()
        values["return_days"] = self.return_days
        return values


class LoadTimeSettings(Section):
    """Read once, when the code location loads: they shape the partitions, the lookbacks, the
    schedule and the sensors. Reload the code location (or restart) after changing one."""

    title = "Partitions, lookbacks and automation"
    read_at: ClassVar[str] = "at load"

    start_date: Annotated[date, AfterValidator(_in_the_past)] = setting(
        "COINMARKET_START_DATE",
        date(2013, 4, 27),
        "The first daily partition.",
        expects=f"a date like 2013-04-27, from {EARLIEST_START_DATE} to today",
    )
    return_days: int = setting(
        "COINMARKET_RETURN_DAYS", 5, "n of the n-day return (its lookback).", ge=1, le=366
    )
    backfill_chunk_days: int | None = setting(
        "COINMARKET_BACKFILL_CHUNK_DAYS",
        None,
        "Backfills as parallel runs of this many days instead of one run.",
        unset="unset: one run per backfill",
        ge=1,
    )
    schedule_cron: Annotated[str, AfterValidator(_cron)] = setting(
        "COINMARKET_SCHEDULE_CRON",
        "30 0 * * *",
        "When the daily schedule runs (UTC).",
        expects="a cron expression like `30 0 * * *`",
    )
    schedule_enabled: bool = setting(
        "COINMARKET_SCHEDULE_ENABLED",
        True,
        "false: the daily and freshness schedules start stopped (the UI can switch them on).",
    )
    universe_sensor_enabled: bool = setting(
        "COINMARKET_UNIVERSE_SENSOR_ENABLED", True, "false: the universe sensor starts stopped."
    )
    universe_sensor_interval: int = setting(
        "COINMARKET_UNIVERSE_SENSOR_INTERVAL",
        HOUR,  # one listing request an hour: nothing next to a backfill
        "Seconds between two looks of the universe sensor for coins that joined.",
        ge=60,
    )


class AlertSettings(Section):
    """Where failed runs are reported."""

    title = "Alerts"

    alert_webhook: HttpUrl | None = setting(
        WEBHOOK_ENV,
        None,
        "Slack-compatible webhook that receives a message for each failed run.",
        secret=True,
        expects="an http:// or https:// URL",
        unset="unset: alerts are only logged",
    )
    ui_url: Annotated[HttpUrl, AfterValidator(lambda url: url.rstrip("/"))] = setting(
        "COINMARKET_UI_URL",
        "http://127.0.0.1:3000",
        "The Dagster UI's address, for the links in alerts.",
        expects="an http:// or https:// URL",
    )


class ClientSettings(Section):
    """The CoinMarketCap client (COINMARKET_SOURCE=coinmarketcap)."""

    title = "CoinMarketCap client"

    data_api_url: HttpUrl = setting(
        "COINMARKET_CMC_BASE_URL",
        DATA_API_URL,
        "The keyless data-api (another host, e.g. a test server).",
        expects="an http:// or https:// URL",
    )
    pro_api_url: HttpUrl = setting(
        "COINMARKET_CMC_PRO_BASE_URL",
        PRO_API_URL,
        "The Pro API, used with an API key.",
        expects="an http:// or https:// URL",
    )
    api_key: Annotated[str, AfterValidator(_api_key)] | None = setting(
        API_KEY_ENV,
        None,
        "A CoinMarketCap Pro API key: listings (and history, if the plan has it) from the Pro API.",
        secret=True,
        expects="printable ASCII",
        unset="unset: the keyless data-api",
    )
    rate_limit: Seconds = setting(
        "COINMARKET_CMC_RATE_LIMIT",
        0.5,  # polite for the keyless API
        "Requests per second to CoinMarketCap, across every run.",
        gt=0,
        le=1000,
    )
    connect_timeout: Seconds = setting(
        "COINMARKET_CMC_CONNECT_TIMEOUT", 10.0, "Seconds to connect.", gt=0, le=HOUR
    )
    read_timeout: Seconds = setting(
        "COINMARKET_CMC_READ_TIMEOUT", 30.0, "Seconds to wait for an answer.", gt=0, le=HOUR
    )
    max_attempts: int = setting(
        "COINMARKET_CMC_MAX_ATTEMPTS", 6, "Attempts per request.", ge=1, le=100
    )
    retry_budget: int = setting(
        "COINMARKET_CMC_RETRY_BUDGET", 30, "Retries a run step may spend.", ge=0, le=100_000
    )
    retry_budget_seconds: Seconds = setting(
        "COINMARKET_CMC_RETRY_BUDGET_SECONDS",
        600.0,
        "Seconds a run step may spend waiting to retry (backoffs and Retry-After pauses).",
        ge=0,
        le=24 * HOUR,
    )
    backoff_seconds: Seconds = setting(
        "COINMARKET_CMC_BACKOFF_SECONDS",
        1.0,
        "First wait before a retry; it doubles, with jitter.",
        gt=0,
        le=HOUR,
    )
    max_backoff_seconds: Seconds = setting(
        "COINMARKET_CMC_MAX_BACKOFF_SECONDS", 60.0, "Longest wait before a retry.", gt=0, le=HOUR
    )
    max_workers: int = setting(
        "COINMARKET_CMC_WORKERS",
        4,  # enough to keep 50 requests/s busy
        "Coins fetched in parallel, within the rate limit.",
        ge=1,
        le=32,
    )

    @model_validator(mode="after")
    def _backoffs_in_order(self) -> Self:
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError(
                f"COINMARKET_CMC_MAX_BACKOFF_SECONDS ({_number(self.max_backoff_seconds)}) must "
                f"not be below COINMARKET_CMC_BACKOFF_SECONDS ({_number(self.backoff_seconds)})"
            )
        return self


SECTIONS: tuple[type[Section], ...] = (
    StorageSettings,
    SourceSettings,
    Settings,
    LoadTimeSettings,
    AlertSettings,
    ClientSettings,
)


def declared() -> Iterator[tuple[type[Section], str, FieldInfo]]:
    """Every setting: its section, field name and declaration."""
    for section in SECTIONS:
        for name, field in section.model_fields.items():
            yield section, name, field


def per_run_settings(section: type[Section]) -> list[str]:
    """The fields of ``section`` that the launchpad can override for one run."""
    return [name for name, field in section.model_fields.items() if is_per_run(field)]


def secret_variables() -> tuple[str, ...]:
    return tuple(variable(field) for _, _, field in declared() if is_secret(field))


@cache
def load_time_settings() -> LoadTimeSettings:
    """The settings that shape the partitions, lookbacks, schedule and sensors: read once per
    process, when the code location loads, so that every definition sees the same values."""
    return LoadTimeSettings.from_env()


def load_settings() -> Settings:
    """The run's settings from the environment."""
    return Settings.from_env()
