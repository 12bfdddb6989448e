"""Real peers for tests and benchmarks: Java programs resolved from Maven Central and started on loopback ports.

Each peer's jars are copied once into a cache directory outside the repository (``$PYFLUME_PEER_CACHE``, default
``~/.cache/pyflume-peers``) and reused. Import as ``from peers import flume`` with ``tests/`` on ``sys.path``.
"""
