"""The logger sink: logs each event at INFO in Flume's format (for testing and debugging a flow)."""

from __future__ import annotations

from agent.core import Event, Sink, Status
from agent.spec import Conf, Prop, Spec

__all__ = ["LoggerSink", "dump_event"]

_BATCH = 100


def _hexdump(data: bytes) -> str:
    """commons-io HexDump.dump of ``data`` with the leading 8-digit offset removed, as Flume's EventHelper prints it."""
    out = []
    for i in range(0, len(data), 16):
        row = data[i:i + 16]
        hexes = "".join(f"{b:02X} " for b in row) + "   " * (16 - len(row))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        out.append(f"{i:08X} {hexes}{text}\n")
    dump = "".join(out)
    return dump[8:] if dump.startswith("00000000") else dump


def dump_event(event: Event, max_bytes: int) -> str:
    """Flume's ``EventHelper.dumpEvent``: ``{ headers:{k=v} body: <hex> <text> }``."""
    body = event.body[:max_bytes]
    headers = "{" + ", ".join(f"{k}={v}" for k, v in event.headers.items()) + "}"
    return "{ headers:" + headers + " body:" + (_hexdump(body) if body else "") + " }"


class LoggerSink(Sink):
    """Logs every event at INFO: its headers and the first maxBytesToLog bytes of its body as a hex dump."""

    alias = "logger"
    flume_class = "org.apache.flume.sink.LoggerSink"
    spec = Spec(
        Prop("maxBytesToLog", "int", 16, "Bytes of each body shown in the log line.", min=0),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.max_bytes = conf["maxBytesToLog"]

    def process(self) -> Status:
        channel = self.channel
        assert channel is not None
        with channel.transaction() as tx:
            events = tx.take_batch(_BATCH)
            if not events:
                tx.commit()
                return Status.BACKOFF
            info = self.log.info
            for e in events:  # one log line per event is what this sink is for
                info("Event: %s", dump_event(e, self.max_bytes))
            tx.commit()
        return Status.READY

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's LoggerSink registers no MBean
