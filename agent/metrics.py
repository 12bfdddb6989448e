"""Flume's counters under Flume's names, served as Flume's JSON (``/metrics``) and as Prometheus text.

Each counter name is defined once, here. Components bump plain integer attributes once per batch; the HTTP
server renders them the way Flume's HTTPMetricsServer does: one object per component keyed ``TYPE.name``, every
value a string.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["SourceCounter", "ChannelCounter", "SinkCounter", "MetricsServer", "render_json", "render_prometheus"]

log = logging.getLogger("pyflume.metrics")


class _Counter:
    """Integer attributes plus Flume's StartTime/StopTime; ``attributes()`` gives Flume's MBean view."""

    TYPE = "OTHER"
    FIELDS: tuple[tuple[str, str], ...] = ()  # (python attribute, Flume attribute)

    def __init__(self) -> None:
        # every field of the class and of its bases: a subclass that shows fewer (Flume's Kafka counters hide
        # the *Fail ones) still has them, since the shared code (BatchSink, Source.deliver) counts them
        for klass in type(self).__mro__:
            for attr, _ in vars(klass).get("FIELDS", ()):
                setattr(self, attr, 0)
        self.start_time = 0
        self.stop_time = 0
        self.lock = threading.Lock()  # for counters bumped from several threads (connections, transactions)

    def add(self, **amounts: int) -> None:
        """Add to counters by attribute name, all under the lock in one step (``add(event_received=n,
        append_batch_received=1)``): the only way components change a counter, from any thread."""
        values = self.__dict__
        with self.lock:
            for attr, n in amounts.items():
                values[attr] += n

    def set(self, **values: int) -> None:
        """Set gauges (``size``, ``capacity``) under the lock."""
        with self.lock:
            for attr, v in values.items():
                setattr(self, attr, v)

    def started(self) -> None:
        self.start_time = int(time.time() * 1000)
        self.stop_time = 0

    def stopped(self) -> None:
        self.stop_time = int(time.time() * 1000)

    def attributes(self) -> dict[str, str]:
        out = {flume: str(getattr(self, attr)) for attr, flume in self.FIELDS}
        out["StartTime"] = str(self.start_time)
        out["StopTime"] = str(self.stop_time)
        out["Type"] = self.TYPE
        return out


class SourceCounter(_Counter):
    TYPE = "SOURCE"
    FIELDS = (
        ("event_received", "EventReceivedCount"),
        ("event_accepted", "EventAcceptedCount"),
        ("append_received", "AppendReceivedCount"),
        ("append_accepted", "AppendAcceptedCount"),
        ("append_batch_received", "AppendBatchReceivedCount"),
        ("append_batch_accepted", "AppendBatchAcceptedCount"),
        ("open_connections", "OpenConnectionCount"),
        ("event_read_fail", "EventReadFail"),
        ("channel_write_fail", "ChannelWriteFail"),
        ("generic_processing_fail", "GenericProcessingFail"),
    )

    def delivered(self, received: int, accepted: int, pair: str | None) -> None:
        """A slice handed to the channels (``received`` events) of which ``accepted`` were committed, counted
        also in the ``pair`` counters (``append_batch``: AppendBatchReceived/Accepted; ``append``: one Avro
        append; None: events only). One lock acquisition, no keyword dicts: it runs once per batch."""
        with self.lock:
            self.event_received += received
            self.event_accepted += accepted
            if pair == "append_batch":
                self.append_batch_received += 1
                self.append_batch_accepted += 1 if accepted else 0
            elif pair == "append":
                self.append_received += 1
                self.append_accepted += 1 if accepted else 0


class ChannelCounter(_Counter):
    TYPE = "CHANNEL"
    FIELDS = (
        ("size", "ChannelSize"),
        ("put_attempt", "EventPutAttemptCount"),
        ("put_success", "EventPutSuccessCount"),
        ("take_attempt", "EventTakeAttemptCount"),
        ("take_success", "EventTakeSuccessCount"),
        ("capacity", "ChannelCapacity"),
    )

    # Called by every transaction (agent.core.Transaction), so plain statements under the lock, no keyword dicts.
    def put_attempted(self, n: int) -> None:
        with self.lock:
            self.put_attempt += n

    def take_attempted(self, n: int) -> None:
        with self.lock:
            self.take_attempt += n

    def committed(self, puts: int, takes: int) -> None:
        with self.lock:
            self.put_success += puts
            self.take_success += takes

    def attributes(self) -> dict[str, str]:
        out = super().attributes()
        cap = self.capacity
        fill = (self.size * 100.0 / cap) if cap else 1.7976931348623157e308
        out["ChannelFillPercentage"] = _java_double(fill)
        return out


class SinkCounter(_Counter):
    TYPE = "SINK"
    FIELDS = (
        ("connection_created", "ConnectionCreatedCount"),
        ("connection_closed", "ConnectionClosedCount"),
        ("connection_failed", "ConnectionFailedCount"),
        ("batch_empty", "BatchEmptyCount"),
        ("batch_underflow", "BatchUnderflowCount"),
        ("batch_complete", "BatchCompleteCount"),
        ("drain_attempt", "EventDrainAttemptCount"),
        ("drain_success", "EventDrainSuccessCount"),
        ("write_fail", "EventWriteFail"),
        ("channel_read_fail", "ChannelReadFail"),
    )

    # Called for every batch by agent.core.BatchSink, so plain statements under the lock, no keyword dicts.
    def taken(self, n: int, batch_size: int) -> None:
        """A take of ``n`` events (n > 0) for a batch of ``batch_size``."""
        with self.lock:
            self.drain_attempt += n
            if n < batch_size:
                self.batch_underflow += 1
            else:
                self.batch_complete += 1

    def drained(self, n: int) -> None:
        with self.lock:
            self.drain_success += n


def _java_double(x: float) -> str:
    """Render a double as Java's Double.toString does for the values we produce (``33.3``, ``0.0``, ``1.0E8``)."""
    if x == 1.7976931348623157e308:
        return "1.7976931348623157E308"
    if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-3):
        mant, exp = f"{x:.16E}".split("E")
        mant = mant.rstrip("0")
        if mant.endswith("."):
            mant += "0"
        return f"{mant}E{int(exp)}"
    text = repr(float(x))
    return text


# A snapshot is a mapping "TYPE.name" -> attributes, produced by the running agent.
Snapshot = dict[str, dict[str, str]]


def render_json(snapshot: Snapshot) -> bytes:
    return json.dumps(snapshot, separators=(",", ":")).encode()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def render_prometheus(snapshot: Snapshot) -> bytes:
    """The same counters in Prometheus text format: ``flume_<type>_<attribute>{name="c1"} value``."""
    families: dict[str, list[str]] = {}
    for key, attrs in sorted(snapshot.items()):
        ctype, _, name = key.partition(".")
        for attr, value in sorted(attrs.items()):
            if attr in ("Type",):
                continue
            try:
                num = float(value)
            except ValueError:
                continue
            metric = f"flume_{ctype.lower()}_{_snake(attr)}"
            label = name.replace("\\", "\\\\").replace('"', '\\"')
            families.setdefault(metric, []).append(f'{metric}{{name="{label}"}} {_prom_num(num)}')
    lines: list[str] = []
    for metric, samples in families.items():
        kind = "counter" if metric.endswith("_count") else "gauge"
        lines.append(f"# TYPE {metric} {kind}")
        lines.extend(samples)
    return ("\n".join(lines) + "\n").encode()


def _prom_num(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


class MetricsServer:
    """Flume's HTTP monitoring (``-Dflume.monitoring.type=http -Dflume.monitoring.port=N``).

    ``GET /metrics`` answers Flume's JSON; ``GET /metrics/prometheus`` the same counters for Prometheus;
    ``GET /health`` each component's state. Any other path is 404, TRACE and OPTIONS 403, as in Flume.
    """

    def __init__(self, snapshot: Callable[[], Snapshot], health: Callable[[], dict], host: str = "0.0.0.0",
                 port: int = 41414, routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] | None = None):
        self._snapshot = snapshot
        #: more GET paths (agent/live.py: the status page, agent tap), each answered by ``route(handler)``
        self.routes = dict(routes or {})
        self._health = health
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "pyflume"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                path = self.path.split("?", 1)[0].rstrip("/") or "/"
                if path in outer.routes:
                    outer.routes[path](self)
                elif path == "/metrics":
                    self._send(200, render_json(outer._snapshot()), "application/json;charset=utf-8")
                elif path == "/metrics/prometheus":
                    self._send(200, render_prometheus(outer._snapshot()), "text/plain; version=0.0.4")
                elif path == "/health":
                    report = outer._health()
                    code = 200 if report.get("status") == "UP" else 503
                    self._send(code, json.dumps(report).encode(), "application/json;charset=utf-8")
                elif path == "/":
                    self._send(200, b'<html><body><a href="/metrics">Metrics</a></body></html>',
                               "text/html;charset=utf-8")
                else:
                    self._send(404, b"Not Found", "text/plain")

            do_HEAD = do_GET

            def do_TRACE(self) -> None:  # noqa: N802
                self._send(403, b"Forbidden", "text/plain")

            do_OPTIONS = do_TRACE

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        log.info("Metrics served on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def counters_of(components: Iterable[object]) -> Snapshot:
    """Collect ``TYPE.name`` → attributes from components that have an MBean in Flume."""
    out: Snapshot = {}
    for c in components:
        attrs = c.metrics()  # type: ignore[attr-defined]
        if attrs is not None:
            out[f"{attrs.get('Type', 'OTHER')}.{c.name}"] = attrs  # type: ignore[attr-defined]
    return out
