"""The database URL: read as written or refused before any connection, without quoting it."""

import pytest

from coinmarket_assets.storage.database import (
    DatabaseUrlError,
    check_url,
    connect,
    database_url,
    redact,
)
from coinmarket_assets_tests.hostile_secrets import DB_PASSWORD, leaks, with_password

BASE_URL = "postgresql://coinmarket@db.example:5432/coinmarket"

MISREAD = {
    # libpq: invalid percent-encoded token: "..." (it quotes the password)
    "a bare %": "postgresql://coinmarket:50%off-DbSecret@db.example/coinmarket",
    # libpq splits at the first @ and quotes the rest as a host name
    "a raw @": "postgresql://coinmarket:p@ss-DbSecret@db.example/coinmarket",
    "a raw /": "postgresql://coinmarket:p/ss-DbSecret@db.example/coinmarket",
    "a raw ?": "postgresql://coinmarket:p?ss-DbSecret@db.example/coinmarket",
    "a raw #": "postgresql://coinmarket:p#ss-DbSecret@db.example/coinmarket",
    "a space": "postgresql://coinmarket:p ss-DbSecret@db.example/coinmarket",
    "a line feed": "postgresql://coinmarket:DbSecret\n@db.example/coinmarket",
    "every hostile character at once": with_password(BASE_URL, DB_PASSWORD, encoded=False),
    "not postgresql": "mysql://coinmarket:DbSecret@db.example/coinmarket",
}


@pytest.mark.parametrize("url", MISREAD.values(), ids=MISREAD.keys())
def test_a_url_libpq_would_misread_is_refused_naming_the_variable_not_the_value(url: str):
    with pytest.raises(DatabaseUrlError) as refused:
        check_url(url)
    message = str(refused.value)
    assert message.startswith("COINMARKET_DATABASE_URL cannot be read as written")
    assert leaks(message) == []
    assert "ss-" not in message and "50%" not in message


@pytest.mark.parametrize("url", MISREAD.values(), ids=MISREAD.keys())
def test_connect_refuses_it_before_connecting(url: str, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(DatabaseUrlError):
        connect(url)
    monkeypatch.setenv("COINMARKET_DATABASE_URL", url)
    with pytest.raises(DatabaseUrlError):
        database_url()


@pytest.mark.parametrize(
    "url",
    [
        with_password(BASE_URL, DB_PASSWORD),
        "postgresql://postgres:@/coinmarket?host=/tmp/socket%20dir",
        "postgresql+psycopg2://u:p%40ss@[::1]:5432/db?sslmode=require",
        "postgres://u@db/coinmarket",
    ],
)
def test_a_url_with_every_special_character_encoded_is_accepted(url: str):
    check_url(url)


def test_a_hostile_encoded_password_reaches_the_server_decoded(database_url: str):
    """The embedded server trusts its socket, so any password connects: the URL parses."""
    with connect(with_password(database_url, DB_PASSWORD)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_redact_hides_the_password_of_any_url_in_a_text():
    text = f"pg_dump: {with_password(BASE_URL, DB_PASSWORD)} failed"
    assert leaks(redact(text)) == []
    assert "coinmarket:***@db.example" in redact(text)
