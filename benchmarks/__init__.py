"""Performance benchmarks of the pipeline: ``python -m benchmarks`` (``make bench``).

Each target of the performance issue is one module; every figure is a ratio or a count measured
against its baseline in the same run, on the embedded PostgreSQL and deterministic generated
markets (with the real CoinMarketCap price paths of ``../shared/data/cmc`` when present).
"""
