"""The per-run settings resource: what the launchpad shows and how a run's overrides apply."""

from pathlib import Path

import pytest
from dagster import DagsterInstance

from coinmarket_assets.definitions import defs
from coinmarket_assets.resources import BadRows, MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets.settings import (
    LoadTimeSettings,
    Settings,
    SettingsError,
    SourceSettings,
    default_text,
    expects,
    per_run_settings,
    variable,
)
from coinmarket_assets_tests.dagster_runs import read_table

ENV_NAMES = {name: variable(field) for name, field in Settings.model_fields.items()}


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES.values():
        monkeypatch.delenv(name, raising=False)


def _launchpad_fields(resource: type) -> dict:
    return resource.to_config_schema().as_field().config_type.fields


def test_the_launchpad_offers_the_per_run_settings_of_the_model():
    fields = _launchpad_fields(PipelineSettingsResource)
    assert list(fields) == per_run_settings(Settings)
    assert "spec" in _launchpad_fields(MarketDataSourceResource)
    assert per_run_settings(SourceSettings) == ["source"]
    assert not set(fields) & {*LoadTimeSettings.model_fields, "resync_days"}


@pytest.mark.parametrize(
    ("resource", "field", "section", "name"),
    [
        *[(PipelineSettingsResource, n, Settings, n) for n in per_run_settings(Settings)],
        (MarketDataSourceResource, "spec", SourceSettings, "source"),
    ],
)
def test_each_override_has_the_settings_type_description_variable_and_default(
    resource: type, field: str, section: type, name: str
):
    declared = section.model_fields[name]
    shown = _launchpad_fields(resource)[field]
    assert not shown.is_required
    # The launchpad takes the tickers and tags as the variables do: one comma-separated string.
    kind = str if name in ("tickers", "exclude_tags") else declared.annotation
    assert resource.model_fields[field].annotation == kind | None
    assert shown.description == (
        f"{declared.description} Values: {expects(declared)}. "
        f"Unset: {variable(declared)}, default {default_text(declared).strip('`')}."
    )


def test_unset_fields_take_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_RSI_PERIOD", "21")
    monkeypatch.setenv("COINMARKET_TICKERS", "btc,eth")
    settings = PipelineSettingsResource().settings
    assert settings.rsi_period == 21
    assert settings.tickers == ("BTC", "ETH")
    assert settings.on_bad_rows == "fail"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"tickers": "alpha, 105"}, {"tickers": ("ALPHA", "105")}),
        ({"tickers": "all", "top_n": 3}, {"tickers": ("ALL",), "top_n": 3}),
        ({"rsi_period": 7}, {"rsi_period": 7}),
        ({"std_window": 30}, {"std_window": 30}),
        ({"rank_size": 2}, {"rank_size": 2}),
        ({"on_bad_rows": BadRows.skip}, {"on_bad_rows": "skip"}),
    ],
)
def test_an_override_replaces_the_environment_for_one_run(
    monkeypatch: pytest.MonkeyPatch, override: dict, expected: dict
):
    monkeypatch.setenv("COINMARKET_RSI_PERIOD", "21")
    settings = PipelineSettingsResource(**override).settings
    for name, value in expected.items():
        assert getattr(settings, name) == value
    if "rsi_period" not in override:
        assert settings.rsi_period == 21


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"rsi_period": 1}, "COINMARKET_RSI_PERIOD must be a whole number between 2 and 299"),
        ({"rank_size": 0}, "COINMARKET_RANK_SIZE must be a whole number between 1 and 100, not 0"),
        ({"top_n": 6000}, "COINMARKET_TOP_N must be a whole number between 1 and 5000"),
        ({"tickers": "BTC,,ETH"}, "COINMARKET_TICKERS has an empty entry"),
    ],
)
def test_an_invalid_override_fails_naming_the_setting(override: dict, message: str):
    with pytest.raises(SettingsError, match=message):
        _ = PipelineSettingsResource(**override).settings


def test_an_invalid_source_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_SOURCE", "csv:/data")
    expected = "COINMARKET_SOURCE must be coinmarketcap, csv:DIR or html:DIR, not 'ftp:x'"
    with pytest.raises(SettingsError, match=expected):
        _ = MarketDataSourceResource(spec="ftp:x").source


def test_run_config_overrides_the_settings_of_one_run(database_url: str, csv_source: Path):
    """As the launchpad does: the job's run config sets the resource's fields for this run."""
    run_config = {
        "resources": {
            "pipeline_settings": {
                "config": {"tickers": "ALPHA,BETA,GAMMA", "rank_size": 2, "on_bad_rows": "skip"}
            }
        }
    }
    result = defs.resolve_job_def("daily_market_data").execute_in_process(
        run_config=run_config,
        tags=partition_range_tags("2020-03-01", "2020-03-10"),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    assert set(read_table("historical_trade_data")["ticker"]) == {"ALPHA", "BETA", "GAMMA"}
    assert read_table("top_ranking").groupby("trade_date").size().max() == 2
    recorded = {
        event.asset_key.path[-1]: event.materialization.metadata["settings"].value
        for event in result.get_asset_materialization_events()
        # A picture, and the source's global figures: neither depends on a setting.
        if event.asset_key.path[-1] not in ("ranked_coin_chart", "global_metrics")
    }
    assert set(recorded) == {
        "historical_listings",
        "historical_trade_data",
        "historical_rolling",
        "period_returns",
        "market_index",
        "top_ranking",
        "bottom_ranking",
    }
    for settings in recorded.values():
        assert settings["tickers"] == "ALPHA,BETA,GAMMA"
        assert settings["rank_size"] == 2
        assert settings["on_bad_rows"] == "skip"
