"""``DIR/global_metrics.csv`` of the csv: source: its rows as written, checked value by value;
without the file (or from saved web pages) the source has none."""

from datetime import date
from pathlib import Path

import pytest

from coinmarket_assets.sources.base import NoGlobalMetricsError, SourceError
from coinmarket_assets.sources.csv_source import CsvSource
from coinmarket_assets.sources.html_source import HtmlSource
from coinmarket_assets_tests.sources.global_metrics_reference import (
    assert_same,
    market_with_btc_and_eth,
    reference_from_file,
    reference_from_market,
)
from coinmarket_testkit.synthetic import (
    market_global_metrics,
    whole_market,
    whole_market_global_metrics,
    write_global_metrics_csv,
)

HEADER = (
    "date,total_market_cap,total_volume_24h,altcoin_market_cap,altcoin_volume_24h,"
    "btc_dominance,eth_dominance,active_cryptocurrencies,active_exchanges,active_market_pairs"
)
GOOD = "1000.5,20.25,400.5,10.0,59.95,7.5,3286,642,20456"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("global")
    market = market_with_btc_and_eth()
    market.write_coins_csv(directory)
    write_global_metrics_csv(directory, market_global_metrics(market))
    return directory


def written(tmp_path: Path, *lines: str, header: str = HEADER) -> CsvSource:
    (tmp_path / "coins.csv").write_text("coin_id,ticker,name,slug\n1,BTC,Bitcoin,bitcoin\n")
    (tmp_path / "global_metrics.csv").write_text("\n".join([header, *lines]) + "\n")
    return CsvSource(tmp_path)


def test_the_requested_days_are_read_as_written(generated: Path):
    first, last = date(2020, 2, 25), date(2020, 3, 5)
    rows = CsvSource(generated).global_metrics(first, last)
    expected = reference_from_file(generated / "global_metrics.csv", first, last)
    assert len(expected) == 10
    assert_same(rows, expected)
    assert str(rows["active_market_pairs"].dtype) == "Int64"


def test_empty_cells_are_unknown_and_columns_may_come_in_any_order(tmp_path: Path):
    header = "eth_dominance," + HEADER.replace(",eth_dominance", "") + ",note"
    source = written(tmp_path, ",2020-01-02,1.0,,,,50,,,,ignored", header=header)
    row = source.global_metrics(date(2020, 1, 1), date(2020, 1, 3)).iloc[0]
    assert row["total_market_cap"] == 1.0
    assert row["btc_dominance"] == 50.0
    assert row.drop(["trade_date", "total_market_cap", "btc_dominance"]).isna().all()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "2020-01-02,1000.5,20.25,400.5,10.0,100.01,7.5,3286,642,20456",
            "btc_dominance is above 100 % (100.01)",
        ),
        (
            "2020-01-02,1000.5,20.25,400.5,10.0,59.95,-0.5,3286,642,20456",
            "eth_dominance is negative (-0.5)",
        ),
        (
            "2020-01-02,1e3,abc,400.5,10.0,59.95,7.5,3286,642,20456",
            "total_volume_24h is not a number ('abc')",
        ),
        (
            "2020-01-02,-1,20.25,400.5,10.0,59.95,7.5,3286,642,20456",
            "total_market_cap is negative (-1.0)",
        ),
        (
            "2020-01-02,1000.5,20.25,400.5,10.0,59.95,7.5,3286.5,642,20456",
            "active_cryptocurrencies is not a whole number (3286.5)",
        ),
        (
            "2020-01-02,1000.5,20.25,400.5,inf,59.95,7.5,3286,642,20456",
            "altcoin_volume_24h is infinite",
        ),
    ],
)
def test_a_bad_value_fails_naming_day_and_field(tmp_path: Path, line: str, problem: str):
    source = written(tmp_path, f"2020-01-01,{GOOD}", line)
    with pytest.raises(SourceError) as raised:
        source.global_metrics(date(2020, 1, 1), date(2020, 1, 2))
    assert f"2020-01-02: {problem}" in str(raised.value)
    assert "global_metrics.csv" in str(raised.value)


def test_a_day_given_twice_fails_naming_it(tmp_path: Path):
    source = written(tmp_path, f"2020-01-02,{GOOD}", f"2020-01-02,{GOOD}")
    with pytest.raises(SourceError, match="2020-01-02: the day appears more than once"):
        source.global_metrics(date(2020, 1, 1), date(2020, 1, 2))


def test_a_bad_value_outside_the_requested_days_is_not_read(tmp_path: Path):
    source = written(tmp_path, f"2020-01-01,{GOOD}", "2020-01-05,-1,,,,,,,,")
    assert len(source.global_metrics(date(2020, 1, 1), date(2020, 1, 2))) == 1


def test_a_bad_date_or_a_missing_column_fails_naming_it(tmp_path: Path):
    with pytest.raises(SourceError, match=r"dates must look like 2013-04-27, got \['02/01/2020'\]"):
        written(tmp_path, f"02/01/2020,{GOOD}").global_metrics(date(2020, 1, 1), date(2020, 1, 2))
    header = HEADER.replace(",active_exchanges", "")
    with pytest.raises(SourceError, match="missing columns active_exchanges"):
        written(tmp_path, "2020-01-02", header=header).global_metrics(
            date(2020, 1, 1), date(2020, 1, 2)
        )


def test_without_the_file_or_from_web_pages_the_source_has_none(tmp_path: Path):
    (tmp_path / "coins.csv").write_text("coin_id,ticker,name,slug\n1,BTC,Bitcoin,bitcoin\n")
    with pytest.raises(NoGlobalMetricsError, match=r"global_metrics\.csv does not exist"):
        CsvSource(tmp_path).global_metrics(date(2020, 1, 1), date(2020, 1, 2))
    with pytest.raises(NoGlobalMetricsError):
        HtmlSource(tmp_path).global_metrics(date(2020, 1, 1), date(2020, 1, 2))


def test_the_whole_market_file_follows_the_servers_rule(tmp_path: Path):
    market = whole_market(40, date(2020, 1, 1), 90, seed=5, gap_share=0.1)
    write_global_metrics_csv(tmp_path, whole_market_global_metrics(market))
    first, last = date(2020, 1, 1), date(2020, 3, 30)
    expected = reference_from_market(market.to_market(), first, last)
    assert expected["btc_dominance"].notna().any()
    assert_same(reference_from_file(tmp_path / "global_metrics.csv", first, last), expected)
