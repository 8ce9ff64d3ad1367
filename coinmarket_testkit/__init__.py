"""Test doubles shared by the tests and the benchmarks, never imported by ``coinmarket_assets``.

``synthetic`` and ``synthetic_html`` generate deterministic markets (csv: and html: sources);
``server.FakeCoinMarketCap`` serves one over loopback as CoinMarketCap's data-api and Pro API:
``market`` holds its state, ``faults`` its transport faults, ``data_api`` and ``pro_api`` the
two APIs' payloads, ``wire`` what they share on the wire.
"""
