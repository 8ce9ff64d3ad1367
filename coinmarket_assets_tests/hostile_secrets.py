"""Secrets of the shapes that escape masking by URL shape, and URLs that carry them."""

from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

# Each secret holds a marker word: any form or piece of it that shows the marker is a leak.
MARKERS = ("DbSecret", "ApiSecret", "HookSecret")
# Every character that needs encoding in a URL, quotes, CR, LF and unicode.
DB_PASSWORD = "p%4 @:/?#\"'\r\n\u2713-DbSecret-4471"
API_KEY = "cmc-ApiSecret-9023"
API_KEY_AS_CONFIGURED = f" {API_KEY}\r\n"  # a Windows .env file, a Secret made from a file
WEBHOOK_PATH = "/services/T0000/B0000/HookSecret-5531"


def with_password(url: str, password: str, *, encoded: bool = True) -> str:
    """``url`` with ``password`` (percent-encoded, or raw as a careless user writes it)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    secret = quote(password, safe="") if encoded else password
    return urlunsplit(parts._replace(netloc=f"{user}:{secret}@{host}"))


def leaks(text: str) -> list[str]:
    """The markers of the secrets above that ``text`` shows."""
    return [marker for marker in MARKERS if marker in text]


def dagster_storage_text(database_url: str) -> str:
    """Every stored row of Dagster's storage (events, runs, checks, ...), as text."""
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dagster'"
        ).fetchall()
        query = sql.SQL("SELECT coalesce(string_agg(t::text, ' '), '') FROM {} t")
        rows = [
            conn.execute(query.format(sql.Identifier("dagster", table))).fetchone()[0]
            for (table,) in tables
        ]
    return "\n".join(rows)
