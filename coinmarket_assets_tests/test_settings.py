"""The settings model: every COINMARKET_* variable declared once, parsed and checked as before,
read at load where it shapes definitions, and the files written from it never out of date."""

import re
from datetime import date
from pathlib import Path

import pytest

from coinmarket_assets import settings_docs
from coinmarket_assets.masking import mask
from coinmarket_assets.settings import (
    DEFAULT_TICKERS,
    SECTIONS,
    AlertSettings,
    LoadTimeSettings,
    Settings,
    SettingsError,
    declared,
    default_text,
    load_settings,
    load_time_settings,
    secret_variables,
    variable,
)
from coinmarket_assets_tests.dagster_cli import python_in_fresh_process

PROJECT = Path(__file__).resolve().parents[1]
DECLARED = {variable(field): field for _, _, field in declared()}
# COINMARKET_NAME, or COINMARKET_PREFIX_* naming a family of settings.
NAMED = re.compile(r"COINMARKET_[A-Z0-9_]*[A-Z0-9](?:_?\*)?(?![A-Z0-9_])")


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DECLARED:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_original_programs_values():
    settings = load_settings()
    assert (
        settings.tickers
        == DEFAULT_TICKERS
        == ("BTC", "ETH", "XRP", "BCH", "NEO", "LTC", "ADA", "TRX")
    )
    assert (settings.rsi_period, settings.std_window, settings.rank_size) == (14, 14, 5)
    at_load = LoadTimeSettings.from_env()
    assert (at_load.start_date, at_load.return_days) == (date(2013, 4, 27), 5)


def test_environment_values_are_parsed_and_tickers_normalised(monkeypatch: pytest.MonkeyPatch):
    for name, value in {
        "COINMARKET_TICKERS": " btc, Eth ",
        "COINMARKET_RSI_PERIOD": "9",
        "COINMARKET_STD_WINDOW": "30",
        "COINMARKET_RANK_SIZE": "3",
        "COINMARKET_ON_BAD_ROWS": "SKIP",
        "COINMARKET_START_DATE": "2020-01-01",
        "COINMARKET_RETURN_DAYS": "7",
        "COINMARKET_SCHEDULE_ENABLED": "off",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.tickers == ("BTC", "ETH")
    assert (settings.rsi_period, settings.std_window, settings.rank_size) == (9, 30, 3)
    assert settings.on_bad_rows == "skip"
    at_load = LoadTimeSettings.from_env()
    assert (at_load.start_date, at_load.return_days) == (date(2020, 1, 1), 7)
    assert at_load.schedule_enabled is False


def test_a_blank_variable_takes_the_default(monkeypatch: pytest.MonkeyPatch):
    defaults = [section.from_env() for section in SECTIONS]
    for name in DECLARED:
        monkeypatch.setenv(name, " \r\n")
    assert [section.from_env() for section in SECTIONS] == defaults


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("COINMARKET_RSI_PERIOD", "1", "must be a whole number between 2 and 299, not '1'"),
        ("COINMARKET_STD_WINDOW", "0", "must be a whole number between 2 and 300"),
        ("COINMARKET_RANK_SIZE", "five", "must be a whole number between 1 and 100, not 'five'"),
        ("COINMARKET_TOP_N", "0", "must be a whole number between 1 and 5000, not '0'"),
        ("COINMARKET_RESYNC_DAYS", "61", "must be a whole number between 0 and 60"),
        ("COINMARKET_TICKERS", "BTC,,ETH", "has an empty entry"),
        ("COINMARKET_TICKERS", "BTC,eth,ETH", "repeats ETH"),
        ("COINMARKET_TICKERS", "all,BTC", "cannot combine all with other tickers"),
        ("COINMARKET_ON_BAD_ROWS", "ignore", "must be fail or skip, not 'ignore'"),
    ],
)
def test_invalid_run_settings_fail_naming_the_variable_and_what_it_expects(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=re.escape(f"{name} {expected}")):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "COINMARKET_START_DATE",
            "27/04/2013",
            "must be a date like 2013-04-27, from 2009-01-03 to today, not '27/04/2013'",
        ),
        (
            "COINMARKET_START_DATE",
            "2001-01-01",
            "must be a date like 2013-04-27, from 2009-01-03 to today",
        ),
        ("COINMARKET_START_DATE", "2999-01-01", "must be a date like"),
        ("COINMARKET_RETURN_DAYS", "-5", "must be a whole number between 1 and 366, not '-5'"),
        ("COINMARKET_BACKFILL_CHUNK_DAYS", "1.5", "must be a whole number, at least 1, not '1.5'"),
        ("COINMARKET_SCHEDULE_ENABLED", "sometimes", "must be true or false, not 'sometimes'"),
        (
            "COINMARKET_SCHEDULE_CRON",
            "61 * * * *",
            "must be a cron expression like `30 0 * * *`, not '61 * * * *'",
        ),
        ("COINMARKET_UNIVERSE_SENSOR_INTERVAL", "59", "must be a whole number, at least 60"),
    ],
)
def test_invalid_load_time_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=re.escape(f"{name} {expected}")):
        LoadTimeSettings.from_env()


def test_every_invalid_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_RSI_PERIOD", "1")
    monkeypatch.setenv("COINMARKET_TOP_N", "x")
    with pytest.raises(SettingsError) as failure:
        load_settings()
    assert "COINMARKET_RSI_PERIOD must" in str(failure.value)
    assert "COINMARKET_TOP_N must" in str(failure.value)


def test_an_invalid_secret_fails_without_showing_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", "ftp://hooks.example/secret-token")
    with pytest.raises(SettingsError) as refused:
        AlertSettings.from_env()
    assert str(refused.value) == "COINMARKET_ALERT_WEBHOOK must be an http:// or https:// URL"
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_secrets_never_show_in_a_repr(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", "https://hooks.example/secret-token")
    assert "secret-token" not in repr(AlertSettings.from_env())


def test_metadata_lists_every_value_in_force(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_TICKERS", "BTC,ETH")
    at_load = load_time_settings()  # the process's: the code location is loaded with them
    assert load_settings().as_metadata() == {
        "tickers": "BTC,ETH",
        "start_date": at_load.start_date.isoformat(),
        "rsi_period": 14,
        "std_window": 14,
        "return_days": at_load.return_days,
        "rank_size": 5,
        "top_n": 100,
        "listing_depth": 1000,
        "batch_coins": 500,
        "index_size": 10,
        "exclude_tags": "",
        "resync_days": 3,
        "on_bad_rows": "fail",
    }


def test_settings_that_shape_definitions_are_read_once(monkeypatch: pytest.MonkeyPatch):
    from coinmarket_assets.assets.statistics import RETURN_DAYS
    from coinmarket_assets.partitions import daily_partitions

    first = load_time_settings()
    monkeypatch.setenv("COINMARKET_RETURN_DAYS", str(first.return_days + 1))
    assert load_time_settings() is first
    assert load_settings().return_days == first.return_days == RETURN_DAYS
    assert daily_partitions.start.date() == first.start_date


def test_settings_read_at_load_shape_the_partitions_lookback_schedule_and_sensor():
    code = (
        "from coinmarket_assets.definitions import defs\n"
        "from coinmarket_assets.schedules import daily_market_schedule as s\n"
        "from coinmarket_assets.sensors import universe_sensor as u\n"
        "graph = defs.resolve_asset_graph()\n"
        "returns = next(a for a in defs.assets if a.key.to_user_string() == 'period_returns')\n"
        "mapping = returns.get_partition_mapping(next(iter(returns.dependency_keys)))\n"
        "print(returns.partitions_def.get_first_partition_key(), mapping.start_offset,\n"
        "      returns.backfill_policy.max_partitions_per_run, s.cron_schedule,\n"
        "      s.default_status.value, u.minimum_interval_seconds, u.default_status.value)\n"
    )
    env = {
        "COINMARKET_START_DATE": "2020-01-01",
        "COINMARKET_RETURN_DAYS": "7",
        "COINMARKET_BACKFILL_CHUNK_DAYS": "30",
        "COINMARKET_SCHEDULE_CRON": "0 3 * * *",
        "COINMARKET_SCHEDULE_ENABLED": "false",
        "COINMARKET_UNIVERSE_SENSOR_INTERVAL": "600",
        "COINMARKET_UNIVERSE_SENSOR_ENABLED": "no",
    }
    loaded = python_in_fresh_process(code, env, without_prefix="COINMARKET_")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split("\n")[-2] == "2020-01-01 -7 30 0 3 * * * STOPPED 600 STOPPED"


def test_loading_fails_naming_an_invalid_load_time_setting():
    code = "import coinmarket_assets.definitions"
    env = {"COINMARKET_START_DATE": "2001-01-01"}
    loaded = python_in_fresh_process(code, env, without_prefix="COINMARKET_")
    assert loaded.returncode != 0
    assert "SettingsError: COINMARKET_START_DATE must be a date like 2013-04-27" in loaded.stderr


def _named(text: str) -> set[str]:
    return set(NAMED.findall(text))


def _is_declared(name: str) -> bool:
    if name.endswith("*"):
        return any(declared.startswith(name.rstrip("*")) for declared in DECLARED)
    return name in DECLARED


def test_every_variable_the_package_names_is_declared():
    named = set().union(
        *(_named(p.read_text()) for p in (PROJECT / "coinmarket_assets").rglob("*.py"))
    )
    assert sorted(name for name in named if not _is_declared(name)) == []


def test_every_variable_the_readme_and_docs_name_is_declared():
    documents = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
    undeclared = {
        str(path.relative_to(PROJECT)): sorted(
            n for n in _named(path.read_text()) if not _is_declared(n)
        )
        for path in documents
    }
    assert {path: names for path, names in undeclared.items() if names} == {}


# A row of the README's table of the most-used settings: | `COINMARKET_X` | default | meaning |
README_ROW = re.compile(r"^\| `(COINMARKET_[A-Z0-9_]+)` \| ([^|]+) \|", re.MULTILINE)


def test_the_readme_shows_each_settings_default_as_declared():
    rows = README_ROW.findall((PROJECT / "README.md").read_text())
    assert rows, "the README has no table of settings"
    shown = {name: default.strip() for name, default in rows}
    declared_defaults = {name: default_text(DECLARED[name]) for name in shown if name in DECLARED}
    # "unset" alone is a fair short form of an unset default's explanation.
    differing = {
        name: (default, declared_defaults.get(name))
        for name, default in shown.items()
        if default != declared_defaults.get(name)
        and not (default == "unset" and str(declared_defaults.get(name)).startswith("unset"))
    }
    assert differing == {}


def test_docs_settings_md_is_written_from_the_model():
    assert settings_docs.SETTINGS_MD.read_text() == settings_docs.markdown(), (
        f"docs/settings.md is out of date: run {settings_docs.COMMAND}"
    )
    table = settings_docs.SETTINGS_MD.read_text()
    for name, field in DECLARED.items():
        assert f"| `{name}` | {default_text(field)} |" in table


# A value of each secret setting, and the part of it that must never show.
SECRET_EXAMPLES = {
    "COINMARKET_DATABASE_URL": ("postgresql://pipeline:Db-Pass-4471@db:5432/x", "Db-Pass-4471"),
    "COINMARKET_CMC_API_KEY": ("Api-Key-4471", "Api-Key-4471"),
    "COINMARKET_ALERT_WEBHOOK": ("https://hooks.example/T0/Hook-4471", "/T0/Hook-4471"),
}


def test_every_setting_declared_secret_is_masked(monkeypatch: pytest.MonkeyPatch):
    assert set(SECRET_EXAMPLES) == set(secret_variables())
    for name, (value, _) in SECRET_EXAMPLES.items():
        monkeypatch.setenv(name, value)
    for name, (_, secret) in SECRET_EXAMPLES.items():
        assert secret not in mask(f"{name} failed with {secret}"), name


def test_top_n_names_a_point_in_time_universe_of_n_coins():
    settings = Settings.from_env(tickers="top:100", listing_depth=100)
    assert settings.point_in_time_top == 100
    assert Settings.from_env(tickers="all").point_in_time_top is None


@pytest.mark.parametrize(
    ("tickers", "message"),
    [
        ("top:0", "top:N needs a whole number N of at least 1, not 'top:0'"),
        ("top:ten", "top:N needs a whole number N of at least 1, not 'top:ten'"),
        ("top:5,BTC", "cannot combine top:N with other tickers"),
    ],
)
def test_a_bad_top_n_fails_naming_what_is_wrong(tickers: str, message: str):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(tickers=tickers)
    assert str(refused.value) == f"COINMARKET_TICKERS {message}"


def test_the_listing_must_be_at_least_as_deep_as_the_universe():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(tickers="top:200", listing_depth=100)
    assert "COINMARKET_LISTING_DEPTH (100) must be at least the N of" in str(refused.value)


def test_excluded_tags_are_lower_cased_sorted_and_refuse_an_empty_entry(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("COINMARKET_EXCLUDE_TAGS", " Wrapped-Tokens,stablecoin ")
    assert load_settings().exclude_tags == ("stablecoin", "wrapped-tokens")
    monkeypatch.setenv("COINMARKET_EXCLUDE_TAGS", "stablecoin,,defi")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "COINMARKET_EXCLUDE_TAGS" in str(refused.value)
