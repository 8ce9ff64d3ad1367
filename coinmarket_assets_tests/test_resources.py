"""The per-run settings resource: what the launchpad shows and how a run's overrides apply."""

from pathlib import Path

import pytest
from dagster import DagsterInstance

from coinmarket_assets.definitions import defs
from coinmarket_assets.resources import BadRows, PipelineSettingsResource
from coinmarket_assets.settings import Settings, SettingsError
from coinmarket_assets_tests.dagster_runs import read_table

ENV_NAMES = {
    "tickers": "COINMARKET_TICKERS",
    "top_n": "COINMARKET_TOP_N",
    "rsi_period": "COINMARKET_RSI_PERIOD",
    "std_window": "COINMARKET_STD_WINDOW",
    "rank_size": "COINMARKET_RANK_SIZE",
    "on_bad_rows": "COINMARKET_ON_BAD_ROWS",
}


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES.values():
        monkeypatch.delenv(name, raising=False)


def test_the_launchpad_shows_every_per_run_setting_with_its_variable_and_default():
    fields = PipelineSettingsResource.to_config_schema().as_field().config_type.fields
    assert set(fields) == set(ENV_NAMES)
    defaults = Settings()
    for name, field in fields.items():
        assert not field.is_required, name
        assert ENV_NAMES[name] in field.description, name
        default = getattr(defaults, name)
        shown = ",".join(default) if name == "tickers" else str(default)
        assert f"default {shown}" in field.description, name


def test_settings_fixed_at_load_time_cannot_be_overridden_per_run():
    fields = PipelineSettingsResource.to_config_schema().as_field().config_type.fields
    assert not {"start_date", "return_days", "resync_days"} & set(fields)


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
        ({"rsi_period": 1}, "COINMARKET_RSI_PERIOD must be between 2 and 299, not 1"),
        ({"rank_size": 0}, "COINMARKET_RANK_SIZE must be between 1 and 100, not 0"),
        ({"top_n": 6000}, "COINMARKET_TOP_N must be between 1 and 5000, not 6000"),
        ({"tickers": "BTC,,ETH"}, "COINMARKET_TICKERS has an empty entry"),
    ],
)
def test_an_invalid_override_fails_naming_the_setting(override: dict, message: str):
    with pytest.raises(SettingsError, match=message):
        _ = PipelineSettingsResource(**override).settings


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
        tags={
            "dagster/asset_partition_range_start": "2020-03-01",
            "dagster/asset_partition_range_end": "2020-03-10",
        },
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    assert set(read_table("historical_trade_data")["ticker"]) == {"ALPHA", "BETA", "GAMMA"}
    assert read_table("top_ranking").groupby("trade_date").size().max() == 2
    recorded = {
        event.asset_key.path[-1]: event.materialization.metadata["settings"].value
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[-1] != "ranked_coin_chart"  # a picture, with no settings
    }
    assert set(recorded) == {
        "historical_trade_data",
        "historical_rolling",
        "period_returns",
        "top_ranking",
        "bottom_ranking",
    }
    for settings in recorded.values():
        assert settings["tickers"] == "ALPHA,BETA,GAMMA"
        assert settings["rank_size"] == 2
        assert settings["on_bad_rows"] == "skip"
