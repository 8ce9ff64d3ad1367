import pytest

from coinmarket_assets.settings import SettingsError
from coinmarket_assets.sources.coinmarketcap.settings import VARIABLES, ClientSettings


def test_client_settings_come_from_the_environment():
    settings = ClientSettings.from_env(
        {
            "COINMARKET_CMC_RATE_LIMIT": "2.5",
            "COINMARKET_CMC_WORKERS": "4",
            "COINMARKET_CMC_API_KEY": "k",
            "COINMARKET_CMC_READ_TIMEOUT": "12.5",
            "COINMARKET_CMC_RETRY_BUDGET": "0",
            "COINMARKET_CMC_RETRY_BUDGET_SECONDS": "90",
            "COINMARKET_CMC_BACKOFF_SECONDS": "0.25",
        }
    )
    assert (settings.rate_limit, settings.max_workers, settings.api_key) == (2.5, 4, "k")
    assert (settings.read_timeout, settings.retry_budget, settings.retry_budget_seconds) == (
        12.5,
        0,
        90.0,
    )
    assert settings.backoff_seconds == 0.25


def test_blank_variables_take_the_defaults():
    assert ClientSettings.from_env(dict.fromkeys(VARIABLES.values(), " ")) == ClientSettings()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("COINMARKET_CMC_RATE_LIMIT", "fast", "COINMARKET_CMC_RATE_LIMIT must be a finite number"),
        ("COINMARKET_CMC_WORKERS", "2.5", "COINMARKET_CMC_WORKERS must be a whole number"),
        ("COINMARKET_CMC_RATE_LIMIT", "0", "COINMARKET_CMC_RATE_LIMIT must be above 0"),
        ("COINMARKET_CMC_READ_TIMEOUT", "0", "COINMARKET_CMC_READ_TIMEOUT must be above 0"),
        ("COINMARKET_CMC_CONNECT_TIMEOUT", "-1", "COINMARKET_CMC_CONNECT_TIMEOUT must be above 0"),
        (
            "COINMARKET_CMC_BACKOFF_SECONDS",
            "nan",
            "COINMARKET_CMC_BACKOFF_SECONDS must be a finite",
        ),
        ("COINMARKET_CMC_BACKOFF_SECONDS", "0", "COINMARKET_CMC_BACKOFF_SECONDS must be above 0"),
        ("COINMARKET_CMC_READ_TIMEOUT", "inf", "COINMARKET_CMC_READ_TIMEOUT must be a finite"),
        ("COINMARKET_CMC_RETRY_BUDGET", "-3", "COINMARKET_CMC_RETRY_BUDGET must be at least 0"),
        (
            "COINMARKET_CMC_RETRY_BUDGET_SECONDS",
            "-1",
            "COINMARKET_CMC_RETRY_BUDGET_SECONDS must be at least 0",
        ),
        (
            "COINMARKET_CMC_RETRY_BUDGET_SECONDS",
            "-inf",
            "COINMARKET_CMC_RETRY_BUDGET_SECONDS must be a finite number",
        ),
        ("COINMARKET_CMC_MAX_ATTEMPTS", "0", "COINMARKET_CMC_MAX_ATTEMPTS must be at least 1"),
        (
            "COINMARKET_CMC_WORKERS",
            "33",
            "COINMARKET_CMC_WORKERS must be at least 1 and at most 32",
        ),
        (
            "COINMARKET_CMC_MAX_BACKOFF_SECONDS",
            "0.5",
            "COINMARKET_CMC_MAX_BACKOFF_SECONDS .0.5. must not be below",
        ),
        ("COINMARKET_CMC_BASE_URL", "api.example", "COINMARKET_CMC_BASE_URL must be an http"),
        ("COINMARKET_CMC_PRO_BASE_URL", "ftp://x", "COINMARKET_CMC_PRO_BASE_URL must be an http"),
    ],
)
def test_bad_client_settings_fail_naming_the_variable(name: str, value: str, message: str):
    with pytest.raises(SettingsError, match=message):
        ClientSettings.from_env({name: value})


@pytest.mark.parametrize("padding", ["\r\n", "\n", " ", "\t", "\r"])
def test_the_api_key_loses_surrounding_whitespace(padding: str):
    key = "b54bcf4d-1bca-4e8e-9a24-22ff2c3d462c"
    settings = ClientSettings.from_env({"COINMARKET_CMC_API_KEY": f"{padding}{key}{padding}"})
    assert settings.api_key == key


@pytest.mark.parametrize("inner", ["\r", "\n", "\x00", "\x7f", "\u2713", "\u00e9"])
def test_an_api_key_with_a_control_or_non_ascii_character_fails_without_showing_it(inner: str):
    key = f"secret-key-{inner}-9023"
    with pytest.raises(SettingsError) as failure:
        ClientSettings.from_env({"COINMARKET_CMC_API_KEY": key})
    message = str(failure.value)
    assert "COINMARKET_CMC_API_KEY" in message
    assert "character 12 of 17" in message
    assert "secret" not in message and "9023" not in message
