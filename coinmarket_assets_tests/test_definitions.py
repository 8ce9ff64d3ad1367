import json

from coinmarket_assets_tests.dagster_cli import python_in_fresh_process

# Libraries only a step needs: the UI, the daemon and every run process load the code location,
# and would each pay for them (about 0.4 s together) if they were imported with it.
STEP_ONLY_LIBRARIES = (
    "pandas",
    "numpy",
    "pyarrow",
    "psycopg",
    "requests",
    "matplotlib",
    "yoyo",
    "psutil",
    "pyrate_limiter",
)


def test_loading_the_code_location_imports_no_library_that_only_steps_need():
    code = (
        "import json, sys\n"
        "from coinmarket_assets.definitions import defs\n"
        "defs.resolve_asset_graph()\n"
        f"print(json.dumps(sorted(m for m in {list(STEP_ONLY_LIBRARIES)!r} if m in sys.modules)))"
    )
    loaded = python_in_fresh_process(code, {}, without_prefix="COINMARKET_")
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout.splitlines()[-1]) == []


def test_the_code_location_lists_every_asset_with_its_description():
    code = (
        "import json\n"
        "from coinmarket_assets.definitions import defs\n"
        "graph = defs.resolve_asset_graph()\n"
        "print(json.dumps({k.to_user_string(): bool(graph.get(k).description)"
        " for k in graph.get_all_asset_keys()}))"
    )
    loaded = python_in_fresh_process(code, {}, without_prefix="COINMARKET_")
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout.splitlines()[-1]) == {
        "currency_status": True,
        "historical_trade_data": True,
        "historical_rolling": True,
        "period_returns": True,
        "top_ranking": True,
        "bottom_ranking": True,
        "ranked_coin_chart": True,
    }
