from datetime import date

import pytest

from coinmarket_assets.settings import DEFAULT_TICKERS, Settings, SettingsError, load_settings


def test_defaults_are_the_original_programs_values():
    settings = load_settings({})
    assert (
        settings.tickers
        == DEFAULT_TICKERS
        == ("BTC", "ETH", "XRP", "BCH", "NEO", "LTC", "ADA", "TRX")
    )
    assert settings.start_date == date(2013, 4, 27)
    assert (settings.rsi_period, settings.std_window, settings.return_days, settings.rank_size) == (
        14,
        14,
        5,
        5,
    )


def test_environment_values_are_parsed_and_tickers_normalised():
    settings = load_settings(
        {
            "COINMARKET_TICKERS": " btc, Eth ",
            "COINMARKET_START_DATE": "2020-01-01",
            "COINMARKET_RSI_PERIOD": "9",
            "COINMARKET_STD_WINDOW": "30",
            "COINMARKET_RETURN_DAYS": "7",
            "COINMARKET_RANK_SIZE": "3",
        }
    )
    assert settings == Settings(("BTC", "ETH"), date(2020, 1, 1), 9, 30, 7, 3)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("COINMARKET_RSI_PERIOD", "1", "COINMARKET_RSI_PERIOD must be between 2 and 299, not 1"),
        ("COINMARKET_STD_WINDOW", "0", "COINMARKET_STD_WINDOW must be between 2 and 300, not 0"),
        (
            "COINMARKET_RETURN_DAYS",
            "-5",
            "COINMARKET_RETURN_DAYS must be between 1 and 366, not -5",
        ),
        ("COINMARKET_RANK_SIZE", "five", "COINMARKET_RANK_SIZE must be a whole number, not 'five'"),
        ("COINMARKET_START_DATE", "27/04/2013", "COINMARKET_START_DATE must be a date like"),
        ("COINMARKET_START_DATE", "2001-01-01", "COINMARKET_START_DATE must be between 2009-01-03"),
        ("COINMARKET_TICKERS", "BTC,,ETH", "COINMARKET_TICKERS has an empty entry"),
        ("COINMARKET_TICKERS", "BTC,eth,ETH", "COINMARKET_TICKERS repeats ETH"),
        ("COINMARKET_TICKERS", "all,BTC", "COINMARKET_TICKERS=all cannot be combined"),
        ("COINMARKET_TOP_N", "0", "COINMARKET_TOP_N must be between 1 and 5000, not 0"),
        ("COINMARKET_ON_BAD_ROWS", "ignore", "COINMARKET_ON_BAD_ROWS must be fail or skip"),
    ],
)
def test_values_out_of_range_fail_naming_the_setting(name: str, value: str, message: str):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings({name: value})


def test_metadata_lists_every_value_in_force():
    assert load_settings({"COINMARKET_TICKERS": "BTC,ETH"}).as_metadata() == {
        "tickers": "BTC,ETH",
        "start_date": "2013-04-27",
        "rsi_period": 14,
        "std_window": 14,
        "return_days": 5,
        "rank_size": 5,
        "top_n": 100,
        "resync_days": 3,
        "on_bad_rows": "fail",
    }
