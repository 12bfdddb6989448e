"""Flume's SyslogUtils, the parser of ``syslogtcp`` and ``syslogudp``: a byte state machine that finds ``<PRI>``,
then RFC 5424 and RFC 3164 regular expressions for the rest.

Headers ``Facility``, ``Severity``, ``priority``, ``version``, ``timestamp`` (epoch ms), ``host``. Times without a
zone, and RFC 5424 times with fractional seconds (whose zone Flume ignores), are read in the local time zone;
``.5`` means 5 ms. A message longer than ``eventSize`` is cut there and flagged ``Incomplete``; the rest of it
becomes the next event (flagged ``Invalid``, since it does not start with ``<``).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from datetime import datetime

from agent.core import Event
from sources.syslog.fields import (
    INCOMPLETE,
    INVALID,
    KEEP_ALL,
    MONTHS,
    STATUS_HEADER,
    add_fields_to_body,
    lenient,
    local_ms,
    utc_ms,
    year_window,
)

__all__ = ["SyslogUtilsDecoder"]

# Java's '.' (without DOTALL) stops at every line terminator, and Java's \w \d \s are ASCII-only.
_DOT = "[^\n\r\u0085\u2028\u2029]"
_RFC5424 = re.compile(
    r"(?:<(\d{1,3})>)"
    r"(?:(\d?)\s?)"
    r"(?:(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[+-]\d{2}:\d{2}|Z)?)|-)"
    r"\s"
    r"(?:([\w][\w\d.@\-]*)|-)"
    r"\s"
    rf"({_DOT}*)",
    re.ASCII,
)
_RFC3164 = re.compile(
    r"(?:<(\d{1,3})>)"
    r"(?:(\d)?\s?)"
    r"([A-Z][a-z][a-z]\s{1,2}\d{1,2}\s\d{2}:\d{2}:\d{2})"
    r"\s"
    r"([\w][\w\d.@-]*)"
    rf"\s({_DOT}*)",
    re.ASCII,
)
# an octet-counted message may hold newlines: the same patterns with the message part spanning them
_RFC5424_FRAMED = re.compile(_RFC5424.pattern.replace(f"({_DOT}*)", "(.*)"), re.ASCII | re.DOTALL)
_RFC3164_FRAMED = re.compile(_RFC3164.pattern.replace(f"({_DOT}*)", "(.*)"), re.ASCII | re.DOTALL)
_TZ_COLON = re.compile(r"([+-])(\d{2}):(\d{2})")
_MICROS = re.compile(r"(T\d{2}:\d{2}:\d{2}\.\d{3})(\d*)")
_STAMP_5424 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([+-])(\d{2})(\d{2}))?")
_STAMP_3164 = re.compile(r"(\d+)([A-Za-z]{3}) (\d+) (\d+):(\d+):(\d+)")
_PRI = re.compile(rb"<([0-9]{1,3})>")

_START, _PRIO, _DATA = 0, 1, 2


def _utils_rfc5424_ms(stamp: str) -> int | None:
    """SyslogUtils' RFC 5424 time: Flume's replacements, then the first SimpleDateFormat that parses.

    With fractional seconds the first format (``...ss.S``) wins and ignores the zone: local time, and the fraction
    is a number of milliseconds (``.5`` is 5 ms). Without a fraction a zone applies; with neither, local time.
    """
    return _rfc5424_cached(stamp, time.timezone, time.altzone)


@functools.lru_cache(maxsize=4096)  # messages of one second share their stamp; keyed by the zone too
def _rfc5424_cached(stamp: str, _zone: int, _dst_zone: int) -> int | None:
    value = _MICROS.sub(r"\1", _TZ_COLON.sub(r"\1\2\3", stamp.replace("Z", "+0000")))
    m = _STAMP_5424.match(value)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, sign, tzh, tzm = m.groups()
    try:
        if frac is not None:
            return local_ms(lenient(int(y), int(mo), int(d), int(h), int(mi), int(s), int(frac)))
        if sign is not None:
            utc = utc_ms(lenient(int(y), int(mo), int(d), int(h), int(mi), int(s)))
            offset = (int(tzh) * 60 + int(tzm)) * 60000
            return utc - offset if sign == "+" else utc + offset
        return local_ms(lenient(int(y), int(mo), int(d), int(h), int(mi), int(s)))
    except (ValueError, OverflowError):
        return None


def _utils_rfc3164_ms(stamp: str, now_ms: int) -> int | None:
    """SyslogUtils' RFC 3164 time: the current (UTC) year is prepended, local time zone, Flume's year window."""
    parsed = _rfc3164_parsed(time.gmtime(now_ms / 1000).tm_year, stamp)
    if parsed is None:
        return None
    try:
        return year_window(parsed, now_ms, local_ms)
    except (ValueError, OverflowError):
        return None


@functools.lru_cache(maxsize=4096)
def _rfc3164_parsed(year: int, stamp: str) -> datetime | None:
    m = _STAMP_3164.fullmatch(f"{year}{stamp.replace('  ', ' ')}")
    month = MONTHS.get(m.group(2).lower()) if m else None
    if m is None or month is None:
        return None
    try:
        return lenient(int(m.group(1)), month, int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(6)))
    except (ValueError, OverflowError):
        return None


class SyslogUtilsDecoder:
    """Flume's SyslogUtils: splits a TCP byte stream (or reads one UDP datagram) into syslog events.

    One decoder per TCP connection: it keeps the partial message between chunks (never more than ``event_size``
    bytes). ``feed(chunk)`` returns the events completed by that chunk; ``datagram(data)`` reads one UDP message.
    """

    __slots__ = ("max_size", "keep", "now", "_mode", "_carry", "_prio", "_bad")

    def __init__(self, event_size: int = 2500, keep: frozenset[str] | None = None,
                 now: Callable[[], float] = time.time):
        self.max_size = event_size
        self.keep = keep
        self.now = now
        self._mode = _START
        self._carry = b""
        self._prio = b""
        self._bad = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        self._scan(data, events, udp=False)
        return events

    def finish(self) -> Event | None:
        """The message left without its newline when the stream ended, if any."""
        if self._mode == _START:
            return None
        raw, self._carry = self._carry, b""
        self._mode = _START
        return self._event(raw, incomplete=False)

    def datagram(self, data: bytes) -> Event | None:
        """One UDP datagram: the message ends at its first newline or at the end of the datagram.

        Returns None for a datagram with nothing in it (empty, or only newlines), which Flume counts as a read
        failure and drops.
        """
        self._mode, self._carry, self._prio, self._bad = _START, b"", b"", False
        events: list[Event] = []
        rest = self._scan(data, events, udp=True)
        if events:
            return events[0]
        if self._mode == _START:
            return None
        self._mode = _START
        return self._event(rest, incomplete=False)

    def framed(self, pieces: list[tuple[bytes, bool, bool]]) -> list[Event]:
        """Events for octet-counted messages (:class:`~sources.syslog.framing.OctetCountedFrames` pieces): a
        message's first piece is parsed (flagged Incomplete when the message goes on), a later piece is Invalid,
        as the rest of a cut line is."""
        events = []
        for raw, first, cut in pieces:
            if not raw:  # an empty message, like an empty line, is no event
                continue
            m = _PRI.match(raw) if first else None
            self._prio, self._bad = (m.group(1), False) if m is not None else (b"", True)
            events.append(self._event(raw, incomplete=cut, framed=True))
        return events

    def _scan(self, data: bytes, events: list[Event], udp: bool) -> bytes:
        """Run the state machine over ``data``; for UDP, return the unfinished message's bytes."""
        n = len(data)
        pos = 0
        start = 0  # first byte of the current message in this chunk (earlier bytes are in self._carry)
        mode = self._mode
        max_size = self.max_size
        while pos < n:
            if mode != _DATA:
                pos, mode, start = self._head(data, pos, mode, start)
                continue
            # DATA: up to the newline, or until the message reaches max_size bytes
            size = len(self._carry) + pos - start
            limit = max(1, max_size - size)
            nl = data.find(b"\n", pos, pos + limit)
            if nl >= 0:
                raw = data[start:nl] if not self._carry else self._carry + data[start:nl]
                pos = nl + 1
                events.append(self._event(raw, incomplete=False))
            elif pos + limit <= n:
                pos += limit
                raw = data[start:pos] if not self._carry else self._carry + data[start:pos]
                events.append(self._event(raw, incomplete=True))
            else:
                pos = n
                break
            self._carry = b""
            mode = _START
            if udp:  # the rest of a datagram after its first message is not read (as in Flume)
                self._mode = _START
                return b""
        self._mode = mode
        if mode == _START:
            return b""
        if udp:
            return data[start:]
        self._carry = self._carry + data[start:] if self._carry else data[start:]
        return b""

    def _head(self, data: bytes, pos: int, mode: int, start: int) -> tuple[int, int, int]:
        """One step of the START or PRIO state at ``data[pos]``: the next position, state and message start."""
        b = data[pos]
        if mode == _PRIO:
            if b == 62:  # '>'
                if not self._prio:
                    self._bad = True
                return pos + 1, _DATA, start
            if 48 <= b <= 57 and len(self._prio) < 3:
                self._prio += bytes((b,))
                return pos + 1, _PRIO, start
            self._bad = True
            return pos + 1, _DATA, start
        if b == 10:  # newlines between messages are skipped
            return pos + 1, _START, start
        m = _PRI.match(data, pos)
        if m is not None:
            self._prio = m.group(1)
            return m.end(), _DATA, pos
        if b == 60:  # '<' whose priority is bad or continues in the next chunk
            return pos + 1, _PRIO, pos
        self._bad = True  # no '<': the whole line is data
        return pos + 1, _DATA, pos

    def _event(self, raw: bytes, incomplete: bool, framed: bool = False) -> Event:
        """Flume's buildEvent + formatHeaders for one message (``raw`` without its newline)."""
        bad = self._bad
        prio = self._prio
        self._prio = b""
        self._bad = False
        if not bad and not prio:
            bad = True  # a datagram that is only '<': Flume fails on Integer.parseInt(""); we keep it as Invalid
        headers: dict[str, str] = {}
        body = None
        if bad:
            headers["Facility"] = "0"
            headers["Severity"] = "0"
        else:
            pri = int(prio)
            headers["Facility"] = str(pri // 8)
            headers["Severity"] = str(pri % 8)
            text = raw.decode("utf-8", "replace")
            m = (_RFC5424_FRAMED if framed else _RFC5424).fullmatch(text)
            rfc3164 = m is None
            if rfc3164:
                m = (_RFC3164_FRAMED if framed else _RFC3164).fullmatch(text)
            if m is not None:
                priority, version, stamp, host, message = m.groups()
                if priority:
                    headers["priority"] = priority
                if version:
                    headers["version"] = version
                if stamp is not None:
                    ms = (_utils_rfc3164_ms(stamp, int(self.now() * 1000)) if rfc3164
                          else _utils_rfc5424_ms(stamp))
                    if ms is not None:
                        headers["timestamp"] = str(ms)
                if host:
                    headers["host"] = host
                if self.keep is not KEEP_ALL:
                    message = add_fields_to_body(self.keep, message, priority, version, stamp, host)
                    if message:
                        body = message.encode("utf-8", "replace")
        if bad:
            headers[STATUS_HEADER] = INVALID
        elif incomplete:
            headers[STATUS_HEADER] = INCOMPLETE
        return Event(raw if body is None else body, headers)
