"""Secrets kept out of every output: each known secret is replaced by value, in every shape.

Masking by the shape of a URL misses what libraries quote back: libpq quotes a fragment of a
malformed URL, requests quotes a header value with ``repr``, JSON escapes quotes and control
characters. So every known secret (the database password, raw and percent-decoded, the API
key, the alert webhook) is looked up in each of the forms it can take in a message, and
replaced. ``install()`` applies that to every log record and uncaught exception of a process;
stored Dagster events and alerts call ``mask`` themselves.
"""

import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from coinmarket_assets.settings import DATABASE_URL_ENV, WEBHOOK_ENV, secret_variables

MASK = "***"
# libpq's own variable: children may get the password this way instead of on a command line.
PGPASSWORD_ENV = "PGPASSWORD"
# Every setting declared secret, and PGPASSWORD.
SECRET_VARIABLES = (*secret_variables(), PGPASSWORD_ENV)
# Secrets masked as given: those the code below takes apart are not among them.
_WHOLE_SECRETS = tuple(
    name for name in SECRET_VARIABLES if name not in (DATABASE_URL_ENV, WEBHOOK_ENV, PGPASSWORD_ENV)
)
# A piece of a secret split at a URL delimiter, as libpq quotes it for a URL it misreads; shorter
# pieces would mask ordinary words.
MIN_FRAGMENT_CHARACTERS = 4
_DELIMITERS = re.compile(r"[@/?#%:\s]+")


def url_passwords(url: str) -> list[str]:
    """The passwords a libpq URL holds, as written: in its user information (everything
    between ``://`` and the last ``@``, so that a raw ``@`` or ``/`` in it is included) and in
    ``password=`` query parameters."""
    passwords = []
    scheme_end = url.find("://")
    at = url.rfind("@")
    if scheme_end >= 0 and at > scheme_end:
        userinfo = url[scheme_end + 3 : at]
        if ":" in userinfo:
            passwords.append(userinfo.partition(":")[2])
    query = urlsplit(url).query if "?" in url else ""
    passwords += [
        value for name, value in parse_qsl(query, keep_blank_values=True) if name == "password"
    ]
    return [password for password in passwords if password]


def _webhook_secrets(url: str) -> list[str]:
    """The webhook URL, and its path and query alone: requests quotes them without the host."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return [url, path] if len(path) > 1 else [url]


def _fragments(password: str) -> list[str]:
    """The pieces of a password between URL delimiters, decoded or not: libpq quotes such a
    piece (say, as a host name) when a raw ``@`` or ``%`` makes it misread the URL."""
    pieces = _DELIMITERS.split(password) + _DELIMITERS.split(unquote(password))
    return [piece for piece in pieces if len(piece) >= MIN_FRAGMENT_CHARACTERS]


def known_secrets(env: Mapping[str, str]) -> list[str]:
    """Every secret that ``env`` configures, as given and with surrounding whitespace removed."""
    passwords = [*url_passwords(env.get(DATABASE_URL_ENV, "")), env.get(PGPASSWORD_ENV, "")]
    secrets = passwords + [fragment for password in passwords for fragment in _fragments(password)]
    secrets += [env.get(name, "") for name in _WHOLE_SECRETS]  # the API key among them
    webhook = env.get(WEBHOOK_ENV, "")
    if webhook.strip():
        secrets += [*_webhook_secrets(webhook.strip()), webhook]
    secrets += [secret.strip() for secret in secrets]
    return [secret for secret in secrets if secret]


def _shapes(secret: str) -> set[str]:
    """The forms ``secret`` takes in messages: as given, decoded, encoded and escaped."""
    decoded = unquote(secret)
    forms = {secret, decoded}
    for value in (secret, decoded):
        forms |= {
            quote(value, safe=""),
            quote(value),
            quote_plus(value),
            repr(value)[1:-1],
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            json.dumps(json.dumps(value)[1:-1])[1:-1],  # JSON text inside a JSON string
        }
    return {form for form in forms if form.strip()}


@lru_cache(maxsize=8)
def _masks_for(values: tuple[str, ...]) -> tuple[str, ...]:
    env = dict(zip(SECRET_VARIABLES, values, strict=True))
    forms: set[str] = set()
    for secret in known_secrets(env):
        forms |= _shapes(secret)
    # Longest first, so that a secret is masked whole before any piece of it.
    return tuple(sorted(forms, key=len, reverse=True))


def secret_forms(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every form of every secret configured in ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    return _masks_for(tuple(env.get(name, "") for name in SECRET_VARIABLES))


def mask(text: str) -> str:
    """``text`` with every form of every known secret replaced by ``***``."""
    for form in secret_forms():
        if form in text:
            text = text.replace(form, MASK)
    return text


def contains_secret(text: str) -> bool:
    return any(form in text for form in secret_forms())


def mask_record(record: logging.LogRecord) -> None:
    """Mask a log record's message, exception and stack text in place."""
    if not secret_forms():
        return
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit the format: log them as given
        message = f"{record.msg} {record.args}"
    if contains_secret(message):
        record.msg, record.args = mask(message), ()
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if contains_secret(text):
            record.exc_text = mask(text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)


def mask_json_strings(value: Any) -> Any:
    """``value`` (parsed JSON) with every string in it masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [mask_json_strings(item) for item in value]
    if isinstance(value, dict):
        return {mask(key): mask_json_strings(item) for key, item in value.items()}
    return value


def _masked_excepthook(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    sys.stderr.write(mask("".join(traceback.format_exception(kind, error, tb))))


def _masked_thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread else "a thread"
    sys.stderr.write(f"Exception in {name}:\n")
    _masked_excepthook(args.exc_type, args.exc_value, args.exc_traceback)


def install() -> None:
    """Mask every log record this process makes and every exception it leaves uncaught."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_secrets", False):
        return

    def masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        mask_record(record)
        return record

    masking_factory.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masking_factory)
    sys.excepthook = _masked_excepthook
    threading.excepthook = _masked_thread_excepthook
