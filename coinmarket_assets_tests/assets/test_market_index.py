"""market_index end to end: a csv: source with listings.csv (tags, a tie, a missing market cap,
gaps and deaths), backfilled with ``materialize``, and checked against the plain-Python reference
computed from the files; reruns store the same bytes; the view market_index_levels.
"""

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from dagster import AssetKey, ExecuteInProcessResult

from coinmarket_assets.definitions import defs
from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.compute.test_market_index import (
    IndexRow,
    ListingRow,
    reference_index,
)
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.dagster_runs import (
    dump_table,
    materialize_days,
    materialize_unpartitioned,
)
from coinmarket_testkit.synthetic import whole_market

FIRST, DAYS = date(2022, 1, 1), 60
LAST = FIRST + timedelta(days=DAYS - 1)
COINS, FIRST_ID = 24, 700
TOP_N, INDEX_SIZE = 8, 4  # candles of every coin ranked 8 or better: the index reaches rank 6
EXCLUDE = "stablecoin,wrapped-tokens"
TAGGED_HALF = FIRST + timedelta(days=DAYS // 2)  # the wrapped coin is tagged from this day on


@dataclass(frozen=True)
class Files:
    """What the reference reads: the listing file, the published closes, each day's tags."""

    listing: dict[date, list[ListingRow]]
    closes: dict[tuple[int, date], float]
    tags: dict[tuple[date, int], set[str]]
    tie_day: date  # the listing day whose two best eligible coins have the same market cap
    no_cap_day: date  # the listing day whose best eligible coin has no market cap
    empty_day: date  # the day without a member (no market cap in the top of the day before)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _by_day(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    days: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        days.setdefault(row["date"], []).append(row)
    for day_rows in days.values():
        day_rows.sort(key=lambda row: int(row["rank"]))
    return days


def write_market(directory: Path) -> tuple[int, int]:
    """The whole market as a csv: source, its listings edited: a stablecoin (the best-ranked coin
    of the first day) tagged every day, a wrapped token tagged from TAGGED_HALF (other tags
    before), a tie, a missing market cap and a day without members. Returns the tagged coins."""
    whole_market(COINS, FIRST, DAYS, seed=21, gap_share=0.04, first_id=FIRST_ID).write_csv(
        directory
    )
    path = directory / "listings.csv"
    rows = _read_csv(path)
    days = _by_day(rows)
    first_day = days[FIRST.isoformat()]
    stable, wrapped = int(first_day[0]["coin_id"]), int(first_day[2]["coin_id"])
    for row in rows:
        coin, day = int(row["coin_id"]), date.fromisoformat(row["date"])
        row["tags"] = {
            stable: "Stablecoin;payments",
            wrapped: "defi;wrapped-tokens" if day >= TAGGED_HALF else "defi",
        }.get(coin, "")
    # Listing day 20: the second-ranked coin gets the best one's market cap (a tie); day 40:
    # the best-ranked coin has none.
    tie = days[(FIRST + timedelta(days=20)).isoformat()]
    tie[1]["market_cap"] = tie[0]["market_cap"]
    days[(FIRST + timedelta(days=40)).isoformat()][0]["market_cap"] = ""
    # Listing day 50: none of the top INDEX_SIZE has a market cap, so day 51 has no member.
    for row in days[(FIRST + timedelta(days=50)).isoformat()][:INDEX_SIZE]:
        row["market_cap"] = ""
    _write_csv(path, rows)
    return stable, wrapped


def read_files(directory: Path) -> Files:
    listing: dict[date, list[ListingRow]] = {}
    tags: dict[tuple[date, int], set[str]] = {}
    for row in _read_csv(directory / "listings.csv"):
        day, coin = date.fromisoformat(row["date"]), int(row["coin_id"])
        cap = float(row["market_cap"]) if row["market_cap"] else None
        listing.setdefault(day, []).append((coin, int(row["rank"]), cap))
        tags[(day, coin)] = {tag.lower() for tag in row["tags"].split(";") if tag}
    closes = {}
    for coin in range(FIRST_ID, FIRST_ID + COINS):
        for row in _read_csv(directory / "daily" / f"{coin}.csv"):
            closes[(coin, date.fromisoformat(row["date"]))] = float(row["close"])
    return Files(listing, closes, tags, *(FIRST + timedelta(days=n) for n in (20, 40, 51)))


def expected_index(files: Files, exclude: set[str]) -> dict[date, IndexRow]:
    excluded = {key for key, tags in files.tags.items() if tags & exclude}
    return reference_index(files.listing, files.closes, INDEX_SIZE, excluded)


# The runs, once for the module.


@dataclass(frozen=True)
class Stored:
    url: str
    files: Files
    tagged: tuple[int, int]
    backfill: ExecuteInProcessResult
    rows: dict[str, list[tuple]]  # market_index after each run, by run
    dumps: dict[str, bytes]  # market_index's bytes after each run, by run


def _index_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT trade_date, index_return, members, top_weight_coin_id, top_weight "
            "FROM market_index ORDER BY trade_date"
        ).fetchall()


@pytest.fixture(scope="module")
def stored(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stored]:
    """One backfill of listings, candles and the index; then reruns of the index alone: the
    same range, with the smallest batches, one day alone, and with COINMARKET_EXCLUDE_TAGS."""
    source = tmp_path_factory.mktemp("market_index") / "cmc"
    tagged = write_market(source)
    first, last = FIRST.isoformat(), LAST.isoformat()
    middle = (FIRST + timedelta(days=33)).isoformat()
    rows, dumps = {}, {}
    with (
        module_database(server_url, "coinmarket_market_index") as url,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(DATABASE_URL_ENV, url)
        patch.setenv("COINMARKET_SOURCE", f"csv:{source}")
        patch.setenv("COINMARKET_TICKERS", f"top:{TOP_N}")
        patch.setenv("COINMARKET_LISTING_DEPTH", str(COINS))
        patch.setenv("COINMARKET_INDEX_SIZE", str(INDEX_SIZE))
        materialize_unpartitioned(["currency_status"])
        selection = ["historical_listings", "historical_trade_data", "market_index"]
        backfill = materialize_days(first, last, selection=selection)
        runs = [
            ("backfill", {}, (first, last)),
            ("rerun", {}, (first, last)),
            ("small_batches", {"COINMARKET_BATCH_COINS": "1"}, (first, last)),
            ("one_day", {}, (middle, middle)),
            ("excluded", {"COINMARKET_EXCLUDE_TAGS": EXCLUDE}, (first, last)),
        ]
        for name, env, days in runs:
            if name != "backfill":
                with pytest.MonkeyPatch.context() as run_patch:
                    for key, value in env.items():
                        run_patch.setenv(key, value)
                    materialize_days(*days, selection=["market_index"])
            rows[name], dumps[name] = _index_rows(url), dump_table(url, "market_index")
        yield Stored(url, read_files(source), tagged, backfill, rows, dumps)


def _as_reference(rows: list[tuple]) -> dict[date, IndexRow]:
    return {day: (ret, members, top, weight) for day, ret, members, top, weight in rows}


def _assert_matches(got: dict[date, IndexRow], expected: dict[date, IndexRow]) -> None:
    assert sorted(got) == sorted(expected)
    for day, (index_return, members, top_coin, top_weight) in expected.items():
        assert got[day][1:3] == (members, top_coin), day
        assert got[day][0] == pytest.approx(index_return, rel=1e-12, abs=1e-15), day
        assert got[day][3] == pytest.approx(top_weight, rel=1e-12), day


def test_a_backfill_stores_each_days_index_as_the_reference_computes_it(stored: Stored):
    expected = expected_index(stored.files, set())
    _assert_matches(_as_reference(stored.rows["backfill"]), expected)
    # The market is varied enough for the rules to matter: days short of members (gaps,
    # deaths, the missing market cap); every day from the second on has a row but one.
    days = [FIRST + timedelta(days=n) for n in range(1, DAYS)]
    assert sorted(expected) == [day for day in days if day != stored.files.empty_day]
    assert {members for _, members, _, _ in expected.values()} >= {INDEX_SIZE, INDEX_SIZE - 1}


def test_a_tie_for_the_top_weight_goes_to_the_smaller_coin_id(stored: Stored):
    day = stored.files.tie_day
    best, second = stored.files.listing[day][:2]
    got = _as_reference(stored.rows["backfill"])[day + timedelta(days=1)]
    assert best[2] == second[2]
    assert got[2] == min(best[0], second[0])


def test_a_best_ranked_coin_without_market_cap_is_no_member_and_not_replaced(stored: Stored):
    day = stored.files.no_cap_day
    best = stored.files.listing[day][0]
    got = _as_reference(stored.rows["backfill"])[day + timedelta(days=1)]
    assert best[2] is None
    assert got[1] <= INDEX_SIZE - 1


def test_days_without_members_have_no_row_and_the_materialization_names_them(stored: Stored):
    # The first day has no listing of the day before; empty_day no member with a market cap.
    empty = [FIRST, stored.files.empty_day]
    assert not {day for day, *_ in stored.rows["backfill"]} & set(empty)
    (materialization, *_) = [
        event.materialization
        for event in stored.backfill.get_asset_materialization_events()
        if event.asset_key == AssetKey("market_index")
    ]
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["days_without_members"] == 2
    assert metadata["days_without_members_list"] == ", ".join(map(date.isoformat, empty))
    assert metadata["days_indexed"] == DAYS - 2
    assert metadata["run_rows_read_historical_listings"] > 0


def test_excluded_tags_leave_coins_out_as_listed_that_day(stored: Stored):
    expected = expected_index(stored.files, set(EXCLUDE.split(",")))
    got = _as_reference(stored.rows["excluded"])
    _assert_matches(got, expected)
    assert got != _as_reference(stored.rows["backfill"])
    # The stablecoin is never the top weight; the wrapped token only before it was tagged.
    stable, wrapped = stored.tagged
    assert stable not in {top for _, _, top, _ in got.values()}
    wrapped_tops = [day for day, (_, _, top, _) in got.items() if top == wrapped]
    assert all(day <= TAGGED_HALF for day in wrapped_tops)


def test_reruns_store_the_same_bytes_whatever_the_range_or_batch_size(stored: Stored):
    assert stored.dumps["backfill"]
    for run in ["rerun", "small_batches", "one_day"]:
        assert stored.dumps[run] == stored.dumps["backfill"], run


def test_market_index_levels_is_1000_times_the_running_product_of_the_returns(stored: Stored):
    with psycopg.connect(stored.url) as conn:
        levels = conn.execute(
            "SELECT trade_date, level FROM market_index_levels ORDER BY trade_date"
        ).fetchall()
    level, expected = 1000.0, []
    for day, index_return, *_ in stored.rows["excluded"]:
        level *= 1 + index_return
        expected.append((day, level))
    assert [day for day, _ in levels] == [day for day, _ in expected]
    for (_, got), (_, want) in zip(levels, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-12)


def test_market_index_levels_multiplies_over_stored_days_only(database_url: str):
    rows = [(date(2024, 1, 2), 0.1), (date(2024, 1, 3), -0.5), (date(2024, 1, 7), 0.2)]
    with psycopg.connect(database_url) as conn:
        for day, index_return in rows:
            conn.execute("INSERT INTO market_index VALUES (%s, %s, 1, 1, 1.0)", [day, index_return])
        levels = conn.execute(
            "SELECT trade_date, level FROM market_index_levels ORDER BY trade_date"
        ).fetchall()
    assert [day for day, _ in levels] == [day for day, _ in rows]
    assert [level for _, level in levels] == pytest.approx([1100.0, 550.0, 660.0], rel=1e-15)
    assert math.isclose(levels[-1][1], 1000 * 1.1 * 0.5 * 1.2, rel_tol=1e-15)


def test_day_d_reads_the_listing_of_d_minus_1_and_the_candles_of_d_minus_1_and_d():
    node = defs.resolve_asset_graph().get(AssetKey("market_index"))
    partitions = node.partitions_def
    days = partitions.subset_with_partition_keys(["2024-03-10", "2024-03-11"])
    expected = {
        "historical_listings": ["2024-03-09", "2024-03-10"],
        "historical_trade_data": ["2024-03-09", "2024-03-10", "2024-03-11"],
    }
    for upstream, keys in expected.items():
        mapping = node.assets_def.get_partition_mapping(AssetKey(upstream))
        mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
            days, partitions, partitions
        ).partitions_subset
        assert sorted(mapped.get_partition_keys()) == keys, upstream
