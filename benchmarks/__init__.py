"""Measurement scripts (not imported by symglep): ``python -m benchmarks`` runs benchmarks/run.py."""
