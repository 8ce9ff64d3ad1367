"""Connections to the project's PostgreSQL database, configured by ``COINMARKET_DATABASE_URL``."""

import os
import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg

DATABASE_URL_ENV = "COINMARKET_DATABASE_URL"
CONNECT_TIMEOUT_SECONDS = 10


class DatabaseNotConfiguredError(RuntimeError):
    """No database URL was given."""


def database_url() -> str:
    """The libpq URL of the project's database, from the environment."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not url:
        raise DatabaseNotConfiguredError(
            f"{DATABASE_URL_ENV} is not set. Start the pipeline with `coinmarket dev` or "
            "`coinmarket exec -- ...` (they run an embedded PostgreSQL), or set it to a "
            "libpq URL such as postgresql://user@host:5432/coinmarket."
        )
    return url


# Sessions read and write days in UTC, ISO dates, and floats that round-trip exactly,
# whatever the server's defaults; options already in the URL (e.g. search_path) are kept.
SESSION_OPTIONS = ("-c TimeZone=UTC", "-c DateStyle=ISO", "-c extra_float_digits=3")


def connect(url: str | None = None, **kwargs: object) -> psycopg.Connection:
    """Open a psycopg 3 connection with the project's session settings."""
    conninfo = with_options(url or database_url(), *SESSION_OPTIONS)
    return psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, **kwargs)


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


def redact(url: str) -> str:
    """The URL with any password replaced, safe to log."""
    url = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)
