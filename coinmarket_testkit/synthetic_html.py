"""A ``SyntheticMarket`` saved as coinmarketcap.com "historical data" pages of 2017-2020.

Values are rendered as the site did: prices with thousands separators and 2 decimals from 1 up,
6 significant digits below 1; volume and market cap as whole numbers with separators. The
``data-format-value`` attributes carry the unrounded number, as on the site; the visible text is
what is published, so ``published_market`` holds the exact floats of that text.
"""

from dataclasses import replace
from html import escape
from math import floor, log10
from pathlib import Path

import pandas as pd

from coinmarket_testkit.synthetic import FIELDS, SyntheticCoin, SyntheticMarket

PRICE_FIELDS = ["open", "high", "low", "close"]
HEADER = ["Date", "Open*", "High", "Low", "Close**", "Volume", "Market Cap"]
DATE_FORMAT = "%b %d, %Y"  # Feb 08, 2018
OVERLAP_DAYS = 5  # consecutive pages of a coin share this many days
DEFAULT_PAGES = {"BETA": 2, "GAMMA": 3}  # the other coins get a single page


def format_price(value: float) -> str:
    """``8,265.59`` from 1 up, 6 significant digits below: ``0.724826``, ``0.0000981234``."""
    decimals = 2 if value >= 1 or value == 0 else max(6, 5 - floor(log10(value)))
    return f"{value:,.{decimals}f}"


def format_amount(value: float) -> str:
    """Volume and market cap: ``5,000,150,000``."""
    return f"{value:,.0f}"


def formatted(field: str, value: float) -> str:
    return format_price(value) if field in PRICE_FIELDS else format_amount(value)


def published_value(text: str) -> float:
    """The number a rendered cell stands for."""
    return float(text.replace(",", ""))


def published_market(market: SyntheticMarket) -> SyntheticMarket:
    """``market`` with every value replaced by the exact float of its rendered text."""
    coins = []
    for coin in market.coins:
        candles = coin.candles.copy()
        for field in FIELDS:
            candles[field] = [published_value(formatted(field, v)) for v in candles[field]]
        coins.append(replace(coin, candles=candles))
    return SyntheticMarket(coins)


def _row(day: pd.Timestamp, values: pd.Series) -> str:
    cells = [f'<td class="text-left">{day.strftime(DATE_FORMAT)}</td>']
    for field in FIELDS:
        kind = "fiat" if field in PRICE_FIELDS else "market-cap"
        cells.append(
            f'<td data-format-{kind} data-format-value="{float(values[field])!r}">'
            f"{formatted(field, values[field])}</td>"
        )
    return '<tr class="text-right">\n  ' + "\n  ".join(cells) + "\n</tr>"


def page_html(coin: SyntheticCoin, candles: pd.DataFrame) -> str:
    """A historical-data page of ``coin`` showing ``candles`` (date + FIELDS), newest first."""
    name = escape(coin.name)
    newest = candles.sort_values("date", ascending=False)
    rows = "\n".join(_row(row["date"], row) for _, row in newest.iterrows())
    header = "\n".join(
        f'<th class="text-{"left" if title == "Date" else "right"}">\n  {title}\n</th>'
        for title in HEADER
    )
    price, cap = format_price(newest["close"].iloc[0]), format_amount(newest["market_cap"].iloc[0])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{name} ({coin.ticker}) historical data | CoinMarketCap</title>
<link rel="stylesheet" href="https://s2.coinmarketcap.com/static/cloud/css/main.css">
<script>window.currency = "USD"; var rows = "<table><tr><th>Date</th></tr></table>";</script>
</head>
<body id="currencies">
<div class="container">
<nav class="navbar"><ul><li><a href="/">Cryptocurrencies</a></li><li><a href="/exchanges/">
Exchanges</a></li><li><a href="/watchlist/">Watchlist</a></li></ul></nav>
<div class="details-panel">
<h1 class="details-panel-item--name">{name}
<span class="text-bold h3 text-gray hidden-xs">({coin.ticker})</span></h1>
<span class="h2 text-semi-bold details-panel-item--price__value" data-currency-value>{price}</span>
<span class="text-large">USD</span>
</div>
<div class="coin-summary-item">
<table class="table coin-summary">
<tr><th>Market Cap</th><td>{cap} USD</td></tr>
<tr><th>Circulating Supply</th><td>1,000,000 {coin.ticker}</td></tr>
</table>
</div>
<ul class="nav nav-tabs details-panel-item--nav" role="tablist">
<li><a href="#charts">Charts</a></li><li><a href="#markets">Markets</a></li>
<li class="active"><a href="#historical-data">Historical Data</a></li>
</ul>
<div class="tab-content">
<div class="tab-pane active" id="historical-data">
<div class="row"><div class="col-xs-6"><h2 class="h3">Historical data for {name}</h2></div>
<div id="reportrange" class="pull-right"><span>Currency in USD</span></div></div>
<div class="table-responsive">
<table class="table">
<thead>
<tr>
{header}
</tr>
</thead>
<tbody>
{rows}
</tbody>
</table>
</div>
<p class="small">* Open price of the day, ** Close price of the day (UTC).</p>
</div>
</div>
<footer><p>&copy; 2018 CoinMarketCap. All rights reserved</p></footer>
</div>
</body>
</html>
"""


def page_chunks(candles: pd.DataFrame, pages: int) -> list[pd.DataFrame]:
    """``candles`` cut into ``pages`` date ranges, newest first, each sharing OVERLAP_DAYS
    with the next."""
    size = -(-len(candles) // pages)
    ranges = [(max(0, i * size - OVERLAP_DAYS), (i + 1) * size) for i in range(pages)]
    return [candles.iloc[start:stop] for start, stop in reversed(ranges)]


def write_html_source(
    directory: Path, market: SyntheticMarket, pages: dict[str, int] | None = None
) -> None:
    """``directory/coins.csv`` and the coins' pages: ``<TICKER>.html`` holds the newest candles,
    the older ones of a coin with several pages go to ``<TICKER>/<first>_<last>.html``."""
    pages = DEFAULT_PAGES if pages is None else pages
    directory.mkdir(parents=True, exist_ok=True)
    market.write_coins_csv(directory)
    for coin in market.coins:
        newest, *older = page_chunks(coin.candles, pages.get(coin.ticker, 1))
        (directory / f"{coin.ticker}.html").write_text(page_html(coin, newest))
        for chunk in older:
            folder = directory / coin.ticker
            folder.mkdir(exist_ok=True)
            days = chunk["date"]
            name = f"{days.min():%Y%m%d}_{days.max():%Y%m%d}.html"
            (folder / name).write_text(page_html(coin, chunk))
