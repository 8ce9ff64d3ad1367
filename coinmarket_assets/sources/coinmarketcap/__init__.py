"""The live CoinMarketCap source: the keyless data-api, or the Pro API with a key."""
