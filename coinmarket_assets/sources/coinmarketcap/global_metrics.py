"""The whole market's daily figures from the data-api's
``/v3/global-metrics/quotes/historical`` (``convertId=2781``, USD; ``interval=1d``).

Which quote is a day's value: the quote stamped D 00:00 UTC is the market as it stood at the end
of D - 1 (in CoinMarketCap's answers Bitcoin's supply in it is the supply after D - 1's candle,
see docs/sources.md). So the row of day D is the quote stamped D + 1 00:00, and the quotes of
first_day..last_day are those stamped first_day + 1 .. last_day + 1. A quote stamped at another
time than midnight is not a day's end and is left out. CoinMarketCap sends a dominance of 0 where
it has none (Ether's, in 2020): stored as NULL.
"""

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from dagster import get_dagster_logger

from coinmarket_assets.sources.base import SourceError
from coinmarket_assets.sources.coinmarketcap.client import ApiClient
from coinmarket_assets.sources.coinmarketcap.data_api import USD_ID, PageCount
from coinmarket_assets.sources.global_metrics import (
    DOMINANCE_FIELDS,
    METRIC_FIELDS,
    checked_global_metrics,
)

log = get_dagster_logger(__name__)

PATH = "/v3/global-metrics/quotes/historical"
ONE_DAY = timedelta(days=1)
# Days asked per call: crypto2 asks for up to 2200; an answer that stops short is paged on.
PAGE_DAYS = 2000
# The figures outside the quote, and those inside it (in the ``convertId`` currency).
MARKET_NAMES = {
    "btc_dominance": "btcDominance",
    "eth_dominance": "ethDominance",
    "active_cryptocurrencies": "activeCryptocurrencies",
    "active_exchanges": "activeExchanges",
    "active_market_pairs": "activeMarketPairs",
}
QUOTE_NAMES = {
    "total_market_cap": "totalMarketCap",
    "total_volume_24h": "totalVolume24H",
    "altcoin_market_cap": "altcoinMarketCap",
    "altcoin_volume_24h": "altcoinVolume24H",
}


def fetch_global_metrics(client: ApiClient, first_day: date, last_day: date) -> pd.DataFrame:
    """The checked rows of first_day..last_day that CoinMarketCap has published (a day whose
    quote is not out yet has none). Raises ``SourceError`` naming the days."""
    started = time.perf_counter()
    pages = PageCount()
    try:
        quotes = fetch_quotes(client, first_day + ONE_DAY, last_day + ONE_DAY, pages)
        rows = global_rows(quotes, first_day, last_day)
    except SourceError as error:
        where = f"CoinMarketCap's global metrics of {first_day}..{last_day}"
        raise SourceError(f"{where}: {error}") from error
    log.info(
        "event=global_metrics_fetched first_day=%s last_day=%s days=%d quotes=%d pages=%d "
        "seconds=%.3f",
        first_day,
        last_day,
        len(rows),
        len(quotes),
        pages.calls,
        time.perf_counter() - started,
    )
    return rows


def fetch_quotes(
    client: ApiClient, first_stamp: date, last_stamp: date, pages: PageCount
) -> list[dict[str, Any]]:
    """The daily quotes stamped first_stamp..last_stamp (00:00 UTC, both included), asked
    newest first in windows of ``PAGE_DAYS``; an answer that stops short of its window's start
    is continued before its oldest quote, so a cap on quotes per answer loses nothing."""
    url = f"{client.settings.data_api_url}{PATH}"
    quotes: list[dict[str, Any]] = []
    cursor = last_stamp
    while cursor >= first_stamp:
        start = max(first_stamp, cursor - timedelta(days=PAGE_DAYS - 1))
        params = {
            "convertId": USD_ID,
            "interval": "1d",
            "timeStart": _unix(start),
            "timeEnd": _unix(cursor),
        }
        data = client.get_json(url, params)["data"]
        pages.calls += 1
        page = (data.get("quotes") if isinstance(data, dict) else None) or []
        quotes.extend(page)
        stamps = [s.date() for s in map(_moment, page) if s is not None]
        oldest = min(stamps, default=None)
        # The cursor moves back at every call, whatever the answer holds: the loop ends.
        if oldest is not None and start < oldest <= cursor:
            cursor = oldest - timedelta(days=1)
        else:
            cursor = start - timedelta(days=1)
    return quotes


def global_rows(
    quotes: list[dict[str, Any]], first_day: date, last_day: date, convert_id: int = USD_ID
) -> pd.DataFrame:
    """Checked ``GLOBAL_METRIC_COLUMNS`` rows: each quote stamped D + 1 00:00 UTC is the row of
    D, kept when D is within first_day..last_day; identical repeats of a quote count once."""
    rows = []
    for quote in quotes:
        moment = _moment(quote)
        if moment is None:
            raise SourceError(f"a global metrics quote has no valid timestamp ({quote!r:.120})")
        day = moment.date() - timedelta(days=1)
        if moment != datetime.combine(moment.date(), datetime.min.time(), UTC):
            continue  # not a day's end (an intraday quote of the current day)
        if first_day <= day <= last_day:
            rows.append({"trade_date": pd.Timestamp(day), **_figures(quote, convert_id)})
    frame = pd.DataFrame(rows, columns=["trade_date", *METRIC_FIELDS])
    frame = frame.astype({"trade_date": "datetime64[us]"}).drop_duplicates(ignore_index=True)
    return checked_global_metrics(frame, "CoinMarketCap's answer")


def _figures(quote: dict[str, Any], convert_id: int) -> dict[str, Any]:
    inner = quote.get("quote") or [{}]
    if isinstance(inner, dict):
        inner = [inner]
    named = [q for q in inner if str(q.get("name")) in (str(convert_id), "USD")]
    if not named:  # another currency's figures stored as USD would be wrong by a factor
        names = [q.get("name") for q in inner]
        raise SourceError(f"a global metrics quote has no figures in {convert_id} (has {names})")
    values = named[0]
    figures = {name: quote.get(api) for name, api in MARKET_NAMES.items()}
    figures |= {name: values.get(api) for name, api in QUOTE_NAMES.items()}
    for name in DOMINANCE_FIELDS:
        if figures[name] in (0, "0"):
            figures[name] = None  # CoinMarketCap's way of saying it has no figure
    return figures


def _moment(quote: dict[str, Any]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(quote.get("timestamp")).replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _unix(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
