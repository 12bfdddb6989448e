"""The file channel's log records: how a PUT or TAKE is laid out in a segment file, and how a segment is read back.

Record layout (little-endian)::

    magic "PFL1" | type u8 | payload length u32 | crc32 u32 | payload

The CRC covers the payload's body first and its 16-byte prefix second (``crc32(prefix, crc32(body))``), so the
expensive part is computed outside the channel lock and only the sequence number is added under it.

PUT payload: ``first_seq u64 | commit time ms u64 | count u32 | (headers_len u32, body_len u32) * count |
header blobs | bodies``. A header blob is ``(key_len u32, value_len u32, key, value) *``, UTF-8.
Events of one PUT get the sequence numbers ``first_seq .. first_seq + count - 1``.

TAKE payload: ``count u32 | (start u64, end u64) * count``: half-open ranges of sequence numbers taken for good.

EPUT (an encrypted PUT, see ``channels.file.encryption``): the PUT's first 20 payload bytes in clear, then the key
alias, a key check, the IV and the rest of the PUT payload encrypted.

Segments are named ``pyflume-log-<N>`` (N from 1) and go to the data directories in turn (segment N to
``dataDirs[(N - 1) % len(dataDirs)]``).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.core import Event

__all__ = [
    "MAGIC", "PUT", "TAKE", "EPUT", "PUTS", "HEADER", "Record", "encode_put_body", "put_record", "take_record",
    "put_header", "decode_put", "read_put", "decode_take", "segment_name", "segment_number", "scan_segment", "Damage",
]

MAGIC = b"PFL1"
PUT = 1
TAKE = 2
EPUT = 3  # an encrypted PUT
PUTS = (PUT, EPUT)
_TYPES = (PUT, TAKE, EPUT)
HEADER = struct.Struct("<4sBII")  # magic, type, payload length, crc
PUT_PREFIX = struct.Struct("<QQ")  # first_seq, commit time (ms)
MAX_RECORD = 1 << 31
_U32 = struct.Struct("<I")
_KV = struct.Struct("<II")


def segment_name(number: int) -> str:
    return f"pyflume-log-{number}"


def segment_number(name: str) -> int | None:
    if name.startswith("pyflume-log-") and name[12:].isdigit():
        return int(name[12:])
    return None


def _header_blob(headers: dict[str, str]) -> bytes:
    parts = []
    for k, v in headers.items():
        kb = k.encode("utf-8", "surrogatepass")
        vb = v.encode("utf-8", "surrogatepass")
        parts.append(_KV.pack(len(kb), len(vb)))
        parts.append(kb)
        parts.append(vb)
    return b"".join(parts)


def encode_put_body(events: Sequence[Event], seal: Callable[[bytes], bytes] | None = None) -> tuple[bytes, int]:
    """The PUT payload without its prefix, and the CRC of it. Called outside any lock. ``seal`` encrypts it (an
    EPUT record's body, see ``channels.file.encryption``)."""
    n = len(events)
    bodies = [e.body for e in events]
    if any(e.headers for e in events):
        blobs = [_header_blob(e.headers) if e.headers else b"" for e in events]
    else:
        blobs = None
    lens: list[int] = [0] * (2 * n)
    lens[1::2] = map(len, bodies)
    if blobs is not None:
        lens[0::2] = map(len, blobs)
        body = b"".join([_U32.pack(n), struct.pack(f"<{2 * n}I", *lens), *blobs, *bodies])
    else:
        body = b"".join([_U32.pack(n), struct.pack(f"<{2 * n}I", *lens), *bodies])
    if seal is not None:
        body = seal(body)
    return body, zlib.crc32(body)


def put_record(first_seq: int, time_ms: int, body: bytes, body_crc: int, rtype: int = PUT) -> bytes:
    prefix = PUT_PREFIX.pack(first_seq, time_ms)
    crc = zlib.crc32(prefix, body_crc)
    return HEADER.pack(MAGIC, rtype, len(prefix) + len(body), crc) + prefix + body


def take_record(ranges: Sequence[tuple[int, int]]) -> bytes:
    body = _U32.pack(len(ranges)) + b"".join(struct.pack("<QQ", s, e) for s, e in ranges)
    return HEADER.pack(MAGIC, TAKE, len(body), zlib.crc32(body)) + body


def _check_crc(rtype: int, payload: bytes | memoryview, crc: int) -> bool:
    if rtype != TAKE:
        return zlib.crc32(payload[:16], zlib.crc32(payload[16:])) == crc
    return zlib.crc32(payload) == crc


def put_header(payload: bytes) -> tuple[int, int, int]:
    """first_seq, commit time (ms) and event count of a PUT payload, without decoding its events."""
    first_seq, time_ms = PUT_PREFIX.unpack_from(payload, 0)
    (count,) = _U32.unpack_from(payload, 16)
    return first_seq, time_ms, count


def read_put(data: bytes, cipher=None) -> list[Event] | None:  # noqa: ANN001 - a channels.file.encryption.LogCipher
    """The events of one whole PUT record (header included) read back from a segment; None if it is not a valid
    PUT record (bad magic, type or checksum). An encrypted one is decrypted with ``cipher`` (KeyProblem from
    ``cipher.open`` when its key is not there; ValueError without a cipher)."""
    magic, rtype, _plen, crc = HEADER.unpack_from(data, 0)
    payload = data[HEADER.size:]
    if magic != MAGIC or rtype not in PUTS or not _check_crc(rtype, payload, crc):
        return None
    if rtype == EPUT:
        if cipher is None:
            raise ValueError("the record is encrypted and the channel has no encryption settings")
        payload = cipher.open(payload)
    return decode_put(payload)[2]


def decode_put(payload: bytes) -> tuple[int, int, list[Event]]:
    """first_seq, commit time (ms) and the events of a PUT payload."""
    first_seq, time_ms = PUT_PREFIX.unpack_from(payload, 0)
    (n,) = _U32.unpack_from(payload, 16)
    lens = struct.unpack_from(f"<{2 * n}I", payload, 20)
    pos = 20 + 8 * n
    hlens = lens[0::2]
    blens = lens[1::2]
    heads: list[dict[str, str] | None]
    if any(hlens):
        heads = []
        for hl in hlens:
            if not hl:
                heads.append(None)
                continue
            end = pos + hl
            h: dict[str, str] = {}
            while pos < end:
                kl, vl = _KV.unpack_from(payload, pos)
                pos += 8
                k = payload[pos:pos + kl].decode("utf-8", "surrogatepass")
                pos += kl
                h[k] = payload[pos:pos + vl].decode("utf-8", "surrogatepass")
                pos += vl
            heads.append(h)
    else:
        heads = [None] * n
    events = []
    add = events.append
    for h, bl in zip(heads, blens, strict=True):
        add(Event(payload[pos:pos + bl], h))
        pos += bl
    if pos != len(payload):
        raise ValueError(f"PUT record of {len(payload)} bytes holds {pos} bytes of events")
    return first_seq, time_ms, events


def decode_take(payload: bytes) -> list[tuple[int, int]]:
    (n,) = _U32.unpack_from(payload, 0)
    flat = struct.unpack_from(f"<{2 * n}Q", payload, 4)
    return list(zip(flat[0::2], flat[1::2], strict=True))


@dataclass
class Record:
    segment: int
    offset: int
    rtype: int
    length: int  # of the whole record, header included
    payload: bytes


@dataclass
class Damage:
    """A stretch of a segment that could not be read: torn (at the end) or corrupt (in the middle)."""

    path: Path
    offset: int
    end: int
    reason: str
    torn: bool  # nothing valid follows: the segment should be truncated at ``offset``

    def __str__(self) -> str:
        what = "torn record at the end" if self.torn else f"corrupt bytes up to offset {self.end}"
        return f"{self.path}: offset {self.offset}: {what} ({self.reason})"


def _valid_at(data: bytes, pos: int) -> tuple[int, int] | None:
    """(type, total length) if a valid record starts at ``pos``; else None (``_why_invalid`` says why)."""
    if pos + HEADER.size > len(data):
        return None
    magic, rtype, plen, crc = HEADER.unpack_from(data, pos)
    if magic != MAGIC or rtype not in _TYPES or plen > MAX_RECORD:
        return None
    end = pos + HEADER.size + plen
    if end > len(data):
        return None
    if not _check_crc(rtype, memoryview(data)[pos + HEADER.size:end], crc):
        return None
    return rtype, HEADER.size + plen


def _why_invalid(data: bytes, pos: int) -> str:
    if pos + HEADER.size > len(data):
        return f"only {len(data) - pos} bytes of a {HEADER.size}-byte record header"
    magic, rtype, plen, crc = HEADER.unpack_from(data, pos)
    if magic != MAGIC:
        return f"bad magic {magic!r}"
    if rtype not in _TYPES:
        return f"unknown record type {rtype}"
    if pos + HEADER.size + plen > len(data):
        return f"record declares {plen} payload bytes, {len(data) - pos - HEADER.size} remain"
    return "checksum mismatch"


def scan_segment(path: Path, number: int, start: int = 0) -> Iterator[Record | Damage]:
    """Every valid record of a segment from ``start``, and a Damage for each unreadable stretch.

    After a bad record the scan looks for the next offset where a valid record starts (magic, sane length,
    matching checksum); if there is none, the rest is reported as torn.
    """
    data = path.read_bytes()
    pos = start
    size = len(data)
    while pos < size:
        ok = _valid_at(data, pos)
        if ok is not None:
            rtype, length = ok
            yield Record(number, pos, rtype, length, data[pos + HEADER.size:pos + length])
            pos += length
            continue
        reason = _why_invalid(data, pos)
        nxt = data.find(MAGIC, pos + 1)
        while nxt != -1 and _valid_at(data, nxt) is None:
            nxt = data.find(MAGIC, nxt + 1)
        if nxt == -1:
            yield Damage(path, pos, size, reason, torn=True)
            return
        yield Damage(path, pos, nxt, reason, torn=False)
        pos = nxt
