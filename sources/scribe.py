"""The Scribe source: receives Scribe's ``Log(list<LogEntry>)`` calls (Thrift binary protocol, framed transport,
as Scribe servers and Flume's ScribeSource speak), so applications and relays that log to Scribe can send to
pyflume unchanged.

Each LogEntry becomes one event: its message is the body, its category (when set) the ``category`` header. A
call is answered ``OK`` only after its events are committed to the channels, ``TRY_LATER`` when the channels
refused them (the client sends them again). A connection that sends something that is not a valid call is closed
with a logged reason; the source goes on.
"""

from __future__ import annotations

import threading

from agent import thrift_rpc as wire
from agent.core import ChannelException, _rate_limited
from agent.spec import Conf, Prop, Spec
from sources.thrift import ThriftServerSource

__all__ = ["ScribeSource"]

_DEFAULT_PORT = 1499
_DEFAULT_WORKERS = 5
_OK, _TRY_LATER = 0, 1


class ScribeSource(ThriftServerSource):
    """Listens for Scribe's Log calls; answers OK only after the entries are committed to the channels."""

    alias = None  # Flume 1.11 has no alias for it either: type = org.apache.flume.source.scribe.ScribeSource
    flume_class = "org.apache.flume.source.scribe.ScribeSource"
    label = "Scribe"
    methods = wire.SCRIBE_METHODS
    strict = False  # Flume's Scribe server writes old-style binary message headers, as Scribe itself does
    spec = Spec(
        Prop("port", "int", _DEFAULT_PORT, "TCP port to listen on (0 picks a free port).", min=0, max=65535),
        Prop("bind", "str", None, "pyflume: the host name or IP address to listen on; unset: every interface, as "
             "Flume's Scribe source always does."),
        Prop("maxReadBufferBytes", "int", 16_384_000, "Largest call accepted, in bytes; a connection sending a "
             "larger one is closed. 0 or less: the default, as in Flume."),
        Prop("workerThreads", "int", _DEFAULT_WORKERS, "At most this many calls are worked on at once (further "
             "calls wait); 0 or less: 5, as in Flume."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.protocol = wire.BINARY
        self.bind = c.bind
        self.port = c.port
        self.max_frame = c.max_read_buffer_bytes if c.max_read_buffer_bytes > 0 else wire.DEFAULT_MAX_FRAME
        workers = c.worker_threads if c.worker_threads > 0 else _DEFAULT_WORKERS
        self.request_slots = threading.BoundedSemaphore(workers)

    def answer(self, call: wire.Call) -> int:
        events = call.events or []
        if not events:
            return _OK
        try:
            self.deliver(events, count=None)  # Flume's Scribe source counts events only
        except ChannelException as exc:
            _rate_limited(self.log, f"Scribe source {self.name}: the channel refused {len(events)} entries ({exc}); "
                                    f"answering TRY_LATER so the client retries")
            return _TRY_LATER
        return _OK
