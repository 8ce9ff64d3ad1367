import json

from dagster import instance_for_test
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

from coinmarket_assets.partitions import DAILY_TABLE_TAG
from coinmarket_assets.storage.tables import DAILY_TABLES, SQL_TYPES, TABLES, TableSpec
from coinmarket_assets_tests.dagster_cli import PROJECT, python_in_fresh_process

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


COLUMN_SCHEMAS = """
{
  assetNodes {
    assetKey { path }
    description
    tags { key value }
    metadataEntries {
      label
      ... on TableSchemaMetadataEntry {
        schema {
          columns { name type description constraints { nullable unique } }
          constraints { other }
        }
      }
    }
  }
}
"""


def _described(spec: TableSpec) -> dict[str, object]:
    """The schema as the UI's GraphQL API returns it, built from the table description."""
    key = spec.primary_key
    return {
        "columns": [
            {
                "name": column.name,
                "type": SQL_TYPES[column.type],
                "description": column.description,
                "constraints": {"nullable": column.nullable, "unique": key == (column.name,)},
            }
            for column in spec.column_defs
        ],
        "constraints": {
            "other": [
                f"PRIMARY KEY ({', '.join(key)})",
                *(f"CHECK ({check})" for check in spec.checks),
            ]
        },
    }


def test_the_ui_shows_each_asset_with_its_description_columns_and_tags_before_any_run():
    """What the webserver serves for each asset, from the code location in its own process."""
    workspace = str(PROJECT / "workspace.yaml")
    with (
        instance_for_test() as instance,
        define_out_of_process_context(workspace, None, instance) as context,
    ):
        nodes = execute_dagster_graphql(context, COLUMN_SCHEMAS).data["assetNodes"]
    assert {node["assetKey"]["path"][-1]: bool(node["description"]) for node in nodes} == {
        **dict.fromkeys(TABLES, True),
        "ranked_coin_chart": True,
    }
    schemas = {
        node["assetKey"]["path"][-1]: [e for e in node["metadataEntries"] if "schema" in e]
        for node in nodes
    }
    assert schemas.pop("ranked_coin_chart") == []  # a PNG, not a table
    assert schemas == {
        name: [{"label": "dagster/column_schema", "schema": _described(spec)}]
        for name, spec in TABLES.items()
    }
    tagged = {
        node["assetKey"]["path"][-1]
        for node in nodes
        if {"key": DAILY_TABLE_TAG, "value": ""} in node["tags"]
    }
    assert tagged == set(DAILY_TABLES)
