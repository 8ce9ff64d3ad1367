"""Secrets are masked by value, in every form a library quotes them back."""

import json
import logging
import subprocess
import sys
from urllib.parse import quote, unquote

import pytest

from coinmarket_assets.masking import MASK, mask, secret_forms
from coinmarket_assets_tests.hostile_secrets import (
    API_KEY,
    API_KEY_AS_CONFIGURED,
    DB_PASSWORD,
    WEBHOOK_PATH,
    leaks,
    with_password,
)

BASE_URL = "postgresql://coinmarket@db.example:5432/coinmarket"
WEBHOOK = f"https://hooks.example.com{WEBHOOK_PATH}"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINMARKET_DATABASE_URL", with_password(BASE_URL, DB_PASSWORD))
    monkeypatch.setenv("COINMARKET_CMC_API_KEY", API_KEY_AS_CONFIGURED)
    monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", WEBHOOK)


QUOTED_BACK = {
    "decoded": DB_PASSWORD,
    "percent-encoded": quote(DB_PASSWORD, safe=""),
    "repr (requests' InvalidHeader)": repr(API_KEY_AS_CONFIGURED),
    "JSON": json.dumps({"password": DB_PASSWORD}),
    "JSON in JSON": json.dumps({"event": json.dumps({"key": API_KEY_AS_CONFIGURED})}),
    "libpq's host name after a raw @": "failed to resolve host '\u2713-DbSecret-4471@db'",
    "the webhook's path (requests' errors)": f"Max retries exceeded with url: {WEBHOOK_PATH}",
    "the whole webhook": WEBHOOK,
    "the stripped API key": f"key {API_KEY} refused",
}


@pytest.mark.parametrize("text", QUOTED_BACK.values(), ids=QUOTED_BACK.keys())
def test_every_form_of_a_secret_is_masked(secrets: None, text: str):
    masked = mask(text)
    assert MASK in masked
    assert leaks(masked) == []


def test_text_without_a_secret_is_left_alone(secrets: None):
    text = "HTTP 429 from https://hooks.example.com, retrying in 2.0 s: coinmarket@db.example"
    assert mask(text) == text


def test_without_configured_secrets_nothing_is_masked(monkeypatch: pytest.MonkeyPatch):
    for name in ("COINMARKET_DATABASE_URL", "COINMARKET_CMC_API_KEY", "COINMARKET_ALERT_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COINMARKET_DATABASE_URL", "postgresql://postgres:@/db?host=/tmp/x")
    assert secret_forms() == ()
    assert mask("postgresql://postgres:@/db") == "postgresql://postgres:@/db"


def test_a_password_in_the_query_string_is_a_secret_too(monkeypatch: pytest.MonkeyPatch):
    url = f"postgresql://db.example/coinmarket?password={quote(DB_PASSWORD, safe='')}"
    monkeypatch.setenv("COINMARKET_DATABASE_URL", url)
    assert leaks(mask(f"could not connect with {unquote(DB_PASSWORD)}")) == []


def test_log_records_are_masked_in_message_arguments_and_exceptions(
    secrets: None, caplog: pytest.LogCaptureFixture
):
    logger = logging.getLogger("coinmarket_assets_tests.masking")
    logger.warning("retrying after: %s", ValueError(f"bad header {API_KEY_AS_CONFIGURED!r}"))
    try:
        raise ConnectionError(f"password {DB_PASSWORD} refused")
    except ConnectionError:
        logger.exception("connecting failed")
    assert "retrying after: bad header" in caplog.text
    assert "ConnectionError: password" in caplog.text
    assert leaks(caplog.text) == []


def test_an_uncaught_exception_is_printed_masked(secrets: None):
    code = f"import coinmarket_assets\nraise RuntimeError({DB_PASSWORD!r} + ' and ' + {API_KEY!r})"
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert ran.returncode == 1
    assert "RuntimeError: *** and ***" in ran.stderr
    assert leaks(ran.stderr) == []


def test_an_uncaught_exception_in_a_thread_is_printed_masked(secrets: None):
    code = (
        "import threading, coinmarket_assets\n"
        f"def fail(): raise RuntimeError({API_KEY!r})\n"
        "thread = threading.Thread(target=fail, name='fetcher'); thread.start(); thread.join()\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "Exception in fetcher" in ran.stderr
    assert "RuntimeError: ***" in ran.stderr
    assert leaks(ran.stderr) == []
