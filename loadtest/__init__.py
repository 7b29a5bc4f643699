"""A bounded load test on loopback: `python -m loadtest` (see __main__.py)."""
