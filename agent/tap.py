"""Taps: a sample of the events passing one point of a running agent, streamed to ``agent tap``.

A point is a source's output after its interceptors (``source:r1``), the batches put into a channel
(``channel:c1``) or the batches a sink took, before it delivers them (``sink:k1``). The hot path knows nothing of
taps but one attribute per point (``ChannelProcessor.tap``, ``Channel.tap``, ``Sink.tap``), None while nobody
taps: the cost then is one attribute check per batch. When a tap attaches, :class:`TapHub` sets that attribute to
a :class:`_PointHook` that hands each batch to every tap on the point; the last tap to leave sets it back to None.

A tap only reads. It copies the headers and the first ``max_body`` bytes of the bodies it samples, keeps at most
``rate`` events per second (a token bucket; the samples are spread over each batch), optionally only events whose
headers match, and queues them for the HTTP thread that streams them. It never blocks the thread that carries the
batch: when the reader is slow, the oldest queued samples are dropped and counted.

Served on the monitoring port as ``GET /tap`` (see :func:`serve`), to loopback clients only unless
``-Dpyflume.tap.allow=CIDR[,CIDR…]`` says otherwise (``-Dpyflume.tap.allow=none`` turns taps off).
"""

from __future__ import annotations

import base64
import collections
import fnmatch
import ipaddress
import json
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["TapError", "HeaderFilter", "Tap", "TapHub", "serve", "allowed_networks"]

KINDS = ("source", "channel", "sink")
DEFAULT_RATE = 10.0
MAX_RATE = 100_000.0
DEFAULT_MAX_BODY = 4096
MAX_BODY = 1 << 20
_STATS_EVERY = 1.0
MAX_TAPS = 16  # taps at once per agent: each holds one HTTP thread
_LOOPBACK = "127.0.0.0/8,::1/128"


class TapError(Exception):
    """A tap request that cannot be served: an unknown point, a bad rate or filter."""


class HeaderFilter:
    """``key`` (the header is present) or ``key=glob`` (its value matches, as fnmatch, case-sensitive); every
    condition must hold."""

    def __init__(self, conditions: Sequence[str]):
        self.conditions: list[tuple[str, str | None]] = []
        for cond in conditions:
            key, eq, pattern = cond.partition("=")
            if not key:
                raise TapError(f"header filter {cond!r}: expected KEY or KEY=GLOB")
            self.conditions.append((key, pattern if eq else None))

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def matches(self, headers: dict[str, str]) -> bool:
        for key, pattern in self.conditions:
            value = headers.get(key)
            if value is None or (pattern is not None and not fnmatch.fnmatchcase(value, pattern)):
                return False
        return True


class Tap:
    """One ``agent tap`` connection: its points, rate limit, header filter and queue of samples.

    ``offer`` runs on the threads that carry batches (several at once); ``drain`` on the HTTP thread.
    """

    def __init__(self, points: Sequence[str], rate: float = DEFAULT_RATE, header_filter: HeaderFilter | None = None,
                 max_body: int = DEFAULT_MAX_BODY):
        self.points = list(points)
        self.rate = rate
        self.filter = header_filter or HeaderFilter(())
        self.max_body = max_body
        self._tokens = max(1.0, rate)
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self._queue: collections.deque[dict[str, Any]] = collections.deque(maxlen=max(100, int(rate * 2)))
        self._ready = threading.Event()
        self.seen = 0  # events that passed the points
        self.matched = 0  # of those, events the header filter let through
        self.sampled = 0  # events queued for the reader
        self.dropped = 0  # queued events the reader was too slow for

    def offer(self, point: str, events: Sequence[Any]) -> None:
        n = len(events)
        with self._lock:
            now = time.monotonic()
            self._tokens = min(max(1.0, self.rate), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self.seen += n
            budget = int(self._tokens)
            if budget <= 0 and not self.filter:  # the common case under load: one lock, nothing copied
                self.matched += n
                return
        candidates = [e for e in events if self.filter.matches(e.headers)] if self.filter else events
        m = len(candidates)
        if budget <= 0 or m == 0:
            with self._lock:
                self.matched += m
            return
        if m > budget:  # spread the samples over the batch
            step = m / budget
            candidates = [candidates[int(i * step)] for i in range(budget)]
        wall = time.time()
        samples = [{"point": point, "time": wall, "headers": dict(e.headers),
                    "size": len(e.body), "body": base64.b64encode(e.body[:self.max_body]).decode()}
                   for e in candidates]
        with self._lock:
            self.matched += m
            self._tokens -= len(samples)
            self.sampled += len(samples)
            overflow = len(self._queue) + len(samples) - (self._queue.maxlen or 0)
            if overflow > 0:
                self.dropped += overflow
            self._queue.extend(samples)
        self._ready.set()

    def drain(self, timeout: float) -> list[dict[str, Any]]:
        """The queued samples, waiting up to ``timeout`` seconds for the first."""
        if self._ready.wait(timeout):
            self._ready.clear()
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"type": "stats", "seen": self.seen, "matched": self.matched, "sampled": self.sampled,
                    "dropped": self.dropped}


class _PointHook:
    """What a point's ``tap`` attribute holds while it is tapped: hands each batch to every tap on the point."""

    __slots__ = ("point", "taps")

    def __init__(self, point: str, taps: tuple[Tap, ...]):
        self.point = point
        self.taps = taps

    def __call__(self, events: Sequence[Any]) -> None:
        for tap in self.taps:
            try:
                tap.offer(self.point, events)
            except Exception:  # noqa: BLE001 - a tap must never fail the batch it watches
                pass


class TapHub:
    """The taps of one agent: resolves point names, installs and removes the hooks, follows hot reloads.

    ``topology()`` returns the agent's current topology; after a reload the hooks move to the new components of
    the same names (checked by :meth:`sync`, which each tap's HTTP thread calls about once a second).
    """

    def __init__(self, topology: Callable[[], Any]):
        self._topology = topology
        self._lock = threading.Lock()
        self._taps: dict[str, tuple[Tap, ...]] = {}
        self._installed: dict[str, Any] = {}  # point -> the object whose ``tap`` attribute holds its hook
        self._topo: Any = None

    @staticmethod
    def targets(topo: Any) -> dict[str, Any]:
        """Every point of ``topo``: ``source:r1`` → its channel processor, ``channel:c1``, ``sink:k1``."""
        out: dict[str, Any] = {}
        for name, src in topo.sources.items():
            if getattr(src, "channel_processor", None) is not None:
                out[f"source:{name}"] = src.channel_processor
        out.update((f"channel:{name}", ch) for name, ch in topo.channels.items())
        out.update((f"sink:{name}", sink) for name, sink in topo.sinks.items())
        return out

    def resolve(self, specs: Sequence[str]) -> list[str]:
        """Point names for ``specs``: ``kind:name`` or a bare name, either with fnmatch wildcards; none means
        every source. Raises TapError naming what exists when a spec matches nothing or is ambiguous."""
        known = list(self.targets(self._topology()))
        if not specs:
            specs = ["source:*"]
        out: list[str] = []
        for spec in specs:
            kind, colon, name = spec.partition(":")
            if colon and kind not in KINDS:
                raise TapError(f"tap point {spec!r}: the kind must be one of {', '.join(KINDS)}")
            if colon:
                found = [p for p in known if p.startswith(kind + ":") and fnmatch.fnmatchcase(p[len(kind) + 1:], name)]
            else:
                found = [p for p in known if fnmatch.fnmatchcase(p.partition(":")[2], spec)]
                kinds = {p.partition(":")[0] for p in found}
                if len(kinds) > 1 and not any(c in spec for c in "*?["):
                    raise TapError(f"tap point {spec!r} is ambiguous: say {' or '.join(sorted(found))}")
            if not found:
                raise TapError(f"tap point {spec!r} matches nothing; this agent has {', '.join(known) or 'no points'}")
            out += [p for p in found if p not in out]
        return out

    def active(self) -> int:
        """How many taps are attached."""
        with self._lock:
            return len({id(t) for taps in self._taps.values() for t in taps})

    def attach(self, tap: Tap) -> None:
        with self._lock:
            self._sync_locked()
            for point in tap.points:
                self._taps[point] = self._taps.get(point, ()) + (tap,)
                self._install(point)

    def detach(self, tap: Tap) -> None:
        with self._lock:
            for point in tap.points:
                rest = tuple(t for t in self._taps.get(point, ()) if t is not tap)
                if rest:
                    self._taps[point] = rest
                else:
                    self._taps.pop(point, None)
                self._install(point)

    def sync(self) -> None:
        """Move the hooks to the components of a reloaded topology."""
        with self._lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        topo = self._topology()
        if topo is self._topo:
            return
        self._topo = topo
        for point in list(self._installed):
            self._install(point)

    def _install(self, point: str) -> None:
        target = self.targets(self._topo).get(point) if self._topo is not None else None
        taps = self._taps.get(point)
        old = self._installed.pop(point, None)
        if old is not None and old is not target:
            old.tap = None
        if target is None:
            return
        if taps:
            target.tap = _PointHook(point, taps)  # one assignment: the hot path sees the old hook or the new one
            self._installed[point] = target
        else:
            target.tap = None


def allowed_networks(setting: str | None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks ``-Dpyflume.tap.allow`` lets tap (default loopback; ``none``: nobody)."""
    text = _LOOPBACK if setting is None else setting
    if text.strip().lower() == "none":
        return []
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


def _client_allowed(host: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in networks)


def _number(query: dict[str, list[str]], key: str, default: float, low: float, high: float) -> float:
    text = query.get(key, [None])[-1]
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise TapError(f"{key}={text!r}: expected a number") from None
    if not low <= value <= high:
        raise TapError(f"{key}={text!r}: expected a number from {low:g} to {high:g}")
    return value


def _json_line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _closed(sock: socket.socket) -> bool:
    """Whether the reader closed its end (a write would find out only one write later)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def serve(handler: BaseHTTPRequestHandler, hub: TapHub, networks: Sequence[Any], stopping: Callable[[], bool]) -> None:
    """Answer ``GET /tap?point=…&rate=…&header=…&max_body=…`` with a stream of JSON lines: one
    ``{"type": "tap", "points": […]}``, then one object per sampled event (``point``, ``time``, ``headers``,
    ``size``, ``body`` in base64, cut to ``max_body`` bytes) and a ``stats`` object every second, until the reader
    goes away or the agent stops."""
    def refuse(code: int, message: str) -> None:
        body = _json_line({"error": message})
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    client = handler.client_address[0]
    if not _client_allowed(client, networks):
        refuse(403, f"agent tap is not open to {client}: taps are served to loopback clients only, unless the "
                    f"agent runs with -Dpyflume.tap.allow=CIDR[,CIDR...]")
        return
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    try:
        points = hub.resolve(query.get("point", []))
        tap = Tap(points, _number(query, "rate", DEFAULT_RATE, 0.001, MAX_RATE), HeaderFilter(query.get("header", [])),
                  int(_number(query, "max_body", DEFAULT_MAX_BODY, 0, MAX_BODY)))
    except TapError as exc:
        refuse(400, str(exc))
        return
    if hub.active() >= MAX_TAPS:
        refuse(503, f"this agent already serves {MAX_TAPS} taps; try again when one of them ends")
        return
    handler.send_response(200)
    handler.send_header("Content-Type", "application/x-ndjson")
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()
    if handler.command == "HEAD":
        return
    hub.attach(tap)
    try:
        handler.wfile.write(_json_line({"type": "tap", "points": points, "rate": tap.rate}))
        handler.wfile.flush()
        next_stats = time.monotonic() + _STATS_EVERY
        while not stopping():
            samples = tap.drain(max(0.0, next_stats - time.monotonic()))
            if samples:
                handler.wfile.write(b"".join(_json_line(s) for s in samples))
            if time.monotonic() >= next_stats:
                if _closed(handler.connection):
                    return
                handler.wfile.write(_json_line(tap.stats()))
                next_stats = time.monotonic() + _STATS_EVERY
                hub.sync()
            handler.wfile.flush()
        handler.wfile.write(_json_line({**tap.stats(), "type": "end", "reason": "the agent is stopping"}))
    except OSError:  # the reader went away
        pass
    finally:
        hub.detach(tap)
