"""Real peers for tests and benchmarks: Java programs resolved from Maven Central and started on loopback ports.

Each peer's jars are copied once into a cache directory outside the repository (``$PYFLUME_PEER_CACHE``, default
``~/.cache/pyflume-peers``) and reused. Import as ``from peers import flume`` with ``tests/`` on ``sys.path``.
"""


def stop_group(proc, timeout: float = 30) -> None:  # noqa: ANN001 - a subprocess.Popen
    """Stop a peer started in its own process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    import os
    import signal
    import subprocess

    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
