"""The ranked-coin chart through Dagster on a real PostgreSQL: a small PNG of the day's ranked
coins with the market index and Bitcoin's dominance under them, shown in the materialization and
stored under COINMARKET_HOME."""

import base64
import re
import struct
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from coinmarket_assets.assets.charts import chart_inputs, ranked_coin_chart
from coinmarket_assets.definitions import defs
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets.settings import CHART_DAYS
from coinmarket_assets.storage.database import connect
from coinmarket_assets_tests.dagster_runs import PARTITIONED_ASSETS, materialize_days, read_table
from coinmarket_testkit.synthetic import (
    SyntheticMarket,
    market_global_metrics,
    write_global_metrics_csv,
)

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
    assert (width, height) == (800, 720)
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
    # Neither listings nor global metrics in the source: the market panels say so (drawn).
    assert read_table("market_index").empty and read_table("global_metrics").empty
    assert "index_level" not in metadata and "btc_dominance" not in metadata


def _write_context(directory: Path, market: SyntheticMarket) -> dict[date, float]:
    """listings.csv (so the index has members) and global_metrics.csv with a Bitcoin dominance
    on every day (the synthetic coins hold no Bitcoin); the dominance by day."""
    market.write_listings_csv(directory)
    metrics = market_global_metrics(market)
    metrics["btc_dominance"] = [40 + (n % 17) / 8 for n in range(len(metrics))]
    write_global_metrics_csv(directory, metrics)
    return dict(zip(metrics["date"].dt.date, metrics["btc_dominance"], strict=True))


def _index_level_in_python(day: date) -> float:
    """1000 times the stored (1 + index_return) multiplied day by day up to ``day``."""
    product = 1.0
    for row in read_table("market_index").sort_values("trade_date").itertuples():
        if row.trade_date.date() <= day:
            product *= 1 + row.index_return
    return 1000 * product


def test_a_ranged_run_draws_only_its_newest_day(
    database_url: str, csv_source: Path, market: SyntheticMarket, home: Path
):
    dominance = _write_context(csv_source, market)
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
    # The newest day's market, as the chart drew it: the index level of every stored day up to
    # it, and the dominance of the file.
    newest = metadata["2020-06-24"]
    assert newest["index_level"] == _index_level_in_python(date(2020, 6, 24))
    assert newest["btc_dominance"] == dominance[date(2020, 6, 24)]


def test_a_day_without_rankings_draws_nothing(database_url: str, csv_source: Path, home: Path):
    materialize_days("2020-03-01", "2020-03-10")  # the first 5-day returns are of 2020-03-06
    metadata = _chart_metadata(_materialize_chart("2020-03-05", "2020-03-05"))["2020-03-05"]
    assert metadata["chart"] == "_No coin is ranked on 2020-03-05: nothing to draw._"
    assert not (home / "charts" / "2020-03-05.png").exists()


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def test_the_chart_reads_90_days_of_index_levels_multiplied_from_the_first_stored_day(
    database_url: str,
):
    day = date(2021, 5, 20)
    first = day - timedelta(days=CHART_DAYS - 1)
    # A year of index days, some missing, and Bitcoin dominance from inside the window only.
    returns = {
        d: ((n * 7919) % 201 - 100) / 2000
        for n, d in enumerate(_days(day - timedelta(days=400), day + timedelta(days=3)))
        if n % 11
    }
    dominance = {d: 40 + (n % 13) / 4 for n, d in enumerate(_days(day - timedelta(days=20), day))}
    with connect() as conn:
        for d, index_return in returns.items():
            conn.execute("INSERT INTO market_index VALUES (%s, %s, 10, 1, 0.4)", [d, index_return])
        for d, share in dominance.items():
            conn.execute(
                "INSERT INTO global_metrics (trade_date, btc_dominance) VALUES (%s, %s)", [d, share]
            )

    product, levels = 1.0, {}
    for d in sorted(returns):  # the plain running product, oldest day first, times 1000
        product *= 1 + returns[d]
        levels[d] = 1000 * product
    stored = chart_inputs(day)
    index = stored["market_index_levels"]
    assert list(index["trade_date"].dt.date) == [d for d in levels if first <= d <= day]
    # exact: the view multiplies in the same order; the window cuts after the product
    assert list(index["level"]) == [levels[d] for d in levels if first <= d <= day]
    metrics = stored["global_metrics"]
    assert dict(zip(metrics["trade_date"].dt.date, metrics["btc_dominance"], strict=True)) == (
        dominance
    )
