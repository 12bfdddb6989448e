"""The logger sink: logs every event at INFO in Flume's exact format, for testing and debugging a flow.

Each event becomes one line on the logger ``pyflume.sink.<name>``::

    Event: { headers:{host=web1, topic=a} body: 68 65 6C 6C 6F                                  hello }

The body part is what Flume's ``EventHelper.dumpEvent`` prints: the first ``maxBytesToLog`` bytes as an Apache
commons-io ``HexDump.dump`` with the first line's ``00000000`` offset removed and the final line separator
dropped (see :func:`hex_dump`). Headers are printed as Java's ``Map.toString()`` in insertion order; Flume prints
them in Java HashMap order, which may differ when there are two or more.

Flume takes one event per transaction; this sink takes up to 100 (never more than the channel's
transactionCapacity) and still logs one line per event, since logging each event is what it is for.
"""

from __future__ import annotations

import logging

from agent.core import Event, EventDeliveryException, Sink, Status
from agent.spec import Conf, Prop, Spec
from sinks.serializers import java_map_string

__all__ = ["LoggerSink", "dump_event", "hex_dump"]

_BATCH = 100
_EOL = "\n"  # Java's line.separator on the platforms Flume runs on
_PRINTABLE = tuple(chr(b) if 32 <= b < 127 else "." for b in range(256))
_HEX = tuple(f"{b:02X} " for b in range(256))


def hex_dump(data: bytes, offset: int = 0) -> str:
    """commons-io 2.11 ``HexDump.dump(data, offset, out, 0)`` as text.

    One line per 16 bytes: the offset as 8 upper-case hex digits and a space; then 16 slots of 3 characters, each
    byte as 2 upper-case hex digits and a space (a missing byte on the last line is 3 spaces); then each byte as
    its ASCII character when it is 32..126 and as ``.`` otherwise; then the line separator. Empty data gives
    "" (commons-io throws for it; Flume never calls it with empty data).
    """
    lines = []
    for start in range(0, len(data), 16):
        row = data[start:start + 16]
        hexes = "".join([_HEX[b] for b in row]) + "   " * (16 - len(row))
        text = "".join([_PRINTABLE[b] for b in row])
        lines.append(f"{(offset + start) & 0xFFFFFFFF:08X} {hexes}{text}{_EOL}")
    return "".join(lines)


def dump_event(event: Event, max_bytes: int = 16) -> str:
    """Flume's ``EventHelper.dumpEvent(event, maxBytes)``: ``{ headers:{k=v, …} body:<dump> }``.

    ``<dump>`` is the hex dump of the first ``max_bytes`` bytes without the leading ``00000000`` and without the
    last line separator (so a dump of 16 bytes or fewer is one line starting with a space); nothing for an empty
    body. With ``max_bytes`` 0 and a non-empty body, Flume prints commons-io's exception message instead.
    """
    body = event.body
    if not body:
        dump = ""
    elif max_bytes <= 0:
        dump = "...Exception while dumping: illegal index: 0 into array of length 0"
    else:
        dump = hex_dump(body[:max_bytes])
        if dump.startswith("00000000"):
            dump = dump[8:]
        if dump.endswith(_EOL):
            dump = dump[:-len(_EOL)]
    return "{ headers:" + java_map_string(event.headers) + " body:" + dump + " }"


class LoggerSink(Sink):
    """Logs each event at INFO: its headers and a hex dump of the first maxBytesToLog bytes of its body."""

    alias = "logger"
    flume_class = "org.apache.flume.sink.LoggerSink"
    spec = Spec(
        Prop("maxBytesToLog", "int", 16, "How many bytes of each body the hex dump shows.", min=0),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.max_bytes: int = self.config.max_bytes_to_log

    def process(self) -> Status:
        channel = self.channel
        assert channel is not None
        cap = channel.transaction_capacity
        size = min(_BATCH, cap) if cap else _BATCH
        log = self.log
        tx = channel.transaction()
        tx.begin()
        try:
            events = tx.take_batch(size)
            if events and self.tap is not None:  # agent tap (agent/tap.py)
                self.tap(events)
            if events and log.isEnabledFor(logging.INFO):
                max_bytes = self.max_bytes
                for event in events:  # one line per event: logging each event is this sink's purpose
                    log.info("Event: %s", dump_event(event, max_bytes))
            tx.commit()
            if events:  # counted for agent top and the status page; /metrics hides them, as Flume has no MBean
                self.counter.taken(len(events), size)
                self.counter.drained(len(events))
        except Exception as exc:
            tx.rollback()
            raise EventDeliveryException(f"Failed to log event: {exc}") from exc
        finally:
            tx.close()
        return Status.READY if events else Status.BACKOFF

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's LoggerSink registers no MBean, so /metrics does not list it
