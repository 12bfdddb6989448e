"""Benchmarks: pyflume against Apache Flume 1.11 on the same machine, same properties files, same data.

Run ``python -m bench`` (``--quick`` for a short pass); results go to bench/RESULTS.md.
"""
