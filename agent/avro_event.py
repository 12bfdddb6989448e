"""One Flume event as a bare Avro ``AvroFlumeEvent`` datum (binary encoding, no container, no schema).

This is the ``useFlumeEventFormat`` / ``parseAsFlumeEvent`` format of Flume's Kafka source, sink and channel:
``record AvroFlumeEvent { map<string> headers; bytes body; }``. The map is written as one block (count, then
key/value pairs, then 0) or, when empty, as a single 0; longs are zig-zag varints. Written by hand because it runs
once per message on the Kafka hot path; fastavro's generic writer costs several times more per event.
"""

from __future__ import annotations

from agent.core import Batch, Event

__all__ = ["encode_event", "encode_headers", "encode_long", "decode_event", "decode_uniform_events", "AvroEventError"]


class AvroEventError(ValueError):
    """The bytes are not an AvroFlumeEvent datum."""


def _zz(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_zz(i) for i in range(64)]


def _long(n: int) -> bytes:
    return _SMALL[n] if n < 64 else _zz(n)


encode_long = _long


def encode_headers(headers: dict[str, str] | None) -> bytes:
    """The ``headers`` map of an AvroFlumeEvent: one block (count, key/value pairs) and the end marker."""
    if not headers:
        return b"\x00"
    parts = [_long(len(headers))]
    for k, v in headers.items():
        kb = k.encode()
        vb = v.encode()
        parts += (_long(len(kb)), kb, _long(len(vb)), vb)
    parts.append(b"\x00")
    return b"".join(parts)


def encode_event(event: Event) -> bytes:
    body = event.body
    return encode_headers(event.headers) + _long(len(body)) + body


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    acc = 0
    while True:
        try:
            b = data[pos]
        except IndexError:
            raise AvroEventError("truncated AvroFlumeEvent") from None
        pos += 1
        acc |= (b & 0x7F) << shift
        if not b & 0x80:
            return (acc >> 1) ^ -(acc & 1), pos
        shift += 7
        if shift > 63:
            raise AvroEventError("varint longer than 10 bytes")


def _read_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _read_long(data, pos)
    end = pos + n
    if n < 0 or end > len(data):
        raise AvroEventError("length out of range")
    return data[pos:end], end


def decode_event(data: bytes) -> Event:
    """Parse one datum; raises AvroEventError on anything else (e.g. a plain text message)."""
    headers, pos = _read_headers(data, 0)
    body, pos = _read_bytes(data, pos)
    if pos != len(data):
        raise AvroEventError(f"{len(data) - pos} bytes after the event")
    return Event(body, headers)


def decode_uniform_events(data: bytes, pos: int = 0) -> tuple[Batch, int] | None:
    """An ``array<AvroFlumeEvent>`` starting at ``pos`` whose events all have the same headers (often none, or
    what one interceptor set): a :class:`Batch` (one bodies list, one shared dict) and the position after the
    array; None as soon as two events' headers differ (the caller then decodes it the general way)."""
    bodies: list[bytes] = []
    add = bodies.append
    same = b""  # the header bytes of every event, taken from the first
    shared: dict[str, str] = {}
    size = len(data)
    while True:
        count, pos = _read_long(data, pos)
        if count == 0:
            break
        if count < 0:  # a block with its byte size first
            count = -count
            _, pos = _read_long(data, pos)
        if not same:
            start = pos
            shared, pos = _read_headers(data, pos)
            same = data[start:pos]
            body, pos = _read_bytes(data, pos)
            add(body)
            count -= 1
        # The hot loop (about 40% less time than a general one): the headers are checked by their first byte
        # (the whole map only when it is more than the empty map's one byte), and a body's length is one or two
        # varint bytes up to 8 KiB, read inline; longer ones the general way.
        k = len(same)
        first = same[0]
        try:
            for _ in range(count):
                if data[pos] != first or (k > 1 and not data.startswith(same, pos)):
                    return None
                pos += k
                n = data[pos]
                if n < 0x80:
                    pos += 1
                else:
                    m = data[pos + 1]
                    if m >= 0x80:
                        body, pos = _read_bytes(data, pos)
                        add(body)
                        continue
                    n = (n & 0x7F) | (m << 7)
                    pos += 2
                end = pos + (n >> 1)
                if n & 1 or end > size:
                    raise AvroEventError("length out of range")
                add(data[pos:end])
                pos = end
        except IndexError:
            raise AvroEventError("truncated AvroFlumeEvent") from None
    return Batch(bodies, shared or None), pos


def _read_headers(data: bytes, pos: int) -> tuple[dict[str, str], int]:
    headers: dict[str, str] = {}
    while True:
        count, pos = _read_long(data, pos)
        if count == 0:
            break
        if count < 0:  # a block with its byte size first
            count = -count
            _, pos = _read_long(data, pos)
        for _ in range(count):
            k, pos = _read_bytes(data, pos)
            v, pos = _read_bytes(data, pos)
            try:
                headers[k.decode()] = v.decode()
            except UnicodeDecodeError:
                raise AvroEventError("header is not UTF-8") from None
    return headers, pos
