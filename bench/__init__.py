"""Benchmarks of the event store against plain psycopg on PostgreSQL; run `bench/run.py`."""
