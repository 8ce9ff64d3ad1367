"""Global metrics as they should come out, in plain Python: from a generated market by the test
server's stated rule, and from a global_metrics.csv file read with the csv module."""

import csv
import math
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, default_market, random_walk

COLUMNS = [
    "trade_date",
    "total_market_cap",
    "total_volume_24h",
    "altcoin_market_cap",
    "altcoin_volume_24h",
    "btc_dominance",
    "eth_dominance",
    "active_cryptocurrencies",
    "active_exchanges",
    "active_market_pairs",
]
COUNTS = COLUMNS[-3:]


def market_with_btc_and_eth() -> SyntheticMarket:
    """The default market (2020-01-01..2020-07-18) with Bitcoin (id 1) from the start and Ether
    (id 1027) from 2020-03-01, so both dominances are known on some days and not on others."""
    market = default_market()
    market.coins.append(
        SyntheticCoin(1, "BTC", "Bitcoin", random_walk(11, date(2020, 1, 1), 200, 9000.0))
    )
    market.coins.append(
        SyntheticCoin(1027, "ETH", "Ethereum", random_walk(12, date(2020, 3, 1), 140, 200.0))
    )
    return market


def reference_from_market(market: SyntheticMarket, first: date, last: date) -> pd.DataFrame:
    """Day D: sums over the coins with a candle on D; dominance is coin 1's (1027's) share in %
    rounded to 4 decimals, unknown when it has no candle; altcoin figures are the totals less
    coin 1's; pairs sum 10 + id % 90; exchanges 400 + day of month. No coin: no row."""
    candles = {
        coin.coin_id: {
            row.date.date(): (row.market_cap, row.volume) for row in coin.candles.itertuples()
        }
        for coin in market.coins
    }
    rows = []
    day = first
    while day <= last:
        listed = {coin_id: days[day] for coin_id, days in candles.items() if day in days}
        if listed:
            rows.append(_row(day, listed))
        day += timedelta(days=1)
    return frame(rows)


def _row(day: date, listed: dict[int, tuple[float, float]]) -> dict[str, object]:
    total_cap = sum(cap for cap, _ in listed.values())
    total_volume = sum(volume for _, volume in listed.values())
    btc_cap, btc_volume = listed.get(1, (0.0, 0.0))

    def share(coin_id: int) -> float | None:
        if coin_id not in listed or total_cap <= 0:
            return None
        return round(100 * listed[coin_id][0] / total_cap, 4)

    return {
        "trade_date": pd.Timestamp(day),
        "total_market_cap": total_cap,
        "total_volume_24h": total_volume,
        "altcoin_market_cap": total_cap - btc_cap,
        "altcoin_volume_24h": total_volume - btc_volume,
        "btc_dominance": share(1),
        "eth_dominance": share(1027),
        "active_cryptocurrencies": len(listed),
        "active_exchanges": 400 + day.day,
        "active_market_pairs": sum(10 + coin_id % 90 for coin_id in listed),
    }


def reference_from_file(path: Path, first: date, last: date) -> pd.DataFrame:
    """The file's rows dated first..last, empty cells unknown."""
    rows = []
    with path.open(newline="") as file:
        for line in csv.DictReader(file):
            day = date.fromisoformat(line["date"])
            if first <= day <= last:
                values = {name: float(line[name]) if line[name] else None for name in COLUMNS[1:]}
                rows.append({"trade_date": pd.Timestamp(day), **values})
    return frame(rows)


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Rows in the table's columns, by day; unknown values NaN."""
    result = pd.DataFrame(rows, columns=COLUMNS).astype({name: "float64" for name in COLUMNS[1:]})
    return result.sort_values("trade_date", ignore_index=True)


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal values (counts compared as numbers), NaN where unknown; sums may differ in the
    last bits from the order of addition."""
    got = got[COLUMNS].astype({name: "float64" for name in COLUMNS[1:]})
    got = got.astype({"trade_date": "datetime64[ns]"}).reset_index(drop=True)
    expected = expected.astype({"trade_date": "datetime64[ns]"})
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    assert not any(math.isinf(v) for v in got[COLUMNS[1:]].to_numpy().ravel())
