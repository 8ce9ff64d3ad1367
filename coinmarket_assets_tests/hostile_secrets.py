"""Secrets of the shapes that escape masking by URL shape, and URLs that carry them."""

from urllib.parse import quote, urlsplit, urlunsplit

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
