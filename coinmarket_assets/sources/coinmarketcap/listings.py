"""From CoinMarketCap's answers to frames: a day's historical listing, checked and cut to depth,
and the coin map as ``currency_status`` rows."""

from datetime import date
from typing import Any

import pandas as pd

from coinmarket_assets.sources.base import (
    HISTORICAL_LISTING_COLUMNS,
    STATUS_COLUMNS,
    SourceError,
    tag_text,
)
from coinmarket_assets.sources.validation import check_listing_ranks, check_listing_values


def checked_listing(rows: list[dict[str, Any]], day: date, depth: int) -> pd.DataFrame:
    """The day's rows (named like ``historical_listings``, values as published, in any order)
    sorted by rank (ties by coin id), the ``depth`` best, checked: a bad row fails the day,
    naming coin, day and field."""
    frame = pd.DataFrame(rows, columns=HISTORICAL_LISTING_COLUMNS)
    frame["trade_date"] = pd.to_datetime(frame["trade_date"])
    where = f"CoinMarketCap's listing of {day}"
    # Every row's id and rank are checked before the cut: they decide which rows stay.
    ranked = check_listing_ranks(frame, where)
    return check_listing_values(ranked.head(depth), where).reset_index(drop=True)


def wire_tags(raw: object) -> str | None:
    """A listing entry's ``tags`` as stored (``tag_text``): both APIs send a list of slugs; an
    object with a ``slug`` (the shape of the detail endpoint's tags) counts by its slug. None
    when absent or empty."""
    if not isinstance(raw, list):
        return None
    slugs = (tag.get("slug") if isinstance(tag, dict) else tag for tag in raw)
    return tag_text([slug for slug in slugs if isinstance(slug, str)])


def no_listings() -> pd.DataFrame:
    """An empty ``HISTORICAL_LISTING_COLUMNS`` frame with the checked rows' types."""
    return checked_listing([], date.min, 1)


def map_frame(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """``STATUS_COLUMNS`` rows of the coin map's entries, one per id (an active entry wins);
    ``market_cap`` and ``last_update`` are left empty (the map has neither)."""
    frame = pd.DataFrame(
        {
            "coin_id": pd.to_numeric(pd.Series([e.get("id") for e in entries]), errors="coerce"),
            "ticker": [e.get("symbol") for e in entries],
            "coin_name": [e.get("name") for e in entries],
            "slug": [e.get("slug") for e in entries],
            "rank": pd.to_numeric(pd.Series([e.get("rank") for e in entries]), errors="coerce"),
            "is_active": pd.array([_active(e.get("is_active")) for e in entries], "boolean"),
            "first_historical_day": _days([e.get("first_historical_data") for e in entries]),
            "last_historical_day": _days([e.get("last_historical_data") for e in entries]),
        }
    )
    bad = frame["coin_id"].isna() | (frame["coin_id"] % 1 != 0)
    if bad.any():
        shown = ", ".join(f"{e.get('symbol')!r} (id {e.get('id')!r})" for e in _at(entries, bad))
        raise SourceError(f"CoinMarketCap's coin map has entries without a valid id: {shown}")
    frame = frame.sort_values(["coin_id", "is_active"], ascending=[True, False], kind="stable")
    frame = frame.drop_duplicates("coin_id", ignore_index=True)
    frame = frame.astype({"coin_id": "int64", "rank": "Int64"})
    frame["market_cap"] = float("nan")
    frame["last_update"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    frame["tags"] = None  # the map has no tags: a listing carries them
    return frame[STATUS_COLUMNS]


def _active(flag: object) -> bool | None:
    # 1 is active; 0 is inactive (dead) and untracked coins come as 0 or -1.
    if flag is None or (isinstance(flag, str) and not flag.strip()):
        return None
    try:
        return int(float(str(flag))) == 1
    except ValueError:
        return None


def _days(values: list[object]) -> pd.Series:
    """The UTC days of ISO timestamps (``2024-06-11T23:59:59.999Z``); empty when absent."""
    moments = pd.to_datetime(
        pd.Series(values, dtype="object"), utc=True, errors="coerce", format="ISO8601"
    )
    return moments.dt.tz_localize(None).dt.normalize()


def _at(entries: list[dict[str, Any]], mask: pd.Series) -> list[dict[str, Any]]:
    return [entry for entry, bad in zip(entries, mask.to_numpy(), strict=True) if bad][:5]
