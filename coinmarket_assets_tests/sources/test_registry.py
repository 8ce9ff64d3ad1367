from pathlib import Path

import pytest

from coinmarket_assets.sources import SourceError, open_source
from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource
from coinmarket_assets.sources.csv_source import CsvSource
from coinmarket_assets.sources.html_source import HtmlSource


def test_each_spec_opens_its_source(csv_source: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_CMC_BASE_URL", "http://127.0.0.1:9/data-api")
    live = open_source("coinmarketcap")
    assert isinstance(live, CoinMarketCapSource)
    assert live.client.settings.data_api_url == "http://127.0.0.1:9/data-api"
    assert type(open_source(f"csv:{csv_source}")) is CsvSource
    assert type(open_source(f"html:{csv_source}")) is HtmlSource


@pytest.mark.parametrize("spec", ["csv:", "ftp:/data", "csv", "html:", "coinmarketcap:x"])
def test_malformed_specs_are_rejected(spec: str):
    with pytest.raises(SourceError, match="is not a known source"):
        open_source(spec)


def test_a_directory_without_coins_csv_is_rejected(tmp_path: Path):
    with pytest.raises(SourceError, match=r"csv source: .*coins\.csv does not exist"):
        open_source(f"csv:{tmp_path}")
    with pytest.raises(SourceError, match=r"html source: .*coins\.csv does not exist"):
        open_source(f"html:{tmp_path}")
