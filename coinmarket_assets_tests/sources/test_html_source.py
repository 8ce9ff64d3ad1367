from datetime import date
from pathlib import Path

import lxml.html
import pandas as pd
import pytest

from coinmarket_assets.sources import SourceError, resolve_universe
from coinmarket_assets.sources.html_source import HtmlSource, coin_pages
from coinmarket_assets.sources.validation import InvalidCandlesError
from coinmarket_testkit.synthetic import FIELDS, SyntheticMarket
from coinmarket_testkit.synthetic_html import (
    OVERLAP_DAYS,
    format_amount,
    format_price,
    published_market,
    write_html_source,
)

FIRST, LAST = date(2020, 1, 1), date(2020, 12, 31)


@pytest.fixture
def html_dir(tmp_path: Path, market: SyntheticMarket) -> Path:
    directory = tmp_path / "pages"
    write_html_source(directory, market)
    return directory


def _candles(directory: Path, *tickers: str, first: date = FIRST, last: date = LAST):
    source = HtmlSource(directory)
    coins = resolve_universe(source.listing(), list(tickers))
    return source.checked_candles(coins, first, last).candles


def _edit_cell(page: Path, day: str, column: int, text: str) -> None:
    """Replace the text of cell ``column`` (0 = Date) of the row of ``day`` on ``page``."""
    document = lxml.html.document_fromstring(page.read_bytes())
    (row,) = document.xpath(f'//tr[normalize-space(td[1]) = "{day}"]')
    row.xpath("./td")[column].text = text
    page.write_bytes(lxml.html.tostring(document, doctype="<!DOCTYPE html>"))


def _pages_with(directory: Path, ticker: str, day: str) -> list[Path]:
    return [page for page in coin_pages(directory, ticker) if f">{day}</td>" in page.read_text()]


def test_site_number_formats():
    assert format_price(8265.594) == "8,265.59"
    assert format_price(0.7248264) == "0.724826"
    assert format_price(0.000098123449) == "0.0000981234"
    assert format_amount(5_000_150_000.4) == "5,000,150,000"
    assert format_amount(0.0) == "0"


def test_candles_are_the_published_values(html_dir: Path, market: SyntheticMarket):
    candles = _candles(html_dir, *market.tickers)
    expected = published_market(market).candles()
    expected = expected.sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(candles, expected, check_exact=True, check_dtype=False)
    assert (candles["volume"] == 0).sum() == 21
    assert (candles["market_cap"] == 0).sum() == 6
    delta = candles[candles["ticker"] == "DELTA"]
    assert delta["close"].max() < 1e-3 and (delta["close"] > 0).all()
    # The visible text counts, not the unrounded data-format-value next to it.
    assert not (candles["close"].to_numpy() == market.candles()["close"].to_numpy()).all()


def test_values_are_published_text_without_separators(html_dir: Path, market: SyntheticMarket):
    source = HtmlSource(html_dir)
    (alpha,) = resolve_universe(source.listing(), ["ALPHA"])
    published = source.published_candles(alpha)
    first = market.coin("ALPHA").candles.iloc[0]
    assert published.loc[0, "close"] == format_price(first["close"]).replace(",", "")
    assert published.loc[0, "market_cap"] == format_amount(first["market_cap"]).replace(",", "")
    assert published["trade_date"].is_monotonic_increasing


def test_several_pages_of_a_coin_are_merged(html_dir: Path, market: SyntheticMarket):
    assert len(coin_pages(html_dir, "GAMMA")) == 3  # GAMMA.html and GAMMA/*.html
    assert len(_pages_with(html_dir, "GAMMA", "Mar 05, 2020")) == 2  # an overlapping day
    source = HtmlSource(html_dir)
    coins = resolve_universe(source.listing(), ["GAMMA"])
    published = source.published_candles(coins[0])
    assert published["trade_date"].is_unique and published["trade_date"].is_monotonic_increasing
    assert len(published) == len(market.coin("GAMMA").candles)


def test_pages_only_in_the_coin_folder_are_read(html_dir: Path, market: SyntheticMarket):
    (html_dir / "BETA.html").rename(html_dir / "BETA" / "newest.html")
    candles = _candles(html_dir, "BETA")
    assert len(candles) == len(market.coin("BETA").candles)


@pytest.mark.parametrize(("column", "field"), [(4, "close"), (5, "volume"), (6, "market_cap")])
def test_a_dash_is_a_missing_value(html_dir: Path, column: int, field: str):
    for page in _pages_with(html_dir, "BETA", "Feb 03, 2020"):
        _edit_cell(page, "Feb 03, 2020", column, " - ")
    source = HtmlSource(html_dir)
    coins = resolve_universe(source.listing(), ["ALPHA", "BETA"])
    published = source.published_candles(coins[1]).set_index("trade_date")
    assert pd.isna(published.at[pd.Timestamp("2020-02-03"), field])
    with pytest.raises(InvalidCandlesError) as error:
        source.checked_candles(coins, date(2020, 2, 1), date(2020, 2, 5))
    assert f"BETA 2020-02-03: {field} is missing" in str(error.value)
    assert len(_candles(html_dir, "BETA", first=date(2020, 2, 4), last=date(2020, 2, 9))) == 6


def test_a_day_published_differently_on_two_pages_fails(html_dir: Path):
    assert OVERLAP_DAYS > 0
    pages = _pages_with(html_dir, "BETA", "Apr 08, 2020")
    assert len(pages) == 2
    _edit_cell(pages[1], "Apr 08, 2020", 2, "999.99")
    with pytest.raises(
        InvalidCandlesError, match="BETA 2020-04-08: trade_date appears more than once"
    ):
        _candles(html_dir, "BETA")


def test_a_page_without_the_table_fails_naming_coin_and_file(html_dir: Path):
    page = html_dir / "GAMMA" / "20200101_20200307.html"
    page.write_text(
        "<html><head><title>Access denied | CoinMarketCap</title></head><body>"
        "<table class='table'><tr><th>Date</th><th>Open</th><th>Close</th></tr>"
        "<tr><td>Feb 08, 2018</td><td>1.00</td><td>1.01</td></tr></table></body></html>"
    )
    with pytest.raises(SourceError, match=r"GAMMA \(.*20200101_20200307\.html\): no historical"):
        _candles(html_dir, "GAMMA")


def test_a_coin_without_pages_fails(html_dir: Path):
    (html_dir / "ALPHA.html").unlink()
    with pytest.raises(SourceError, match=r"no pages for ALPHA: neither .*ALPHA\.html nor"):
        _candles(html_dir, "ALPHA")


def test_unparseable_dates_fail_naming_coin_and_file(html_dir: Path):
    _edit_cell(html_dir / "DELTA.html", "Jan 05, 2020", 0, "2020-01-05")
    with pytest.raises(
        SourceError, match=r"DELTA \(.*DELTA\.html\): dates must look like .*\['2020-01-05'\]"
    ):
        _candles(html_dir, "DELTA")


def test_a_saved_page_is_read_as_its_utc_days(tmp_path: Path):
    """A hand-written page: nested header markup, other tables, two rows newest first."""
    (tmp_path / "coins.csv").write_text("coin_id,ticker,name,slug\n1,BTC,Bitcoin,bitcoin\n")
    (tmp_path / "BTC.html").write_text(
        """<html><body><table><tr><th>Rank</th><th>Name</th></tr><tr><td>1</td><td>BTC</td></tr>
        </table><div class="table-responsive"><table class="table"><thead><tr>
        <th> <div>Date</div> </th><th>Open *</th><th>High</th><th>Low</th>
        <th><span>Close</span>**</th><th>Volume</th><th>Market Cap</th></tr></thead><tbody>
        <tr><td>Feb 08, 2018</td><td>7,637.86</td><td>8,558.77</td><td>7,637.86</td>
            <td>8,265.59</td><td>9,346,750,000</td><td>128,680,000,000</td></tr>
        <tr><td>Feb 07, 2018</td><td>7,755.49</td><td>8,509.11</td><td>7,236.79</td>
            <td>7,621.30</td><td>9,169,280,000</td><td>130,658,000,000</td></tr>
        </tbody></table></div></body></html>"""
    )
    source = HtmlSource(tmp_path)
    coins = resolve_universe(source.listing(), ["BTC"])
    published = source.published_candles(coins[0])
    assert list(published["trade_date"]) == [pd.Timestamp("2018-02-07"), pd.Timestamp("2018-02-08")]
    assert list(published.loc[1, FIELDS]) == [
        "7637.86",
        "8558.77",
        "7637.86",
        "8265.59",
        "9346750000",
        "128680000000",
    ]
    candles = source.checked_candles(coins, date(2018, 2, 8), date(2018, 2, 8)).candles
    assert candles.loc[0, "close"] == 8265.59 and candles.loc[0, "volume"] == 9_346_750_000
    status = source.coin_status(coins)
    assert status.loc[0, "last_update"] == pd.Timestamp("2018-02-09", tz="UTC")
    assert status.loc[0, "market_cap"] == 128_680_000_000
