"""Connections to the project's PostgreSQL database, configured by ``COINMARKET_DATABASE_URL``.

psycopg is imported where a connection is opened, not with this module: the code location
imports this module, and every process that loads it (the UI, the daemon) would pay for it.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from coinmarket_assets.masking import mask
from coinmarket_assets.settings import DATABASE_URL_ENV, StorageSettings

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_SECONDS = 10


class DatabaseNotConfiguredError(RuntimeError):
    """No usable database URL was given."""


class DatabaseUrlError(DatabaseNotConfiguredError):
    """The database URL is one libpq would misread; the message never quotes it."""


def database_url() -> str:
    """The libpq URL of the project's database, from the environment."""
    url = StorageSettings.from_env().database_url
    if not url:
        raise DatabaseNotConfiguredError(
            f"{DATABASE_URL_ENV} is not set. Start the pipeline with `coinmarket dev` or "
            "`coinmarket exec -- ...` (they run an embedded PostgreSQL), or set it to a "
            "libpq URL such as postgresql://user@host:5432/coinmarket."
        )
    check_url(url)
    return url


def _misreading(url: str) -> str | None:
    """Why libpq would read ``url`` otherwise than written, if it would."""
    scheme, separator, rest = url.partition("://")
    if not separator or not (
        scheme in ("postgres", "postgresql") or scheme.startswith("postgresql+")
    ):
        return "it must start with postgresql://"
    if any(character.isspace() or not character.isprintable() for character in url):
        return "it holds a space or a control character"
    if re.search(r"%(?![0-9A-Fa-f]{2})", url):
        return "it holds a '%' that does not start a percent-encoded byte"
    authority, after = re.match(r"([^/?#]*)(.*)", rest, re.DOTALL).groups()  # type: ignore[union-attr]
    if authority.count("@") > 1 or "@" in after:
        return "its user name or password holds a raw '@', '/', '?' or '#'"
    try:
        urlsplit(url).port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return "its port is not a number (a raw ':' in the host part?)"
    return None


def check_url(url: str) -> None:
    """Refuse a URL libpq would misread, before it is used: libpq quotes the misread parts
    (pieces of a password among them) in its errors. The error names the variable, never the
    value."""
    reason = _misreading(url)
    if reason:
        raise DatabaseUrlError(
            f"{DATABASE_URL_ENV} cannot be read as written: {reason}. Percent-encode special "
            "characters in the user name and password ('@' as %40, '%' as %25, '/' as %2F, "
            "'?' as %3F, '#' as %23, ':' as %3A, a space as %20)."
        )


# Sessions read and write days in UTC, ISO dates, and floats that round-trip exactly,
# whatever the server's defaults; options already in the URL (e.g. search_path) are kept.
SESSION_OPTIONS = ("-c TimeZone=UTC", "-c DateStyle=ISO", "-c extra_float_digits=3")


def connect(url: str | None = None, **kwargs: object) -> psycopg.Connection:
    """Open a psycopg 3 connection with the project's session settings."""
    import psycopg

    if url:
        check_url(url)
    conninfo = with_options(url or database_url(), *SESSION_OPTIONS)
    return psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, **kwargs)


# A database restart drops every session (SQLSTATE 57P01 admin shutdown, 57P02 crash shutdown),
# refuses connections while it starts (57P03, or no SQLSTATE when the socket is gone) and breaks
# connections mid-statement (class 08). A wrong URL, role, password or database is none of those.
LOST_CONNECTION_STATES = ("57P01", "57P02", "57P03")
LOST_CONNECTION_RETRY_SECONDS = 60


# Messages of a connection that broke or was refused while the server restarts. A wrong host,
# port, role, password, database or pg_hba rule says something else and fails at once.
LOST_CONNECTION_MESSAGES = (
    "server closed the connection",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "connection refused",
    "no such file or directory",  # the Unix socket, while the server restarts
    "consuming input failed",
    "the connection is lost",
    "connection is closed",
)


def is_lost_connection(error: BaseException) -> bool:
    """Whether ``error`` means the server went away, as opposed to refusing the request."""
    import psycopg

    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    if state is None:
        message = str(error).lower()
        return any(sign in message for sign in LOST_CONNECTION_MESSAGES)
    return state.startswith("08") or state in LOST_CONNECTION_STATES


# For operations that are whole transactions, safe to repeat: a write of days is idempotent.
retry_on_lost_connection = retry(
    retry=retry_if_exception(is_lost_connection),
    stop=stop_after_delay(LOST_CONNECTION_RETRY_SECONDS),
    wait=wait_exponential(multiplier=0.25, max=5),
    before_sleep=before_sleep_log(log, logging.WARNING),
    reraise=True,
)


def with_driver(url: str, driver: str) -> str:
    """The same URL with a SQLAlchemy-style scheme, e.g. ``postgresql+psycopg2``."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") and not parts.scheme.startswith(
        "postgresql+"
    ):
        raise ValueError(f"{DATABASE_URL_ENV} must be a postgresql:// URL")
    return urlunsplit(parts._replace(scheme=f"postgresql+{driver}"))


def with_options(url: str, *options: str) -> str:
    """The URL with extra ``-c name=value`` server options appended to its ``options``."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["options"] = " ".join(filter(None, [query.get("options", ""), *options]))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def redact(text: str) -> str:
    """``text`` with the password of any URL in it, and every known secret, replaced."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]+@", r"\1***@", text)
    return mask(re.sub(r"([?&]password=)[^&\s]*", r"\1***", text))
