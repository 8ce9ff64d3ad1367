"""``html:DIR``: saved coinmarketcap.com "historical data" pages (the 2017-2020 site).

Layout: ``DIR/coins.csv`` as for the csv source, and per coin ``DIR/<TICKER>.html`` and/or any
number of ``DIR/<TICKER>/*.html``. Each page holds a server-rendered table with the header
``Date | Open* | High | Low | Close** | Volume | Market Cap`` and one row per day, newest first::

    Feb 08, 2018 | 7,637.86 | 8,558.77 | 7,637.86 | 8,265.59 | 9,346,750,000 | 128,680,000,000

Numbers carry thousands separators and ``-`` marks a missing value. The pages of a coin are
merged: a day published identically on two pages counts once, a day published with different
values is kept twice so that validation rejects it as a duplicate day.
"""

from datetime import date
from pathlib import Path

import lxml.html
import pandas as pd

from coinmarket_assets.sources.base import (
    CANDLE_COLUMNS,
    CANDLE_FIELDS,
    Coin,
    MissingCandlesError,
    NoHistoricalListingsError,
    SourceError,
)
from coinmarket_assets.sources.csv_source import CsvSource

TABLE_HEADER = ["date", "open", "high", "low", "close", "volume", "market cap"]
DATE_FORMAT = "%b %d, %Y"  # Feb 08, 2018
MISSING = {"", "-"}


class HtmlSource(CsvSource):
    """Coins from ``coins.csv``, candles from saved coinmarketcap.com historical-data pages."""

    name = "html"

    def historical_listings(self, first_day: date, last_day: date, depth: int) -> pd.DataFrame:
        raise NoHistoricalListingsError(
            "html source: saved historical-data pages hold no daily listings, so "
            "COINMARKET_TICKERS=top:N cannot work with it; use csv:DIR with a listings.csv, "
            "or coinmarketcap"
        )

    def no_candles(self, coin: Coin) -> str | None:
        if coin_pages(self.directory, coin.ticker):
            return None
        return (
            f"html source: no pages for {coin.ticker}: neither "
            f"{self.directory / f'{coin.ticker}.html'} nor "
            f"{self.directory / coin.ticker}/*.html exists"
        )

    def published_candles(self, coin: Coin) -> pd.DataFrame:
        message = self.no_candles(coin)
        if message:
            raise MissingCandlesError(message, [coin])
        pages = coin_pages(self.directory, coin.ticker)
        candles = pd.concat([read_page(page, coin) for page in pages], ignore_index=True)
        return (
            candles.drop_duplicates(ignore_index=True)
            .sort_values("trade_date", kind="stable", ignore_index=True)
            .loc[:, CANDLE_COLUMNS]
        )


def coin_pages(directory: Path, ticker: str) -> list[Path]:
    """The saved pages of ``ticker``: ``<TICKER>.html`` first, then ``<TICKER>/*.html`` by name."""
    single = directory / f"{ticker}.html"
    pages = sorted(path for path in (directory / ticker).glob("*.html") if path.is_file())
    return [single, *pages] if single.is_file() else pages


def _cell_text(cell: lxml.html.HtmlElement) -> str:
    return " ".join(cell.text_content().split())


def _header_name(cell: lxml.html.HtmlElement) -> str:
    return _cell_text(cell).rstrip("*").strip().lower()


def read_page(path: Path, coin: Coin) -> pd.DataFrame:
    """The candles in the historical-data table of the page at ``path``: ``CANDLE_COLUMNS``
    with values as published text (separators removed, ``-`` as missing), in page order."""
    document = lxml.html.document_fromstring(path.read_bytes())
    table = next(
        (
            table
            for table in document.iter("table")
            if [_header_name(cell) for cell in table.xpath("(.//tr[th])[1]/th")] == TABLE_HEADER
        ),
        None,
    )
    if table is None:
        raise SourceError(
            f"{coin.ticker} ({path}): no historical-data table with the columns "
            "Date, Open*, High, Low, Close**, Volume, Market Cap"
        )
    rows = [[_cell_text(cell) for cell in row.xpath("./td")] for row in table.xpath(".//tr[td]")]
    malformed = [row for row in rows if len(row) != len(TABLE_HEADER)]
    if malformed:
        raise SourceError(
            f"{coin.ticker} ({path}): rows must have {len(TABLE_HEADER)} cells, got {malformed[:3]}"
        )
    raw = pd.DataFrame(rows, columns=["date", *CANDLE_FIELDS], dtype=object)
    days = pd.to_datetime(raw["date"], format=DATE_FORMAT, errors="coerce")
    if days.isna().any():
        bad = raw["date"][days.isna()].head(5).tolist()
        raise SourceError(f"{coin.ticker} ({path}): dates must look like Feb 08, 2018, got {bad}")
    values = raw[CANDLE_FIELDS].map(lambda text: None if text in MISSING else text.replace(",", ""))
    frame = values.assign(coin_id=coin.coin_id, ticker=coin.ticker, trade_date=days)
    return frame[CANDLE_COLUMNS]
