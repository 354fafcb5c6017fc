"""Cinema benchmark harness (not a distribution; run ``python benchmarks/run.py``)."""
