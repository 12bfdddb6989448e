"""Flume's Thrift RPC on the wire: ``ThriftSourceProtocol`` (``append``, ``appendBatch``) and Scribe's ``Log``,
in Thrift's binary and compact protocols over framed transport.

Byte for byte what Apache Flume 1.11's ThriftSource, ThriftSink (the SDK's ThriftRpcClient) and ScribeSource
speak (libthrift 0.14):

- framed transport: every message is ``length:int32`` (big-endian) followed by that many bytes;
- a message starts with its header (binary, strict: ``0x8001 0000 | type``, name, seqid; binary, old style:
  name, type, seqid; compact: ``0x82``, ``version | type << 5``, seqid varint, name), then the arguments or the
  result as one struct;
- ``ThriftFlumeEvent {1: map<string,string> headers, 2: binary body}``; ``Status {OK, FAILED, ERROR, UNKNOWN}``;
  ``LogEntry {1: string category, 2: string message}``; ``ResultCode {OK, TRY_LATER}``;
- a method the server does not know is answered with a TApplicationException (UNKNOWN_METHOD).

The codec is written here for these few structs (no generated code): decoding a batch whose events all carry the
same headers (the usual case) makes one :class:`agent.core.Batch` (a bodies list and the headers once), any other
batch the ``Event`` objects directly, and unknown fields are skipped as Thrift requires. :class:`ThriftClient` is a
blocking client of a Flume Thrift source (pyflume's or Apache Flume's) that applications can use too. Limits keep a
hostile or broken peer from making us allocate without bound.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable, Sequence

from agent.core import Batch, Event
from agent.rpc import RpcError
from agent.spec import Conf, Prop

__all__ = [
    "BINARY", "COMPACT", "PROTOCOLS", "STATUS", "FrameError", "ThriftError", "Call", "FramedConnection",
    "decode_call", "encode_reply", "encode_exception", "encode_call", "decode_status", "ThriftClient",
    "encode_events", "encode_log", "DEFAULT_MAX_FRAME", "FLUME_METHODS", "SCRIBE_METHODS",
    "THRIFT_PROTOCOL_PROP", "THRIFT_SINK_PROTOCOL_PROP", "flume_protocol",
]

BINARY = "binary"
COMPACT = "compact"
PROTOCOLS = (BINARY, COMPACT)

#: libthrift's default largest frame (TFastFramedTransport, TFramedTransport): 16,384,000 bytes.
DEFAULT_MAX_FRAME = 16_384_000
STATUS = ("OK", "FAILED", "ERROR", "UNKNOWN")

# message types
CALL, REPLY, EXCEPTION, ONEWAY = 1, 2, 3, 4
# binary protocol type ids
_STOP, _BOOL, _BYTE, _DOUBLE, _I16, _I32, _I64, _STRING, _STRUCT, _MAP, _SET, _LIST = (
    0, 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15)
# compact protocol type ids, and the binary ids they stand for
_C_TRUE, _C_FALSE, _C_BYTE, _C_I16, _C_I32, _C_I64, _C_DOUBLE, _C_BINARY, _C_LIST, _C_SET, _C_MAP, _C_STRUCT = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
_C_TO_B = {_C_TRUE: _BOOL, _C_FALSE: _BOOL, _C_BYTE: _BYTE, _C_I16: _I16, _C_I32: _I32, _C_I64: _I64,
           _C_DOUBLE: _DOUBLE, _C_BINARY: _STRING, _C_LIST: _LIST, _C_SET: _SET, _C_MAP: _MAP,
           _C_STRUCT: _STRUCT}
_B_TO_C = {_BOOL: _C_TRUE, _BYTE: _C_BYTE, _I16: _C_I16, _I32: _C_I32, _I64: _C_I64, _DOUBLE: _C_DOUBLE,
           _STRING: _C_BINARY, _LIST: _C_LIST, _SET: _C_SET, _MAP: _C_MAP, _STRUCT: _C_STRUCT}
_VERSION_1 = 0x80010000
_MAX_DEPTH = 64

_I32S = struct.Struct(">i")
_U32S = struct.Struct(">I")
_I16S = struct.Struct(">h")
_MAPH = struct.Struct(">BBi")  # key type, value type, size
_LISTH = struct.Struct(">Bi")  # element type, size
_FIELDH = struct.Struct(">Bh")  # type, id
_u32 = _U32S.unpack_from
_i32 = _I32S.unpack_from
_maph = _MAPH.unpack_from
_listh = _LISTH.unpack_from
_fieldh = _FIELDH.unpack_from


class FrameError(Exception):
    """The peer sent something that is not a valid frame or message; the connection is closed."""


class ThriftError(RpcError):
    """A call failed: connection, timeout, a status other than OK, or an exception from the server. An RpcError,
    so the clients that fail over between Avro hosts (and pyflume_client) treat a Thrift host the same way."""


class Call:
    """One decoded request: method ``name``, ``seqid``, and ``events`` (``append``, ``appendBatch``, ``Log``) or
    None for a method this server does not serve; an ``appendBatch`` whose events share their headers gives a
    :class:`agent.core.Batch`, anything else a list."""

    __slots__ = ("name", "seqid", "events", "oneway")

    def __init__(self, name: str, seqid: int, events: Sequence[Event] | None, oneway: bool = False):
        self.name = name
        self.seqid = seqid
        self.events = events
        self.oneway = oneway


# --------------------------------------------------------------------------------------------------------------
# Binary protocol


class _Reader:
    """What the two protocols' readers share: the frame, the position, and skipping a value whatever its type
    (bounded depth; the end of the frame is checked after each skipped value)."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def list_header(self) -> tuple[int, int]:
        raise NotImplementedError

    def _skip(self, t: int, depth: int) -> None:
        raise NotImplementedError

    def skip(self, t: int, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            raise FrameError("structures nested too deep")
        self._skip(t, depth)
        if self.pos > len(self.buf):
            raise FrameError("a value runs past the end of the message")

    def _skip_elements(self, depth: int) -> None:
        et, n = self.list_header()
        for _ in range(n):
            self.skip(et, depth + 1)

    # the protocol's type ids of a struct and a list, and its name in errors
    STRUCT = LIST = 0
    NAME = ""

    def field(self, last: int) -> tuple[int, int]:
        raise NotImplementedError

    def skip_field(self, t: int) -> None:
        self.skip(t)

    def events(self, n: int) -> Batch | list[Event]:
        raise NotImplementedError

    def log_entry(self) -> Event:
        raise NotImplementedError

    def args(self, element: str, single: bool) -> Sequence[Event]:
        """The arguments struct: field 1 is one struct (``single``) or a list of structs; ``element`` names the
        method that reads one ("event", "log_entry")."""
        events: Sequence[Event] = []
        last = 0
        while True:
            t, fid = self.field(last)
            if t == 0:
                return events
            if fid == 1 and single and t == self.STRUCT:
                events = [getattr(self, element)()]
            elif fid == 1 and not single and t == self.LIST:
                et, n = self.list_header()
                if et != self.STRUCT:
                    raise FrameError(f"the list holds {self.NAME} type {et}, not structs")
                events = self.events(n) if element == "event" else [self.log_entry() for _ in range(n)]
            else:
                self.skip_field(t)
            last = fid


class _BinaryReader(_Reader):
    """Reads one message of Thrift's binary protocol from a frame. Every read is bounds-checked by slicing or
    by struct (which raises struct.error past the end)."""

    __slots__ = ()
    STRUCT, LIST, NAME = _STRUCT, _LIST, "binary protocol"

    def message(self) -> tuple[str, int, int]:
        buf = self.buf
        (head,) = _i32(buf, 0)
        if head < 0:
            if (head & 0xFFFF0000) != _VERSION_1:
                raise FrameError(f"bad binary protocol version 0x{head & 0xFFFFFFFF:08x}")
            mtype = head & 0xFF
            self.pos = 4
            name = self.string().decode("utf-8", "replace")
            (seqid,) = _i32(buf, self.pos)
            self.pos += 4
        else:  # old style (TBinaryProtocol without strictWrite, as Scribe clients may send)
            self.pos = 0
            name = self.string().decode("utf-8", "replace")
            mtype = buf[self.pos]
            (seqid,) = _i32(buf, self.pos + 1)
            self.pos += 5
        return name, mtype, seqid

    def string(self) -> bytes:
        (n,) = _i32(self.buf, self.pos)
        start = self.pos + 4
        end = start + n
        if n < 0 or end > len(self.buf):
            raise FrameError(f"a string of {n} bytes runs past the end of the message")
        self.pos = end
        return self.buf[start:end]

    def field(self, last: int = 0) -> tuple[int, int]:
        """(type, field id); type 0 is the end of the struct (``last`` is for the compact protocol's deltas)."""
        t = self.buf[self.pos]
        if t == _STOP:
            self.pos += 1
            return _STOP, 0
        t, fid = _fieldh(self.buf, self.pos)
        self.pos += 3
        return t, fid

    def list_header(self) -> tuple[int, int]:
        t, n = _listh(self.buf, self.pos)
        self.pos += 5
        if n < 0 or n > len(self.buf) - self.pos:
            raise FrameError(f"a list of {n} elements cannot fit in the message")
        return t, n

    def _skip(self, t: int, depth: int) -> None:
        if t == _BOOL or t == _BYTE:
            self.pos += 1
        elif t == _I16:
            self.pos += 2
        elif t == _I32:
            self.pos += 4
        elif t == _I64 or t == _DOUBLE:
            self.pos += 8
        elif t == _STRING:
            self.string()
        elif t == _STRUCT:
            while True:
                ft, _ = self.field()
                if ft == _STOP:
                    break
                self.skip(ft, depth + 1)
        elif t == _MAP:
            kt, vt, n = _maph(self.buf, self.pos)
            self.pos += 6
            if n < 0 or n > len(self.buf):
                raise FrameError(f"a map of {n} entries cannot fit in the message")
            for _ in range(n):
                self.skip(kt, depth + 1)
                self.skip(vt, depth + 1)
        elif t == _LIST or t == _SET:
            self._skip_elements(depth)
        else:
            raise FrameError(f"unknown binary protocol type {t}")

    def events(self, n: int) -> Batch | list[Event]:
        """``n`` ThriftFlumeEvent structs: a :class:`Batch` when they all share their headers (:meth:`uniform`),
        else one Event each, inlined. Lengths are read unsigned, so a bad one can only run past the end, which is
        checked once per event."""
        batch = self.uniform(n)
        if batch is not None:
            return batch
        buf = self.buf
        end = len(buf)
        pos = self.pos
        out: list[Event] = []
        add = out.append
        u32 = _u32
        for _ in range(n):
            headers: dict[str, str] = {}
            body = b""
            while True:
                t = buf[pos]
                if t == _STOP:
                    pos += 1
                    break
                if t == _MAP and buf[pos + 1] == 0 and buf[pos + 2] == 1:
                    if buf[pos + 3] != _STRING or buf[pos + 4] != _STRING:
                        raise FrameError("ThriftFlumeEvent.headers is not a map of strings")
                    (m,) = u32(buf, pos + 5)
                    pos += 9
                    if m > end - pos:
                        raise FrameError(f"a map of {m} headers cannot fit in the message")
                    for _ in range(m):
                        (ln,) = u32(buf, pos)
                        pos += 4
                        k = buf[pos:pos + ln]
                        pos += ln
                        (ln,) = u32(buf, pos)
                        pos += 4
                        headers[k.decode("utf-8", "replace")] = buf[pos:pos + ln].decode("utf-8", "replace")
                        pos += ln
                elif t == _STRING and buf[pos + 1] == 0 and buf[pos + 2] == 2:
                    (ln,) = u32(buf, pos + 3)
                    pos += 7
                    body = buf[pos:pos + ln]
                    pos += ln
                else:
                    self.pos = pos + 3
                    self.skip(t)
                    pos = self.pos
            if pos > end:
                raise FrameError("an event runs past the end of the message")
            add(Event(body, headers))
        self.pos = pos
        return out

    def uniform(self, n: int) -> Batch | None:
        """``n`` ThriftFlumeEvent structs laid out as Flume writes them (headers, then body, then the end of the
        struct) whose headers are the same bytes in every event: one bodies list and the headers decoded once,
        without an Event or a dict per event. None (the position unchanged) as soon as one event is anything
        else, including anything malformed: the caller then decodes the list the general way, which says what
        is wrong."""
        if not n:
            return Batch([])
        buf = self.buf
        start = pos = self.pos
        u32 = _u32
        try:
            # the first event: its headers field (or none) and its body's field header are what every event starts
            # with; a map that could not fit in what is left leaves it to the general way
            shared: dict[str, str] | None = None
            if buf.startswith(b"\x0d\x00\x01\x0b\x0b", pos):
                (m,) = u32(buf, pos + 5)
                pos += 9
                if m * 8 > len(buf) - pos:
                    return None
                shared = {}
                for _ in range(m):
                    (ln,) = u32(buf, pos)
                    k = buf[pos + 4:pos + 4 + ln]
                    pos += 4 + ln
                    (ln,) = u32(buf, pos)
                    shared[k.decode("utf-8", "replace")] = buf[pos + 4:pos + 4 + ln].decode("utf-8", "replace")
                    pos += 4 + ln
            same = buf[start:pos] + b"\x0b\x00\x02"
            starts = buf.startswith
            if not starts(same, start):
                return None
            # each body is followed by the end of its struct and the next event's start: one check for both
            after = b"\x00" + same
            skip = len(after)
            bodies: list[bytes] = []
            add = bodies.append
            pos = start + len(same)
            for _ in range(n):
                (ln,) = u32(buf, pos)
                pos += 4
                stop = pos + ln
                add(buf[pos:stop])
                if not starts(after, stop):
                    break
                pos = stop + skip
            if len(bodies) != n or buf[stop] != _STOP:  # IndexError past the end
                return None
        except (IndexError, struct.error):
            return None
        self.pos = stop + 1
        return Batch(bodies, shared or None)

    def event(self) -> Event:
        """A ThriftFlumeEvent struct."""
        buf = self.buf
        headers: dict[str, str] = {}
        body = b""
        while True:
            t = buf[self.pos]
            if t == _STOP:
                self.pos += 1
                return Event(body, headers)
            t, fid = _fieldh(buf, self.pos)
            self.pos += 3
            if fid == 1 and t == _MAP:
                kt, vt, n = _maph(buf, self.pos)
                self.pos += 6
                if kt != _STRING or vt != _STRING:
                    raise FrameError(f"ThriftFlumeEvent.headers is a map of types {kt}, {vt}, not strings")
                if n < 0 or n * 8 > len(buf) - self.pos:
                    raise FrameError(f"a map of {n} headers cannot fit in the message")
                string = self.string
                for _ in range(n):
                    k = string()
                    headers[k.decode("utf-8", "replace")] = string().decode("utf-8", "replace")
            elif fid == 2 and t == _STRING:
                body = self.string()
            else:
                self.skip(t)

    def log_entry(self) -> Event:
        """A Scribe LogEntry struct: the message is the body, the category (when set) the ``category`` header."""
        buf = self.buf
        headers: dict[str, str] = {}
        body: bytes | None = None
        while True:
            t = buf[self.pos]
            if t == _STOP:
                self.pos += 1
                if body is None:
                    raise FrameError("a LogEntry without a message")
                return Event(body, headers)
            t, fid = _fieldh(buf, self.pos)
            self.pos += 3
            if fid == 1 and t == _STRING:
                headers["category"] = self.string().decode("utf-8", "replace")
            elif fid == 2 and t == _STRING:
                body = self.string()
            else:
                self.skip(t)


def _b_string(data: bytes) -> bytes:
    return _I32S.pack(len(data)) + data


def _b_message(name: str, mtype: int, seqid: int, strict: bool = True) -> bytes:
    if strict:
        return _U32S.pack(_VERSION_1 | mtype) + _b_string(name.encode()) + _I32S.pack(seqid)
    return _b_string(name.encode()) + bytes((mtype,)) + _I32S.pack(seqid)


def _b_head(headers: dict[str, str] | None) -> bytes:
    """A ThriftFlumeEvent's bytes before its body's length: the headers field and the body's field header."""
    pack_i32 = _I32S.pack
    parts = [b"\x0d\x00\x01" + _MAPH.pack(_STRING, _STRING, len(headers or ()))]
    for k, v in (headers or {}).items():
        kb = k.encode()
        vb = v.encode()
        parts.append(pack_i32(len(kb)) + kb + pack_i32(len(vb)) + vb)
    parts.append(b"\x0b\x00\x02")
    return b"".join(parts)


def _uniform_events(head_of_list: bytes, batch: Batch, head: bytes, length: Callable[[int], bytes]) -> bytes:
    """A raw Batch's list<ThriftFlumeEvent>: the shared headers' bytes and each body length's prefix made once."""
    parts = [head_of_list]
    prefixes: dict[int, bytes] = {}
    for body in batch.bodies:
        n = len(body)
        prefix = prefixes.get(n)
        if prefix is None:
            prefix = prefixes[n] = head + length(n)
        parts += (prefix, body, b"\x00")
    return b"".join(parts)


def _b_events(events: Sequence[Event]) -> bytes:
    """A list<ThriftFlumeEvent> value (without its field header)."""
    if type(events) is Batch and events.raw:
        return _uniform_events(_LISTH.pack(_STRUCT, len(events)), events, _b_head(events.shared), _I32S.pack)
    parts = [_LISTH.pack(_STRUCT, len(events))]
    add = parts.append
    pack_i32 = _I32S.pack
    maph = _MAPH.pack
    for e in events:
        headers = e.headers
        add(b"\x0d\x00\x01" + maph(_STRING, _STRING, len(headers)))
        for k, v in headers.items():
            kb = k.encode()
            vb = v.encode()
            add(pack_i32(len(kb)) + kb + pack_i32(len(vb)) + vb)
        body = e.body
        add(b"\x0b\x00\x02" + pack_i32(len(body)))
        add(body)
        add(b"\x00")
    return b"".join(parts)


# --------------------------------------------------------------------------------------------------------------
# Compact protocol


class _CompactReader(_Reader):
    """Reads one message of Thrift's compact protocol from a frame."""

    __slots__ = ()
    STRUCT, LIST, NAME = _C_STRUCT, _C_LIST, "compact protocol"

    def skip_field(self, t: int) -> None:
        self.skip(t, 0 if t in (_C_TRUE, _C_FALSE) else 1)  # a bool field's value is its type

    def varint(self) -> int:
        buf = self.buf
        b = buf[self.pos]
        self.pos += 1
        if b < 0x80:
            return b
        result = b & 0x7F
        shift = 7
        while True:
            b = buf[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7
            if shift > 63:
                raise FrameError("a varint longer than 10 bytes")

    def varint_at(self, pos: int) -> tuple[int, int]:
        """The varint at ``pos`` and the position after it (the hot path's slow branch: lengths past 127)."""
        self.pos = pos
        value = self.varint()
        return value, self.pos

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def message(self) -> tuple[str, int, int]:
        buf = self.buf
        if buf[0] != 0x82 or (buf[1] & 0x1F) != 1:
            raise FrameError(f"bad compact protocol header 0x{buf[0]:02x} 0x{buf[1]:02x}; is the peer using "
                             f"protocol = binary?")
        mtype = buf[1] >> 5
        self.pos = 2
        seqid = self.varint()
        if seqid >= 1 << 31:
            seqid -= 1 << 32
        name = self.string().decode("utf-8", "replace")
        return name, mtype, seqid

    def string(self) -> bytes:
        n = self.varint()
        start = self.pos
        end = start + n
        if end > len(self.buf):
            raise FrameError(f"a string of {n} bytes runs past the end of the message")
        self.pos = end
        return self.buf[start:end]

    def field(self, last: int) -> tuple[int, int]:
        """(compact type, field id); type 0 is the end of the struct."""
        b = self.buf[self.pos]
        self.pos += 1
        if b == 0:
            return 0, 0
        delta = b >> 4
        return b & 0x0F, (last + delta if delta else self.zigzag())

    def list_header(self) -> tuple[int, int]:
        b = self.buf[self.pos]
        self.pos += 1
        n = b >> 4
        if n == 15:
            n = self.varint()
        if n > len(self.buf) - self.pos:
            raise FrameError(f"a list of {n} elements cannot fit in the message")
        return b & 0x0F, n

    def _skip(self, t: int, depth: int) -> None:
        if t in (_C_TRUE, _C_FALSE):
            if depth:  # a bool inside a container takes a byte; as a field, its type is its value
                self.pos += 1
        elif t == _C_BYTE:
            self.pos += 1
        elif t in (_C_I16, _C_I32, _C_I64):
            self.varint()
        elif t == _C_DOUBLE:
            self.pos += 8
        elif t == _C_BINARY:
            self.string()
        elif t == _C_STRUCT:
            last = 0
            while True:
                ft, last = self.field(last)
                if ft == 0:
                    break
                self.skip(ft, 0 if ft in (_C_TRUE, _C_FALSE) else depth + 1)
        elif t == _C_MAP:
            n = self.varint()
            if n > len(self.buf):
                raise FrameError(f"a map of {n} entries cannot fit in the message")
            if n:
                kv = self.buf[self.pos]
                self.pos += 1
                for _ in range(n):
                    self.skip(kv >> 4, depth + 1)
                    self.skip(kv & 0x0F, depth + 1)
        elif t in (_C_LIST, _C_SET):
            self._skip_elements(depth)
        else:
            raise FrameError(f"unknown compact protocol type {t}")

    def events(self, n: int) -> Batch | list[Event]:
        """``n`` ThriftFlumeEvent structs: a :class:`Batch` when they all share their headers (:meth:`uniform`),
        else one Event each, inlined for the layout Flume's encoders write (field 1, then field 2, one-byte field
        headers); another layout goes through :meth:`event`."""
        start = self.pos
        batch = self.uniform(n)
        if batch is not None:
            return batch
        self.pos = start
        buf = self.buf
        end = len(buf)
        pos = self.pos
        out: list[Event] = []
        add = out.append
        for _ in range(n):
            start = pos
            if buf[pos] != 0x1B:
                self.pos = pos
                add(self.event())
                pos = self.pos
                continue
            headers: dict[str, str] = {}
            m = buf[pos + 1]
            pos += 2
            if m:
                if m >= 0x80:
                    m, pos = self.varint_at(pos - 1)
                if buf[pos] != 0x88:
                    raise FrameError("ThriftFlumeEvent.headers is not a map of strings")
                pos += 1
                if m > end - pos:
                    raise FrameError(f"a map of {m} headers cannot fit in the message")
                for _ in range(m):
                    ln = buf[pos]
                    pos += 1
                    if ln >= 0x80:
                        ln, pos = self.varint_at(pos - 1)
                    k = buf[pos:pos + ln]
                    pos += ln
                    ln = buf[pos]
                    pos += 1
                    if ln >= 0x80:
                        ln, pos = self.varint_at(pos - 1)
                    headers[k.decode("utf-8", "replace")] = buf[pos:pos + ln].decode("utf-8", "replace")
                    pos += ln
            if buf[pos] == 0x18:
                ln = buf[pos + 1]
                pos += 2
                if ln >= 0x80:
                    ln, pos = self.varint_at(pos - 1)
                body = buf[pos:pos + ln]
                pos += ln
                if buf[pos] == 0:
                    pos += 1
                    add(Event(body, headers))
                    continue
            self.pos = start  # another layout (extra fields, fields in another order): the general way
            add(self.event())
            pos = self.pos
        if pos > end:
            raise FrameError("an event runs past the end of the message")
        self.pos = pos
        return out

    def uniform(self, n: int) -> Batch | None:
        """``n`` ThriftFlumeEvent structs laid out as Flume writes them (headers, then body, then the end of the
        struct, one-byte field headers) whose headers are the same bytes in every event: one bodies list and the
        headers decoded once, without an Event or a dict per event. None as soon as one event is anything else,
        including anything malformed (the caller then decodes the list the general way from where it started,
        which says what is wrong); the reader's position is then undefined."""
        if not n:
            return Batch([])
        buf = self.buf
        start = pos = self.pos
        varint_at = self.varint_at
        try:
            # the first event: its headers field (or none) and its body's field header are what every event starts
            # with; a map that could not fit in what is left leaves it to the general way
            shared: dict[str, str] | None = None
            if buf[pos] == 0x1B:
                m, pos = varint_at(pos + 1)
                if m:
                    if buf[pos] != 0x88 or m * 2 > len(buf) - pos:
                        return None
                    pos += 1
                    shared = {}
                    for _ in range(m):
                        ln, pos = varint_at(pos)
                        k = buf[pos:pos + ln]
                        ln, pos = varint_at(pos + ln)
                        shared[k.decode("utf-8", "replace")] = buf[pos:pos + ln].decode("utf-8", "replace")
                        pos += ln
                same = buf[start:pos] + b"\x18"
            else:  # no headers field: the body is field 2 right away
                same = b"\x28"
            starts = buf.startswith
            if not starts(same, start):
                return None
            # each body is followed by the end of its struct and the next event's start: one check for both
            after = b"\x00" + same
            skip = len(after)
            bodies: list[bytes] = []
            add = bodies.append
            pos = start + len(same)
            for _ in range(n):
                # a body's length is one or two varint bytes up to 16 KiB: read inline; longer ones the general way
                ln = buf[pos]
                if ln < 0x80:
                    pos += 1
                elif (b := buf[pos + 1]) < 0x80:
                    ln = (ln & 0x7F) | (b << 7)
                    pos += 2
                else:
                    ln, pos = varint_at(pos)
                stop = pos + ln
                add(buf[pos:stop])
                if not starts(after, stop):
                    break
                pos = stop + skip
            if len(bodies) != n or buf[stop] != 0:  # IndexError past the end
                return None
        except (IndexError, FrameError):
            return None
        self.pos = stop + 1
        return Batch(bodies, shared or None)

    def event(self) -> Event:
        """A ThriftFlumeEvent struct. Flume's encoders write field 1 (headers) then field 2 (body), each a
        one-byte header; anything else goes the general way."""
        buf = self.buf
        headers: dict[str, str] = {}
        body = b""
        last = 0
        string = self.string
        while True:
            b = buf[self.pos]
            self.pos += 1
            if b == 0x1B and last == 0:
                t, last = _C_MAP, 1
            elif b == 0x18 and last == 1:
                t, last = _C_BINARY, 2
            elif b == 0:
                return Event(body, headers)
            else:
                self.pos -= 1
                t, last = self.field(last)
            if last == 1 and t == _C_MAP:
                n = self.varint()
                if n:
                    if buf[self.pos] != 0x88:
                        raise FrameError("ThriftFlumeEvent.headers is not a map of strings")
                    self.pos += 1
                    if n * 2 > len(buf) - self.pos:
                        raise FrameError(f"a map of {n} headers cannot fit in the message")
                    for _ in range(n):
                        k = string()
                        headers[k.decode("utf-8", "replace")] = string().decode("utf-8", "replace")
            elif last == 2 and t == _C_BINARY:
                body = string()
            else:
                self.skip(t, 0 if t in (_C_TRUE, _C_FALSE) else 1)

    def log_entry(self) -> Event:
        headers: dict[str, str] = {}
        body: bytes | None = None
        last = 0
        while True:
            t, fid = self.field(last)
            if t == 0:
                if body is None:
                    raise FrameError("a LogEntry without a message")
                return Event(body, headers)
            if fid == 1 and t == _C_BINARY:
                headers["category"] = self.string().decode("utf-8", "replace")
            elif fid == 2 and t == _C_BINARY:
                body = self.string()
            else:
                self.skip(t, 0 if t in (_C_TRUE, _C_FALSE) else 1)
            last = fid


def _varint(n: int) -> bytes:
    """An unsigned LEB128 varint."""
    out = []
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + [n])


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


_SMALL = [bytes((i,)) for i in range(128)]


def _c_string(data: bytes) -> bytes:
    n = len(data)
    return (_SMALL[n] if n < 128 else _varint(n)) + data


def _c_message(name: str, mtype: int, seqid: int) -> bytes:
    return bytes((0x82, (mtype << 5) | 1)) + _varint(seqid & 0xFFFFFFFF) + _c_string(name.encode())


def _c_list_header(etype: int, n: int) -> bytes:
    return bytes(((n << 4) | etype,)) if n < 15 else bytes((0xF0 | etype,)) + _varint(n)


def _c_head(headers: dict[str, str] | None) -> bytes:
    """A ThriftFlumeEvent's bytes before its body's length (compact): the headers field, the body's field header."""
    if not headers:
        return b"\x1b\x00\x18"
    small = _SMALL
    n = len(headers)
    parts = [b"\x1b" + (small[n] if n < 128 else _varint(n)) + b"\x88"]
    for k, v in headers.items():
        kb = k.encode()
        vb = v.encode()
        parts.append((small[len(kb)] if len(kb) < 128 else _varint(len(kb))) + kb
                     + (small[len(vb)] if len(vb) < 128 else _varint(len(vb))) + vb)
    parts.append(b"\x18")
    return b"".join(parts)


def _c_events(events: Sequence[Event]) -> bytes:
    """A list<ThriftFlumeEvent> value (without its field header)."""
    if type(events) is Batch and events.raw:
        return _uniform_events(_c_list_header(_C_STRUCT, len(events)), events, _c_head(events.shared),
                               lambda n: _SMALL[n] if n < 128 else _varint(n))
    parts = [_c_list_header(_C_STRUCT, len(events))]
    add = parts.append
    small = _SMALL
    for e in events:
        headers = e.headers
        if headers:
            n = len(headers)
            add(b"\x1b" + (small[n] if n < 128 else _varint(n)) + b"\x88")
            for k, v in headers.items():
                kb = k.encode()
                vb = v.encode()
                add((small[len(kb)] if len(kb) < 128 else _varint(len(kb))) + kb
                    + (small[len(vb)] if len(vb) < 128 else _varint(len(vb))) + vb)
            add(b"\x18")
        else:
            add(b"\x1b\x00\x18")
        body = e.body
        n = len(body)
        add(small[n] if n < 128 else _varint(n))
        add(body)
        add(b"\x00")
    return b"".join(parts)


# --------------------------------------------------------------------------------------------------------------
# Framing


class FramedConnection:
    """One TCP (or TLS) connection carrying Thrift frames (``length:int32`` + bytes)."""

    def __init__(self, sock: socket.socket, max_frame: int = DEFAULT_MAX_FRAME):
        self.sock = sock
        self.max_frame = max_frame
        self._buf = bytearray()

    def read_frame(self) -> bytes:
        """The next frame; EOFError at a clean end of stream, FrameError for anything malformed."""
        buf = self._buf
        recv = self.sock.recv
        while len(buf) < 4:
            data = recv(65536)
            if not data:
                if buf:
                    raise FrameError(f"connection closed in the middle of a frame header ({len(buf)} bytes)")
                raise EOFError
            buf += data
        (n,) = _i32(buf, 0)
        if n < 0 or n > self.max_frame:
            raise FrameError(f"a frame of {n} bytes (the limit is {self.max_frame}); is the peer speaking "
                             f"framed Thrift?")
        end = n + 4
        while len(buf) < end:
            data = recv(max(65536, end - len(buf)))
            if not data:
                raise FrameError(f"connection closed in the middle of a frame ({len(buf) - 4} of {n} bytes)")
            buf += data
        frame = bytes(buf[4:end])
        del buf[:end]
        return frame

    def write_frame(self, payload: bytes) -> None:
        self.sock.sendall(_I32S.pack(len(payload)) + payload)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------------------------
# Messages

#: method name -> (the reader's element decoder, whether field 1 is one struct rather than a list)
FLUME_METHODS = {"append": ("event", True), "appendBatch": ("event", False)}
SCRIBE_METHODS = {"Log": ("log_entry", False)}


def decode_call(frame: bytes, protocol: str, methods: dict[str, tuple[str, bool]]) -> Call:
    """Parse one request frame; FrameError when it is not a valid call in ``protocol``."""
    if len(frame) < 2:
        raise FrameError(f"a message of {len(frame)} bytes")
    if protocol == BINARY:
        if frame[0] == 0x82:
            raise FrameError("the peer speaks the compact protocol; set protocol = compact on one side")
        reader: _BinaryReader | _CompactReader = _BinaryReader(frame)
    else:
        if frame[0] == 0x80:
            raise FrameError("the peer speaks the binary protocol; set protocol = binary on one side")
        reader = _CompactReader(frame)
    try:
        name, mtype, seqid = reader.message()
        if mtype not in (CALL, ONEWAY):
            raise FrameError(f"message type {mtype} where a call was expected")
        spec = methods.get(name)
        if spec is None:
            return Call(name, seqid, None, mtype == ONEWAY)
        element, single = spec
        events = reader.args(element, single)
    except (IndexError, struct.error):
        raise FrameError(f"a truncated {protocol} message ({len(frame)} bytes)") from None
    if reader.pos != len(frame):
        raise FrameError(f"{len(frame) - reader.pos} bytes after the end of the {name} call")
    return Call(name, seqid, events, mtype == ONEWAY)


def _message(protocol: str, name: str, mtype: int, seqid: int, strict: bool) -> bytes:
    return _b_message(name, mtype, seqid, strict) if protocol == BINARY else _c_message(name, mtype, seqid)


def encode_reply(protocol: str, name: str, seqid: int, value: int, strict: bool = True) -> bytes:
    """The reply of a method returning an enum (Status, ResultCode): field 0 of the result struct."""
    if protocol == BINARY:
        body = b"\x08\x00\x00" + _I32S.pack(value) + b"\x00"
    else:
        body = b"\x05\x00" + _zigzag(value) + b"\x00"
    return _message(protocol, name, REPLY, seqid, strict) + body


#: TApplicationException types
UNKNOWN_METHOD, PROTOCOL_ERROR = 1, 7


def encode_exception(protocol: str, name: str, seqid: int, text: str, kind: int = UNKNOWN_METHOD,
                     strict: bool = True) -> bytes:
    """A TApplicationException {1: string message, 2: i32 type}."""
    msg = text.encode()
    if protocol == BINARY:
        body = b"\x0b\x00\x01" + _b_string(msg) + b"\x08\x00\x02" + _I32S.pack(kind) + b"\x00"
    else:
        body = b"\x18" + _c_string(msg) + b"\x15" + _zigzag(kind) + b"\x00"
    return _message(protocol, name, EXCEPTION, seqid, strict) + body


def encode_events(protocol: str, events: Sequence[Event]) -> bytes:
    """A list<ThriftFlumeEvent> value."""
    return _b_events(events) if protocol == BINARY else _c_events(events)


def encode_log(protocol: str, entries: Sequence[tuple[str | None, bytes]]) -> bytes:
    """A list<LogEntry> value from (category, message) pairs."""
    if protocol == BINARY:
        parts = [_LISTH.pack(_STRUCT, len(entries))]
        for category, message in entries:
            if category is not None:
                parts.append(b"\x0b\x00\x01" + _b_string(category.encode()))
            parts.append(b"\x0b\x00\x02" + _b_string(message) + b"\x00")
        return b"".join(parts)
    parts = [_c_list_header(_C_STRUCT, len(entries))]
    for category, message in entries:
        if category is not None:
            parts.append(b"\x18" + _c_string(category.encode()) + b"\x18")
        else:
            parts.append(b"\x28")
        parts.append(_c_string(message) + b"\x00")
    return b"".join(parts)


def encode_call(protocol: str, name: str, seqid: int, value: bytes, single: bool = False,
                strict: bool = True) -> bytes:
    """A call whose argument 1 is ``value``: an encoded list (``single=False``) or one struct's fields."""
    if protocol == BINARY:
        head = (b"\x0c" if single else b"\x0f") + b"\x00\x01"
    else:
        head = b"\x1c" if single else b"\x19"
    return _message(protocol, name, CALL, seqid, strict) + head + value + b"\x00"


def decode_status(frame: bytes, protocol: str, name: str, seqid: int) -> int:
    """The enum a reply carries; ThriftError for an exception, another method or call, or no value."""
    reader: _BinaryReader | _CompactReader = _BinaryReader(frame) if protocol == BINARY else _CompactReader(frame)
    try:
        got, mtype, got_seqid = reader.message()
        if got != name or got_seqid != seqid:
            raise ThriftError(f"reply to {got!r} #{got_seqid} while waiting for {name!r} #{seqid}")
        if mtype == EXCEPTION:
            text = ""
            if isinstance(reader, _BinaryReader):
                while True:
                    t, fid = reader.field()
                    if t == _STOP:
                        break
                    if fid == 1 and t == _STRING:
                        text = reader.string().decode("utf-8", "replace")
                    else:
                        reader.skip(t)
            else:
                last = 0
                while True:
                    t, last = reader.field(last)
                    if t == 0:
                        break
                    if last == 1 and t == _C_BINARY:
                        text = reader.string().decode("utf-8", "replace")
                    else:
                        reader.skip(t, 0 if t in (_C_TRUE, _C_FALSE) else 1)
            raise ThriftError(f"{name}: the server answered with an exception: {text}")
        if mtype != REPLY:
            raise ThriftError(f"message type {mtype} where a reply was expected")
        if isinstance(reader, _BinaryReader):
            t, fid = reader.field()
            if fid == 0 and t == _I32:
                return _i32(frame, reader.pos)[0]
        else:
            t, fid = reader.field(0)
            if fid == 0 and t == _C_I32:
                return reader.zigzag()
    except (IndexError, struct.error, FrameError) as exc:
        raise ThriftError(f"{name}: cannot decode the reply: {exc or type(exc).__name__}") from None
    raise ThriftError(f"{name}: the reply carries no result")


# --------------------------------------------------------------------------------------------------------------
# Client


class ThriftClient:
    """A blocking connection to a Flume Thrift source (pyflume's or Apache Flume's, or anything that serves
    Flume's ``ThriftSourceProtocol``): ``append_batch(events)`` returns only when the server answered OK; anything
    else raises ThriftError and closes the connection (the next call opens a new one). Not thread safe: one
    caller at a time, as Flume's sink.

    ``handshake(sock)``, when given, turns the connected (TLS) socket into the connection carrying the frames:
    the SASL negotiation of a secure source (:mod:`agent.thrift_sasl`); its exceptions (FrameError, OSError, or
    ``handshake_errors``) fail the connect with a ThriftError naming the server."""

    def __init__(self, host: str, port: int, *, protocol: str = COMPACT, connect_timeout: float = 20.0,
                 request_timeout: float = 20.0, ssl_context: ssl.SSLContext | None = None,
                 max_frame: int = DEFAULT_MAX_FRAME,
                 handshake: Callable[[socket.socket], FramedConnection] | None = None,
                 handshake_errors: tuple[type[Exception], ...] = ()):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r}: expected binary or compact")
        self.host = host
        self.port = port
        self.protocol = protocol
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.ssl_context = ssl_context
        self.max_frame = max_frame
        self.handshake = handshake
        self.handshake_errors = handshake_errors
        self.conn: FramedConnection | None = None
        self._seqid = 0

    @property
    def connected(self) -> bool:
        return self.conn is not None

    def connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            raise ThriftError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        if self.handshake is None:
            sock.settimeout(self.request_timeout)
            self.conn = FramedConnection(sock, self.max_frame)
            return
        try:  # within connect-timeout, as the TLS handshake
            conn = self.handshake(sock)
        except (OSError, EOFError, FrameError, *self.handshake_errors) as exc:
            sock.close()
            why = "the server closed the connection" if isinstance(exc, EOFError) else (str(exc) or
                                                                                       type(exc).__name__)
            raise ThriftError(f"cannot open a secure connection to {self.host}:{self.port}: {why}") from exc
        sock.settimeout(self.request_timeout)
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, name: str, value: bytes, single: bool = False) -> int:
        """Send one call and return the enum its reply carries."""
        if self.conn is None:
            self.connect()
        conn = self.conn
        assert conn is not None
        self._seqid = (self._seqid + 1) & 0x7FFFFFFF
        seqid = self._seqid
        try:
            conn.write_frame(encode_call(self.protocol, name, seqid, value, single))
            reply = conn.read_frame()
            return decode_status(reply, self.protocol, name, seqid)
        except (OSError, EOFError, FrameError, ThriftError) as exc:
            self.close()
            if isinstance(exc, ThriftError):
                raise
            why = "the connection was closed by the peer" if isinstance(exc, EOFError) else (
                str(exc) or type(exc).__name__)
            raise ThriftError(f"{name} to {self.host}:{self.port} failed: {why}") from exc

    def append_batch(self, events: Sequence[Event]) -> None:
        status = self.call("appendBatch", encode_events(self.protocol, events))
        if status != 0:
            raise ThriftError(f"appendBatch of {len(events)} events to {self.host}:{self.port} returned "
                              f"{_status_name(status)}")

    def append(self, event: Event) -> None:
        value = encode_events(self.protocol, [event])
        status = self.call("append", value[5:] if self.protocol == BINARY else value[1:], single=True)
        if status != 0:
            raise ThriftError(f"append to {self.host}:{self.port} returned {_status_name(status)}")


def _status_name(value: int) -> str:
    return STATUS[value] if 0 <= value < len(STATUS) else str(value)


# --------------------------------------------------------------------------------------------------------------
# Configuration shared by the thrift source and sink

THRIFT_PROTOCOL_PROP = Prop(
    "protocol", "enum", "compact", "The Thrift protocol; both ends must use the same one.",
    choices={"compact": "TCompactProtocol (Flume's default).", "binary": "TBinaryProtocol."})


#: The sink's ``protocol``: Flume's thrift sink (ThriftRpcClient) takes any other value for compact, with a
#: warning, where its source refuses it; so a text, checked by :func:`flume_protocol`.
THRIFT_SINK_PROTOCOL_PROP = Prop(
    "protocol", "str", "compact", "The Thrift protocol, compact (TCompactProtocol, Flume's default) or binary "
    "(TBinaryProtocol); both ends must use the same one. Another value means compact, with a warning, as in Flume.")


def flume_protocol(conf: Conf, component: str) -> str:
    """``protocol`` as Flume 1.11 uses it: it accepts any case but uses binary only for exactly ``binary`` (it
    compares with equals after checking with equalsIgnoreCase), so ``BINARY`` means compact there, and here; the
    sink takes any other value for compact too."""
    value: str = conf["protocol"]
    raw = conf.lines.get("protocol")
    if raw is None or raw.value == value and value in PROTOCOLS:
        return value
    if value.lower() == "binary":
        conf.warn(f"Flume 1.11's {component} uses the compact protocol for {raw.value!r} (only 'binary' in lower "
                  "case selects the binary one), and so does pyflume; write 'compact' or 'binary'", "protocol")
    elif value.lower() != "compact":
        conf.warn(f"{raw.value!r} is not a Thrift protocol; Flume 1.11's {component} uses compact then, and so "
                  "does pyflume; expected compact or binary", "protocol")
    return "compact"
