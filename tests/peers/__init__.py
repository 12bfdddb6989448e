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


def listening(port: int, timeout: float = 0.5, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port``.

    A connection to a loopback port nobody listens on can still succeed: when the kernel happens to pick that same
    port as the connection's own source port, the SYN meets itself (a TCP "simultaneous open") and the socket is
    connected to itself. Test ports come from the ephemeral range, so a poll loop that retries many times while a
    peer starts can hit this; such a connection is not a listener, and is reported as not listening."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            return s.getsockname() != s.getpeername()
    except OSError:
        return False
