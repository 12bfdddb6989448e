"""Real peers for tests and benchmarks: Java programs resolved from Maven Central and started on loopback ports.

Each peer's jars are copied once into a cache directory outside the repository (``$PYFLUME_PEER_CACHE``, default
``~/.cache/pyflume-peers``) and reused. Import as ``from peers import flume`` with ``tests/`` on ``sys.path``.
"""


#: where :func:`free_port` hands ports out: below Linux's ephemeral range (``ip_local_port_range``, 32768-60999 by
#: default), from which the kernel picks every ``bind(0)`` and ``connect()`` port. A port taken from that range
#: and given to an agent a moment later can meanwhile be picked by another process (a Java peer's own listener,
#: a client's source port); one below it is only taken by a process that asks for it by number.
PORT_RANGE = (20000, 32768)
_next_port = [0]


def free_port(udp: bool = False) -> int:
    """A loopback port nothing is bound to now (for TCP, and for UDP too when ``udp``), each call a different one
    until the range wraps around."""
    import os
    import random
    import socket

    low, high = PORT_RANGE
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    if not _next_port[0]:  # each process starts at its own place, so two test runs side by side rarely meet
        _next_port[0] = random.Random(os.getpid()).randrange(low, high)
    for _ in range(high - low):
        port = _next_port[0]
        _next_port[0] = port + 1 if port + 1 < high else low
        try:
            for kind in kinds:
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise OSError(f"no free loopback port in {low}-{high - 1}")


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

    A connection to a loopback port in the ephemeral range that nobody listens on can still succeed: when the
    kernel picks that same port as the connection's own source port, the SYN meets itself (a TCP "simultaneous
    open") and the socket is connected to itself. That is not a listener, and is reported as not listening."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            return s.getsockname() != s.getpeername()
    except OSError:
        return False
