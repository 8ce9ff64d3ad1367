import pytest

from coinmarket_assets.settings import SettingsError
from coinmarket_assets.sources.coinmarketcap.settings import ClientSettings


def test_client_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_CMC_RATE_LIMIT", "2.5")
    monkeypatch.setenv("COINMARKET_CMC_WORKERS", "4")
    monkeypatch.setenv("COINMARKET_CMC_API_KEY", "k")
    settings = ClientSettings.from_env()
    assert (settings.rate_limit, settings.max_workers, settings.api_key) == (2.5, 4, "k")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("COINMARKET_CMC_RATE_LIMIT", "fast", "COINMARKET_CMC_RATE_LIMIT must be a number"),
        ("COINMARKET_CMC_WORKERS", "2.5", "COINMARKET_CMC_WORKERS must be a whole number"),
        ("COINMARKET_CMC_RATE_LIMIT", "0", "COINMARKET_CMC_RATE_LIMIT must be above 0"),
    ],
)
def test_bad_client_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        ClientSettings.from_env()
