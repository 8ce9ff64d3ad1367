import pytest

from coinmarket_assets.sources import SourceError, open_source


def test_the_default_live_source_explains_it_is_not_available_yet():
    with pytest.raises(
        SourceError, match=r"COINMARKET_SOURCE=coinmarketcap .* Set COINMARKET_SOURCE=csv:DIR"
    ):
        open_source("coinmarketcap")


@pytest.mark.parametrize("spec", ["csv:", "ftp:/data", "csv"])
def test_malformed_specs_are_rejected(spec: str):
    with pytest.raises(SourceError, match="is not a known source"):
        open_source(spec)


def test_a_csv_directory_without_coins_csv_is_rejected(tmp_path):
    with pytest.raises(SourceError, match=r"coins\.csv does not exist"):
        open_source(f"csv:{tmp_path}")
