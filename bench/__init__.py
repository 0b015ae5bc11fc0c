"""Benchmarks: ``python -m bench --write docs/benchmarks.md`` runs every module here."""
