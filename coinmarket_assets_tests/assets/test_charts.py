"""The ranked-coin chart through Dagster on a real PostgreSQL: a small PNG of the day's ranked
coins, shown in the materialization and stored under COINMARKET_HOME."""

import base64
import re
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from coinmarket_assets.assets.charts import ranked_coin_chart
from coinmarket_assets.definitions import defs
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets_tests.dagster_runs import PARTITIONED_ASSETS, materialize_days, read_table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r"!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def _materialize_chart(
    first_day: str, last_day: str, selection: Sequence[str] = ("ranked_coin_chart",)
) -> ExecuteInProcessResult:
    """One run of the chart (with the graph, until definitions.py lists it)."""
    return materialize(
        assets=[*defs.assets, ranked_coin_chart],
        selection=list(selection),
        resources=defs.resources,
        tags=partition_range_tags(first_day, last_day),
        instance=DagsterInstance.ephemeral(),
    )


def _chart_metadata(result: ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    """Each partition's chart materialization metadata, as plain values."""
    return {
        event.partition: {key: getattr(v, "value", v) for key, v in event.metadata.items()}
        for event in (
            e.event_specific_data.materialization for e in result.get_asset_materialization_events()
        )
        if event.asset_key.path[-1] == "ranked_coin_chart"
    }


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COINMARKET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_days_chart_is_a_small_png_in_its_materialization_and_on_disk(
    database_url: str, csv_source: Path, home: Path
):
    materialize_days("2020-03-01", "2020-06-30")
    metadata = _chart_metadata(_materialize_chart("2020-06-30", "2020-06-30"))["2020-06-30"]

    png = base64.b64decode(DATA_URI.fullmatch(metadata["chart"]).group(1))
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk comes first
    assert (width, height) == (800, 500)
    assert 10_000 < len(png) < 100_000
    assert metadata["chart_bytes"] == len(png)
    assert metadata["chart_file"] == str(home / "charts" / "2020-06-30.png")
    assert (home / "charts" / "2020-06-30.png").read_bytes() == png

    # Each coin of the day's stored rankings, once, with its ranks (in a 5-coin market every
    # coin is both among the top and the bottom five).
    ranks: dict[str, list[str]] = {}
    for side in ("top", "bottom"):
        table = read_table(f"{side}_ranking")
        for row in table[table["trade_date"] == "2020-06-30"].sort_values("rank").itertuples():
            ranks.setdefault(row.ticker, []).append(f"{side} {row.rank}")
    assert len(ranks) == 5
    assert metadata["coins"] == ", ".join(f"{t} ({', '.join(r)})" for t, r in ranks.items())


def test_a_ranged_run_draws_only_its_newest_day(database_url: str, csv_source: Path, home: Path):
    materialize_days("2020-03-01", "2020-06-20")
    # The daily job's shape: the whole graph and the chart over a few days, in one run.
    result = _materialize_chart(
        "2020-06-21", "2020-06-24", [*PARTITIONED_ASSETS, "ranked_coin_chart"]
    )
    metadata = _chart_metadata(result)
    assert sorted(metadata) == ["2020-06-21", "2020-06-22", "2020-06-23", "2020-06-24"]
    assert DATA_URI.fullmatch(metadata["2020-06-24"]["chart"])
    for day in ["2020-06-21", "2020-06-22", "2020-06-23"]:
        assert metadata[day]["chart"] == (
            "_This run covered several days and drew only its newest, 2020-06-24._"
        )
        assert metadata[day]["chart_day"] == "2020-06-24"
    assert sorted(p.name for p in (home / "charts").iterdir()) == ["2020-06-24.png"]


def test_a_day_without_rankings_draws_nothing(database_url: str, csv_source: Path, home: Path):
    materialize_days("2020-03-01", "2020-03-10")  # the first 5-day returns are of 2020-03-06
    metadata = _chart_metadata(_materialize_chart("2020-03-05", "2020-03-05"))["2020-03-05"]
    assert metadata["chart"] == "_No coin is ranked on 2020-03-05: nothing to draw._"
    assert not (home / "charts" / "2020-03-05.png").exists()
