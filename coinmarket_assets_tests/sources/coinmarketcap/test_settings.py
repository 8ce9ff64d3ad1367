import pytest

from coinmarket_assets.settings import ClientSettings, SettingsError, variable

VARIABLES = [variable(field) for field in ClientSettings.model_fields.values()]


@pytest.fixture(autouse=True)
def _no_client_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> ClientSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ClientSettings.from_env()


def test_client_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    settings = _from_env(
        monkeypatch,
        COINMARKET_CMC_RATE_LIMIT="2.5",
        COINMARKET_CMC_WORKERS="4",
        COINMARKET_CMC_API_KEY="k",
        COINMARKET_CMC_READ_TIMEOUT="12.5",
        COINMARKET_CMC_RETRY_BUDGET="0",
        COINMARKET_CMC_RETRY_BUDGET_SECONDS="90",
        COINMARKET_CMC_BACKOFF_SECONDS="0.25",
    )
    assert (settings.rate_limit, settings.max_workers, settings.api_key) == (2.5, 4, "k")
    assert (settings.read_timeout, settings.retry_budget, settings.retry_budget_seconds) == (
        12.5,
        0,
        90.0,
    )
    assert settings.backoff_seconds == 0.25


def test_blank_variables_take_the_defaults(monkeypatch: pytest.MonkeyPatch):
    assert _from_env(monkeypatch, **dict.fromkeys(VARIABLES, " ")) == ClientSettings()


def test_constructing_client_settings_reads_no_variable(monkeypatch: pytest.MonkeyPatch):
    """Code and tests that build settings themselves get what they pass, whatever the shell."""
    monkeypatch.setenv("COINMARKET_CMC_API_KEY", "from-the-shell")
    assert ClientSettings(rate_limit=200.0).api_key is None


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("COINMARKET_CMC_RATE_LIMIT", "fast", "must be a number above 0 and at most 1000"),
        ("COINMARKET_CMC_WORKERS", "2.5", "must be a whole number between 1 and 32, not '2.5'"),
        ("COINMARKET_CMC_RATE_LIMIT", "0", "must be a number above 0 and at most 1000, not '0'"),
        ("COINMARKET_CMC_READ_TIMEOUT", "0", "must be a number above 0 and at most 3600"),
        ("COINMARKET_CMC_CONNECT_TIMEOUT", "-1", "must be a number above 0"),
        ("COINMARKET_CMC_BACKOFF_SECONDS", "nan", "must be a number above 0 and at most 3600"),
        ("COINMARKET_CMC_BACKOFF_SECONDS", "0", "must be a number above 0"),
        ("COINMARKET_CMC_READ_TIMEOUT", "inf", "must be a number above 0 and at most 3600"),
        ("COINMARKET_CMC_RETRY_BUDGET", "-3", "must be a whole number between 0 and 100000"),
        ("COINMARKET_CMC_RETRY_BUDGET_SECONDS", "-1", "must be a number between 0 and 86400"),
        ("COINMARKET_CMC_RETRY_BUDGET_SECONDS", "-inf", "must be a number between 0 and 86400"),
        ("COINMARKET_CMC_MAX_ATTEMPTS", "0", "must be a whole number between 1 and 100"),
        ("COINMARKET_CMC_WORKERS", "33", "must be a whole number between 1 and 32, not '33'"),
        (
            "COINMARKET_CMC_MAX_BACKOFF_SECONDS",
            "0.5",
            "(0.5) must not be below COINMARKET_CMC_BACKOFF_SECONDS (1)",
        ),
        ("COINMARKET_CMC_BASE_URL", "api.example", "must be an http:// or https:// URL"),
        ("COINMARKET_CMC_PRO_BASE_URL", "ftp://x", "must be an http:// or https:// URL"),
    ],
)
def test_bad_client_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
):
    with pytest.raises(SettingsError) as failure:
        _from_env(monkeypatch, **{name: value})
    assert f"{name} {expected}" in str(failure.value)


@pytest.mark.parametrize("padding", ["\r\n", "\n", " ", "\t", "\r"])
def test_the_api_key_loses_surrounding_whitespace(monkeypatch: pytest.MonkeyPatch, padding: str):
    key = "b54bcf4d-1bca-4e8e-9a24-22ff2c3d462c"
    settings = _from_env(monkeypatch, COINMARKET_CMC_API_KEY=f"{padding}{key}{padding}")
    assert settings.api_key == key


@pytest.mark.parametrize("inner", ["\r", "\n", "\x00", "\x7f", "\u2713", "\u00e9"])
def test_an_api_key_with_a_control_or_non_ascii_character_fails_without_showing_it(inner: str):
    # Given as an override: a process environment cannot hold a NUL character.
    with pytest.raises(SettingsError) as failure:
        ClientSettings.from_env(api_key=f"secret-key-{inner}-9023")
    message = str(failure.value)
    assert "COINMARKET_CMC_API_KEY" in message
    assert "character 12 of 17" in message
    assert "secret" not in message and "9023" not in message
