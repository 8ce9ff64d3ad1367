"""What both fake APIs share on the wire: answers, ``status`` objects, query parameters, times."""

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from coinmarket_testkit.market import Coin, FakeMarket, MapEntry

Json = dict[str, Any]
Headers = tuple[tuple[str, str], ...]
T = TypeVar("T")


@dataclass(frozen=True)
class Response:
    """An HTTP answer; ``truncate`` sends half the body under the full Content-Length."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: Headers = ()
    truncate: bool = False


class BadParameter(ValueError):
    """A query parameter the API would reject; the message names it."""

    def __init__(self, name: str) -> None:
        super().__init__(f'Invalid value for "{name}"')


def status(code: str = "0", message: str | None = "SUCCESS", pro: bool = False) -> Json:
    """A ``status`` object: string codes in the data-api, integer codes in the Pro API."""
    now = iso_time(datetime.now(UTC))
    if pro:
        ok = code == "0"
        return {
            "timestamp": now,
            "error_code": int(code) if code.isdigit() else code,
            "error_message": None if ok else message,
            "elapsed": 1,
            "credit_count": 1 if ok else 0,
            "notice": None,
        }
    return {
        "timestamp": now,
        "error_code": code,
        "error_message": message,
        "elapsed": "1",
        "credit_count": 0,
    }


def json_response(status_code: int, payload: Json, headers: Headers = ()) -> Response:
    return Response(status_code, json.dumps(payload).encode(), headers=headers)


def not_found(pro: bool) -> Response:
    """The answer to a path neither API has."""
    return json_response(404, {"status": status("404", "Not Found", pro)})


# -- answers both APIs give alike ----------------------------------------------------------------

LISTING_STATUSES = ("active", "inactive", "untracked")


def coin_map(market: FakeMarket, query: dict[str, str], default_limit: int) -> list[Json]:
    """One page of the coin map by id: the coins of ``listing_status`` (comma-separated,
    default active; the fake has no untracked coins), only those of ``symbol`` when given."""
    statuses = query.get("listing_status", "active").split(",")
    if not statuses or any(s not in LISTING_STATUSES for s in statuses):
        raise BadParameter("listing_status")
    symbols = {s for s in query.get("symbol", "").split(",") if s}
    entries = [
        map_entry(entry)
        for entry in market.coin_map()
        if ("active" if entry.active else "inactive") in statuses
        and (not symbols or entry.coin.ticker in symbols)
    ]
    return page(entries, query, default_limit)


def map_entry(entry: MapEntry) -> Json:
    return {
        "id": entry.coin.coin_id,
        "rank": entry.rank,
        "name": entry.coin.name,
        "symbol": entry.coin.ticker,
        "slug": entry.coin.slug,
        "is_active": int(entry.active),
        "first_historical_data": open_iso(entry.first_day) if entry.first_day else None,
        "last_historical_data": close_iso(entry.last_day) if entry.last_day else None,
        "platform": None,
    }


def shuffled(items: list[T], seed: str) -> list[T]:
    """``items`` in an order that is arbitrary but the same for the same ``seed``: the real
    historical listings do not reliably come in the order asked for."""
    order = list(items)
    random.Random(seed).shuffle(order)
    return order


# -- query parameters ---------------------------------------------------------------------------


def requested_coin(market: FakeMarket, query: dict[str, str]) -> Coin:
    """The listed coin named by the ``id`` parameter."""
    coin = market.listed(int_param(query, "id", -1))
    if coin is None:
        raise BadParameter("id")
    return coin


def page(items: list[T], query: dict[str, str], default_limit: int = 100) -> list[T]:
    """The 1-based ``start``/``limit`` page of ``items``."""
    start = int_param(query, "start", 1)
    limit = int_param(query, "limit", default_limit)
    if start < 1:
        raise BadParameter("start")
    if limit < 1:
        raise BadParameter("limit")
    return items[start - 1 : start - 1 + limit]


def int_param(query: dict[str, str], name: str, default: int) -> int:
    if name not in query:
        return default
    try:
        return int(float(query[name]))
    except ValueError:
        raise BadParameter(name) from None


def day_param(query: dict[str, str], name: str) -> date:
    """A required ``YYYY-MM-DD`` parameter."""
    try:
        return date.fromisoformat(query[name])
    except (KeyError, ValueError):
        raise BadParameter(name) from None


def time_param(query: dict[str, str], name: str) -> int | None:
    """Unix seconds of an ISO date/datetime or unix-seconds parameter (naive means UTC)."""
    value = query.get(name)
    if not value:
        return None
    try:
        return int(float(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(name) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


# -- times --------------------------------------------------------------------------------------


def utc_day(unix_seconds: int) -> date:
    return datetime.fromtimestamp(unix_seconds, UTC).date()


def unix(day: date) -> int:
    """Unix seconds of the day's UTC midnight."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def iso_time(moment: datetime) -> str:
    """``2020-01-08T12:34:56.789Z``: milliseconds and a Z, as both APIs write times."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def at(day: date, hour: int) -> str:
    return f"{day:%Y-%m-%d}T{hour:02d}:00:00.000Z"


def open_iso(day: date | None) -> str:
    """The start of ``day`` (today when None)."""
    return at(day or datetime.now(UTC).date(), 0)


def close_iso(day: date | None) -> str:
    """The last millisecond of ``day`` (today when None)."""
    return f"{day or datetime.now(UTC).date():%Y-%m-%d}T23:59:59.999Z"
