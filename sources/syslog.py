"""Syslog sources: ``syslogtcp``, ``multiport_syslogtcp`` and ``syslogudp``, with Flume's two syslog parsers.

Flume has two parsers and pyflume keeps both, because their results differ:

- :class:`SyslogUtilsDecoder` (Flume's ``SyslogUtils``, used by ``syslogtcp`` and ``syslogudp``): a byte state
  machine that finds ``<PRI>``, then RFC 5424 and RFC 3164 regular expressions for the rest. Headers ``Facility``,
  ``Severity``, ``priority``, ``version``, ``timestamp`` (epoch ms), ``host``. Times without a zone, and RFC 5424
  times with fractional seconds (whose zone Flume ignores), are read in the local time zone; ``.5`` means 5 ms.
- :class:`SyslogParser` (Flume's ``SyslogParser``, used by ``multiport_syslogtcp``): a hand-written parser with
  headers ``Facility``, ``Severity``, ``Priority``, ``Version``, ``timestamp``, ``host``; times are UTC unless the
  message has a zone; ``.5`` means 500 ms.

A message the parser cannot read is kept, never dropped: its body is the raw text and the header
``flume.syslog.status`` is ``Invalid``. A message longer than ``eventSize`` is cut there and flagged ``Incomplete``;
the rest of it becomes the next event (flagged ``Invalid`` by the TCP parser, since it does not start with ``<``).
TCP messages end at ``\\n`` (no octet counting, as in Flume); a UDP datagram is one message.

``ssl = true`` serves the TCP sources over TLS with the key store settings of the avro and http sources
(:mod:`agent.tls`: PKCS12 or PEM, Flume's FLUME_SSL_* environment defaults); the framing inside is the same.
No TLS 1.3 session tickets are sent: a sender that never reads and closes at once would otherwise make its kernel
reset the connection, losing the messages the source had not read yet.

Each read chunk becomes one channel batch (``multiport_syslogtcp`` slices it by ``batchSize``). A full channel is
back-pressure: the connection stops being read while the same batch is retried; Flume drops the event instead.

Where pyflume differs from Flume 1.11 on purpose (each a Flume bug):
- Flume's SyslogUtils keeps ``priority``/``version`` from the previous message on a message that fails to parse;
  pyflume does not carry headers from one message to the next.
- Flume's SyslogParser dates an RFC 3164 time more than a month old in the year 2001 (it adjusts the year-2000
  parse result); pyflume uses the window SyslogUtils uses (11 months back, 1 month ahead of now).
- Inputs that make Flume's multiport handler throw and lose the rest of the read (an empty line, an RFC 5424 time
  that ends in its fraction, an impossible date) give an ``Invalid`` event here; empty lines are skipped.
- Flume drops a final message without its newline when the client closes; pyflume delivers it.
"""

from __future__ import annotations

import calendar
import codecs
import functools
import ipaddress
import re
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from agent.core import ChannelException, Event, EventDrivenSource, _rate_limited
from agent.spec import Conf, Prop, Spec
from agent.tls import HANDSHAKE_TIMEOUT, ServerTls, server_tls_props

__all__ = [
    "SyslogTcpSource",
    "MultiportSyslogTCPSource",
    "SyslogUDPSource",
    "SyslogUtilsDecoder",
    "SyslogParser",
    "split_lines",
    "choose_fields_to_keep",
    "KEEP_ALL",
    "STATUS_HEADER",
]

STATUS_HEADER = "flume.syslog.status"
INVALID = "Invalid"
INCOMPLETE = "Incomplete"
#: The keepFields value that keeps the whole original message as the body.
KEEP_ALL = frozenset({"--all--"})
_FIELDS = ("priority", "version", "timestamp", "hostname")

_CHUNK = 256 * 1024
_RETRY_MAX = 1.0


# --------------------------------------------------------------------------------------------------------------
# keepFields


def choose_fields_to_keep(text: str | None) -> frozenset[str] | None:
    """Flume's ``SyslogUtils.chooseFieldsToKeep``: None (none/false), KEEP_ALL (all/true), or the named fields."""
    if text is None:
        return None
    low = text.strip().lower()
    if low in ("false", "none"):
        return None
    if low in ("true", "all"):
        return KEEP_ALL
    return frozenset(f for f in _FIELDS if f in low)  # substring match, as Flume's indexOf


def _add_fields_to_body(keep: frozenset[str] | None, body: str, priority: str | None, version: str | None,
                        timestamp: str | None, hostname: str | None) -> str:
    """Put the kept fields back in front of the message: ``<pri>version timestamp hostname body``.

    A missing timestamp or host shows as ``null``, exactly as Flume's string concatenation does.
    """
    if not keep:
        return body
    if "hostname" in keep:
        body = f"{_null(hostname)} {body}"
    if "timestamp" in keep:
        body = f"{_null(timestamp)} {body}"
    if "version" in keep and version:
        body = f"{version} {body}"
    if "priority" in keep:
        body = f"<{_null(priority)}>{body}"
    return body


def _null(value: str | None) -> str:
    return "null" if value is None else value


def _keep_fields_prop(default_doc: str) -> Prop:
    return Prop("keepFields", "str", "none",
                "Which header fields stay in the body: none (the message only), all (the whole line), or any of "
                f"priority version timestamp hostname. true/false are older spellings of all/none.{default_doc}")


def _check_keep_fields(conf: Conf) -> frozenset[str] | None:
    text = conf["keepFields"]
    keep = choose_fields_to_keep(text)
    if keep is not None and keep is not KEEP_ALL:
        unknown = [w for w in re.split(r"[\s,]+", text.strip().lower()) if w and w not in _FIELDS]
        if unknown or not keep:
            conf.warn(f"keepFields = {text!r}: {', '.join(repr(u) for u in unknown) or 'no field'} not recognised; "
                      f"expected none, all, or any of {' '.join(_FIELDS)}", "keepFields")
    return keep


# --------------------------------------------------------------------------------------------------------------
# Time helpers (Java's lenient SimpleDateFormat arithmetic, Calendar.add clamping)

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_name) if m})


def _lenient(year: int, month: int, day: int, hour: int, minute: int, second: int, ms: int = 0) -> datetime:
    """A naive datetime from fields that may overflow (month 13, hour 25), rolled over like a lenient Calendar."""
    carry, month0 = divmod(month - 1, 12)
    base = datetime(year + carry, month0 + 1, 1)
    return base + timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second, milliseconds=ms)


def _add_months(dt: datetime, months: int) -> datetime:
    """Calendar.add(MONTH, n): the day is clamped to the length of the target month."""
    carry, month0 = divmod(dt.month - 1 + months, 12)
    year = dt.year + carry
    day = min(dt.day, calendar.monthrange(year, month0 + 1)[1])
    return dt.replace(year=year, month=month0 + 1, day=day)


def _local_ms(dt: datetime) -> int:
    """Epoch milliseconds of a naive local time (the JVM's default time zone is the process's)."""
    return int(time.mktime(dt.timetuple())) * 1000 + dt.microsecond // 1000


def _utc_ms(dt: datetime) -> int:
    return calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000


def _year_window(parsed: datetime, now_ms: int, to_ms: Callable[[datetime], int]) -> int:
    """Guess the year of an RFC 3164 time: up to 1 month ahead of now, up to 11 months behind (Flume's window)."""
    t, month_before, eleven_after, year_before, year_after = _window_times(parsed, to_ms, time.timezone,
                                                                          time.altzone)
    if t > now_ms and month_before > now_ms:
        return year_before
    if t < now_ms and eleven_after < now_ms:
        return year_after
    return t


@functools.lru_cache(maxsize=4096)  # they do not depend on now: computed once per distinct time (and zone)
def _window_times(parsed: datetime, to_ms: Callable[[datetime], int], _zone: int,
                  _dst_zone: int) -> tuple[int, int, int, int, int]:
    return (to_ms(parsed), to_ms(_add_months(parsed, -1)), to_ms(_add_months(parsed, 11)),
            to_ms(_add_months(parsed, -12)), to_ms(_add_months(parsed, 12)))


# --------------------------------------------------------------------------------------------------------------
# SyslogUtils: syslogtcp and syslogudp

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
            return _local_ms(_lenient(int(y), int(mo), int(d), int(h), int(mi), int(s), int(frac)))
        if sign is not None:
            utc = _utc_ms(_lenient(int(y), int(mo), int(d), int(h), int(mi), int(s)))
            offset = (int(tzh) * 60 + int(tzm)) * 60000
            return utc - offset if sign == "+" else utc + offset
        return _local_ms(_lenient(int(y), int(mo), int(d), int(h), int(mi), int(s)))
    except (ValueError, OverflowError):
        return None


def _utils_rfc3164_ms(stamp: str, now_ms: int) -> int | None:
    """SyslogUtils' RFC 3164 time: the current (UTC) year is prepended, local time zone, Flume's year window."""
    parsed = _rfc3164_parsed(time.gmtime(now_ms / 1000).tm_year, stamp)
    if parsed is None:
        return None
    try:
        return _year_window(parsed, now_ms, _local_ms)
    except (ValueError, OverflowError):
        return None


@functools.lru_cache(maxsize=4096)
def _rfc3164_parsed(year: int, stamp: str) -> datetime | None:
    m = _STAMP_3164.fullmatch(f"{year}{stamp.replace('  ', ' ')}")
    month = _MONTHS.get(m.group(2).lower()) if m else None
    if m is None or month is None:
        return None
    try:
        return _lenient(int(m.group(1)), month, int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(6)))
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

    def _scan(self, data: bytes, events: list[Event], udp: bool) -> bytes:
        """Run the state machine over ``data``; for UDP, return the unfinished message's bytes."""
        n = len(data)
        pos = 0
        start = 0  # first byte of the current message in this chunk (earlier bytes are in self._carry)
        mode = self._mode
        max_size = self.max_size
        while pos < n:
            if mode == _START:
                if data[pos] == 10:  # newlines between messages are skipped
                    pos += 1
                    continue
                start = pos
                m = _PRI.match(data, pos)
                if m is not None:
                    self._prio = m.group(1)
                    pos = m.end()
                    mode = _DATA
                    continue
                if data[pos] == 60:  # '<' whose priority is bad or continues in the next chunk
                    pos += 1
                    mode = _PRIO
                    continue
                self._bad = True  # no '<': the whole line is data
                pos += 1
                mode = _DATA
                continue
            if mode == _PRIO:
                b = data[pos]
                pos += 1
                if b == 62:  # '>'
                    if not self._prio:
                        self._bad = True
                    mode = _DATA
                elif 48 <= b <= 57 and len(self._prio) < 3:
                    self._prio += bytes((b,))
                else:
                    self._bad = True
                    mode = _DATA
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

    def _event(self, raw: bytes, incomplete: bool) -> Event:
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
            m = _RFC5424.fullmatch(text)
            rfc3164 = m is None
            if rfc3164:
                m = _RFC3164.fullmatch(text)
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
                    message = _add_fields_to_body(self.keep, message, priority, version, stamp, host)
                    if message:
                        body = message.encode("utf-8", "replace")
        if bad:
            headers[STATUS_HEADER] = INVALID
        elif incomplete:
            headers[STATUS_HEADER] = INCOMPLETE
        return Event(raw if body is None else body, headers)


# --------------------------------------------------------------------------------------------------------------
# SyslogParser: multiport_syslogtcp

_PREFIX_5424 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})", re.ASCII)
_TIME_3164 = re.compile(r"([A-Za-z]{3,9}) (\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})", re.ASCII)
_JAVA_INT = re.compile(r"[+-]?\d+")
_LONG_MAX = 2**63 - 1


class SyslogParser:
    """Flume's SyslogParser (multiport_syslogtcp): one decoded line in, headers and body text out.

    ``parse(msg, keep)`` raises ValueError with Flume's reason when the line is not syslog; the caller then keeps
    the line as an ``Invalid`` event.
    """

    def __init__(self, now: Callable[[], float] = time.time):
        self.now = now
        self._cache: dict[str, int] = {}  # RFC 5424 "yyyy-MM-ddTHH:mm:ss" → epoch ms (Flume caches 1000)

    def parse(self, msg: str, keep: frozenset[str] | None) -> tuple[dict[str, str], str]:
        n = len(msg)
        if not n or msg[0] != "<":
            raise ValueError("Bad format: invalid priority: cannot find open bracket '<'")
        end = msg.find(">")
        if not 0 < end <= 6:
            raise ValueError("Bad format: invalid priority: cannot find end bracket '>'")
        priority = msg[1:end]
        if not _JAVA_INT.fullmatch(priority):
            raise ValueError(f"Bad format: invalid priority {priority!r}")
        pri = int(priority)
        facility = abs(pri) // 8 * (1 if pri >= 0 else -1)  # Java's truncating division and remainder
        headers = {"Facility": str(facility), "Severity": str(pri - facility * 8), "Priority": priority}
        if n <= end + 1:
            raise ValueError("Bad format: no data except priority")
        cur = end + 1
        version = None
        if n > cur + 2 and msg[cur:cur + 2] == "1 ":
            version = "1"
            headers["Version"] = version
            cur += 2
        first = msg[cur]
        if first == "-":
            stamp = "-"
            ts = int(self.now() * 1000)
            if n <= cur + 2:
                raise ValueError("bad syslog format (missing hostname)")
            cur += 2
        elif "A" <= first <= "Z":
            if n <= cur + 15:
                raise ValueError("bad timestamp format")
            stamp = msg[cur:cur + 15]
            ts = self._rfc3164_ms(stamp)
            cur += 16
        else:
            space = msg.find(" ", cur)
            if space == -1:
                raise ValueError("bad timestamp format")
            stamp = msg[cur:space]
            ts = self._rfc5424_ms(stamp)
            cur = space + 1
        headers["timestamp"] = str(ts)
        space = msg.find(" ", cur)
        if space == -1:
            raise ValueError("bad syslog format (missing hostname)")
        host = msg[cur:space]
        headers["host"] = host
        if n > space + 1 and keep is not KEEP_ALL:
            data = _add_fields_to_body(keep, msg[space + 1:], priority, version, stamp, host)
        else:
            data = msg
        return headers, data

    def _rfc5424_ms(self, stamp: str) -> int:
        n = len(stamp)
        if n <= 19:
            raise ValueError(f"Bad format: Not a valid RFC5424 timestamp: {stamp}")
        prefix = stamp[:19]
        ts = self._cache.get(prefix)
        if ts is None:
            m = _PREFIX_5424.fullmatch(prefix)
            if m is None:
                raise ValueError(f"bad timestamp format: {stamp}")
            try:
                ts = _utc_ms(datetime(*map(int, m.groups())))  # strict, as Joda
            except ValueError:
                raise ValueError(f"bad timestamp format: {stamp}") from None
            if len(self._cache) >= 1000:
                self._cache.clear()
            self._cache[prefix] = ts
        cur = 19
        if stamp[cur] == ".":
            end = cur + 1
            if n <= end:
                raise ValueError("bad timestamp format (no TZ)")
            while end < n and "0" <= stamp[end] <= "9":
                end += 1
            digits = end - cur - 1
            if end == n or digits == 0:
                raise ValueError(f"Bad format: Invalid timestamp (fractional portion): {stamp}")
            ms = int(stamp[cur + 1:end])
            if ms > _LONG_MAX:
                raise ValueError(f"Bad format: Invalid timestamp (fractional portion): {stamp}")
            if digits > 3:
                ms = int(ms / 10.0 ** (digits - 3))  # Java: long /= Math.pow(...)
            elif digits < 3:
                ms *= 10 ** (3 - digits)
            ts += ms
            cur = end
        sign = stamp[cur]
        if sign in "+-":
            if n <= cur + 5:
                raise ValueError(f"Bad format: Invalid timezone ({stamp})")
            zone = stamp[cur + 1:cur + 6]
            if not (zone.isascii() and zone[0:2].isdigit() and zone[2] == ":" and zone[3:5].isdigit()):
                raise ValueError(f"Bad format: Invalid timezone: {stamp}")
            offset = (int(zone[0:2]) * 60 + int(zone[3:5])) * 60000
            ts = ts - offset if sign == "+" else ts + offset
        return ts  # 'Z' or anything else: UTC

    def _rfc3164_ms(self, stamp: str) -> int:
        """``MMM d HH:mm:ss`` in UTC, or 0 when it does not parse (as Flume)."""
        m = _TIME_3164.fullmatch(stamp.replace("  ", " ", 1))
        month = _MONTHS.get(m.group(1).lower()) if m else None
        if m is None or month is None:
            return 0
        day, hour, minute, second = (int(g) for g in m.groups()[1:])
        if not (1 <= day <= calendar.monthrange(2000, month)[1] and hour < 24 and minute < 60 and second < 60):
            return 0
        now_ms = int(self.now() * 1000)
        year = time.localtime(now_ms / 1000).tm_year
        day = min(day, calendar.monthrange(year, month)[1])  # Feb 29 in a common year: Feb 28, as Joda's withYear
        parsed = datetime(year, month, day, hour, minute, second)
        return _year_window(parsed, now_ms, _utc_ms)


def split_lines(data: bytes, saved: bytes, max_len: int) -> tuple[list[tuple[bytes, bool]], bytes]:
    """Flume's LineSplitter: ``(line, incomplete)`` pairs and the unfinished rest.

    A line ends at ``\\n`` (not included). A line that reaches ``max_len`` bytes without one is cut there and
    flagged incomplete; its rest starts the next line.
    """
    out: list[tuple[bytes, bool]] = []
    n = len(data)
    pos = 0
    while pos < n:
        room = max_len - len(saved)
        nl = data.find(b"\n", pos, pos + room)
        if nl >= 0:
            out.append((saved + data[pos:nl] if saved else data[pos:nl], False))
            pos = nl + 1
        elif pos + room <= n:
            out.append((saved + data[pos:pos + room] if saved else data[pos:pos + room], True))
            pos += room
        else:
            return out, saved + data[pos:]
        saved = b""
    return out, saved


# --------------------------------------------------------------------------------------------------------------
# Shared source plumbing

_SSL_PROPS = server_tls_props("syslog over TLS (one message per line, as on plain TCP)")
_CLIENT_PROPS = (
    Prop("clientIPHeader", "str", None, "Header that gets the client's IP address (do not reuse a syslog header)."),
    Prop("clientHostnameHeader", "str", None,
         "Header that gets the client's host name, by reverse DNS lookup (cached per connection)."),
)
_FORMAT_PROP = Prop("format.", prefix=True,
                    doc="Flume's undocumented extra format (format.regex, search, replace, dateFormat): not "
                        "supported yet, rejected.")


def _reject_unsupported(conf: Conf) -> None:
    for key in conf.sub("format."):
        conf.error("format.* (an extra syslog format) is not supported yet", "format." + key)


def _java_host_address(ip: str) -> str:
    """The client address as Java's getHostAddress prints it (IPv4-mapped IPv6 as IPv4, IPv6 uncompressed)."""
    if ":" not in ip:
        return ip
    addr, _, scope = ip.partition("%")
    try:
        v6 = ipaddress.IPv6Address(addr)
    except ValueError:
        return ip
    if v6.ipv4_mapped is not None:
        return str(v6.ipv4_mapped)
    text = ":".join(group.lstrip("0") or "0" for group in v6.exploded.split(":"))
    return f"{text}%{scope}" if scope else text


def _hostname(ip: str) -> str:
    try:
        return socket.gethostbyaddr(ip)[0]
    except (OSError, UnicodeError):
        return ip


def _family_and_host(host: str | None) -> tuple[socket.AddressFamily, str, bool]:
    """Where to bind: a given host as is; no host means every interface, IPv6 and IPv4 when the system can."""
    if host:
        return (socket.AF_INET6 if ":" in host else socket.AF_INET), host, False
    if socket.has_dualstack_ipv6():
        return socket.AF_INET6, "::", True
    return socket.AF_INET, "0.0.0.0", False


class _SyslogSource(EventDrivenSource):
    """What the three syslog sources share: client headers, delivery with retry, counters."""

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.host: str | None = conf.get("host")
        self.keep = _check_keep_fields(conf)
        self.ip_header: str | None = conf.get("clientIPHeader")
        self.hostname_header: str | None = conf.get("clientHostnameHeader")
        self._running = False
        self._crash: str | None = None

    def failed(self) -> str | None:
        return self._crash

    def _client_headers(self, ip: str) -> dict[str, str]:
        address = _java_host_address(ip)
        extra: dict[str, str] = {}
        if self.ip_header:
            extra[self.ip_header] = address
        if self.hostname_header:
            extra[self.hostname_header] = _hostname(address)
        return extra

    def _deliver(self, events: list[Event]) -> bool:
        """Put the events; retry while the channel is full. False when the source stopped before it succeeded.

        Sliced by the channels' transactionCapacity here, so a retry repeats only the slice that failed.
        """
        limit = self.channel_processor.max_batch if self.channel_processor is not None else 0
        if limit and len(events) > limit:
            return all(self._deliver_batch(events[i:i + limit]) for i in range(0, len(events), limit))
        return self._deliver_batch(events)

    def _deliver_batch(self, events: list[Event]) -> bool:
        proc = self.channel_processor
        assert proc is not None
        counter = self.counter
        n = len(events)
        with counter.lock:
            counter.event_received += n
        delay = 0.01
        while True:
            try:
                proc.process_batch(events)
                break
            except ChannelException as exc:
                with counter.lock:
                    counter.channel_write_fail += 1
                if not self._running:
                    return False
                _rate_limited(self.log, f"Source {self.name}: channel refused a batch of {n} syslog events "
                                        f"({exc}); holding the connection and retrying")
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
        with counter.lock:
            counter.event_accepted += n
        return True


class _TcpListeners:
    """Listens on one or more TCP ports: one thread accepts on all of them, each connection gets a thread."""

    def __init__(self, source: _SyslogSource, ports: list[int],
                 serve: Callable[[socket.socket, int, str], None], tls: ServerTls | None = None):
        self.source = source
        # read from the key store here, at start: a missing or wrong file fails the start, naming the file
        self.context: ssl.SSLContext | None = tls.context(session_tickets=False) if tls is not None else None
        self.requested = ports
        self.ports: list[int] = []
        self.serve = serve
        self._listeners: list[socket.socket] = []
        self._conns: dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None

    def start(self) -> None:
        family, host, dual = _family_and_host(self.source.host)
        try:
            for port in self.requested:
                try:
                    srv = socket.create_server((host, port), family=family, backlog=128, dualstack_ipv6=dual)
                except OSError as exc:
                    raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
                self._listeners.append(srv)
                self.ports.append(srv.getsockname()[1])
        except OSError:
            self.close_listeners()
            raise
        sel = selectors.DefaultSelector()
        for srv in self._listeners:
            srv.setblocking(False)
            sel.register(srv, selectors.EVENT_READ)
        self._selector = sel
        self._thread = threading.Thread(target=self._accept_loop, name=f"syslog-{self.source.name}-accept",
                                        daemon=True)
        self._thread.start()

    def close_listeners(self) -> None:
        for srv in self._listeners:
            srv.close()
        self._listeners = []

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join(2.0)  # the accept loop sees _running false within its select timeout
        if self._selector is not None:
            self._selector.close()
        self.close_listeners()
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept_loop(self) -> None:
        sel = self._selector
        assert sel is not None
        src = self.source
        while src._running:
            try:
                ready = sel.select(0.2)
            except (OSError, ValueError):
                if src._running:
                    src._crash = "the listening sockets failed"
                return
            for key, _ in ready:
                srv: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    conn, addr = srv.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    if src._running:
                        src._crash = "the listening socket failed"
                    return
                conn.setblocking(True)
                port = srv.getsockname()[1]
                t = threading.Thread(target=self._serve, args=(conn, port, addr[0]),
                                     name=f"syslog-{src.name}-{addr[1]}", daemon=True)
                with self._lock:
                    self._conns[id(conn)] = conn
                t.start()

    def _serve(self, conn: socket.socket, port: int, ip: str) -> None:
        try:
            if self.context is not None:
                raw = conn
                raw.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    conn = self.context.wrap_socket(raw, server_side=True)
                except OSError as exc:  # ssl.SSLError included: a client that does not speak TLS, a bad certificate
                    _rate_limited(self.source.log, f"Source {self.source.name}: TLS handshake with {ip} failed: "
                                                   f"{exc}")
                    return
                finally:
                    with self._lock:  # stop() shuts down what it finds here: the TLS socket from now on
                        self._conns.pop(id(raw), None)
                        self._conns[id(conn)] = conn
                conn.settimeout(None)
            self.serve(conn, port, ip)
        except OSError:
            pass
        except Exception:
            self.source.log.exception("Source %s: connection handler failed", self.source.name)
            with self.source.counter.lock:
                self.source.counter.generic_processing_fail += 1
        finally:
            with self._lock:
                self._conns.pop(id(conn), None)
            try:
                conn.close()
            except OSError:
                pass


# --------------------------------------------------------------------------------------------------------------
# The sources


class SyslogTcpSource(_SyslogSource):
    """Syslog over TCP, one message per line, parsed by Flume's SyslogUtils (RFC 5424, then RFC 3164)."""

    alias = "syslogtcp"
    flume_class = "org.apache.flume.source.SyslogTcpSource"
    spec = Spec(
        Prop("host", "str", None,
             "Host name or IP address to listen on (every interface when unset; the user guide marks it required, "
             "Flume's code does not)."),
        Prop("port", "int", required=True, doc="TCP port to listen on (0 picks a free port).", min=0, max=65535),
        Prop("eventSize", "int", 2500,
             "Longest message in bytes, priority included; a longer one is cut and flagged Incomplete.", min=1),
        _keep_fields_prop(""),
        *_CLIENT_PROPS,
        _FORMAT_PROP,
        *_SSL_PROPS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.event_size: int = conf["eventSize"]
        _reject_unsupported(conf)
        self._tls = ServerTls(conf) if conf["ssl"] else None
        self._listeners: _TcpListeners | None = None
        self.port: int = conf["port"]

    def start(self) -> None:
        self._running = True
        self._crash = None
        try:
            listeners = _TcpListeners(self, [self.port], self._serve, self._tls)
            listeners.start()
        except OSError:
            self._running = False
            raise
        self._listeners = listeners
        self.port = listeners.ports[0]
        self.log.info("Source %s listening for syslog on tcp %s:%d", self.name, self.host or "*", self.port)

    def stop(self) -> None:
        self._running = False
        if self._listeners is not None:
            self._listeners.stop()
            self._listeners = None
        self.log.info("Source %s stopped", self.name)

    def _serve(self, conn: socket.socket, port: int, ip: str) -> None:
        decoder = SyslogUtilsDecoder(self.event_size, self.keep)
        extra = self._client_headers(ip) if (self.ip_header or self.hostname_header) else None
        recv = conn.recv
        while self._running:
            chunk = recv(_CHUNK)
            if chunk:
                events = decoder.feed(chunk)
            else:
                last = decoder.finish()
                events = [last] if last is not None else []
            if events:
                if extra:
                    for e in events:
                        e.headers.update(extra)
                if not self._deliver(events):
                    return
            if not chunk:
                return


class MultiportSyslogTCPSource(_SyslogSource):
    """Syslog over TCP on several ports at once, parsed by Flume's SyslogParser, with a character set per port."""

    alias = "multiport_syslogtcp"
    flume_class = "org.apache.flume.source.MultiportSyslogTCPSource"
    batch_size_prop = "batchSize"
    spec = Spec(
        Prop("host", "str", None, "Host name or IP address to listen on (every interface when unset)."),
        Prop("ports", "list", required=True, doc="Space-separated TCP ports to listen on."),
        Prop("eventSize", "int", 2500,
             "Longest line in bytes; a longer one is cut there and flagged Incomplete.", min=1),
        _keep_fields_prop(""),
        Prop("portHeader", "str", None, "Header that gets the port the message arrived on."),
        *_CLIENT_PROPS,
        Prop("charset.default", "str", "UTF-8", "Character set of the messages (a line that does not decode is "
                                                "kept as raw bytes and flagged Invalid)."),
        Prop("charset.port.", prefix=True, doc="charset.port.<port> = the character set of that port's messages."),
        Prop("batchSize", "int", 100, "Most events per channel transaction.", min=1),
        # Flume's code reads readBufferBytes; its user guide documents readBufferSize, so both are accepted.
        Prop("readBufferBytes", "int", 1024,
             "Socket read size in bytes (also read as readBufferSize, the user guide's name); pyflume reads at "
             "least 64 KiB at a time.", min=1, aliases=("readBufferSize",)),
        Prop("numProcessors", "int", None,
             "Accepted and ignored: MINA's processor threads; pyflume serves each connection on its own thread.",
             min=1),
        *_SSL_PROPS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        _reject_unsupported(conf)
        self._tls = ServerTls(conf) if conf["ssl"] else None
        self.ports: list[int] = []
        for text in conf["ports"] or []:
            try:
                port = int(text, 10)
                if not 0 <= port <= 65535:
                    raise ValueError
            except ValueError:
                conf.error(f"{text!r} is not a port number (0-65535)", "ports")
                continue
            self.ports.append(port)
        self.max_len: int = conf["eventSize"]
        self.batch: int = conf["batchSize"]
        self.read_size = max(conf["readBufferBytes"], 64 * 1024)
        self.port_header: str | None = conf.get("portHeader")
        self.default_charset = self._charset(conf, conf["charset.default"], "charset.default")
        self.port_charsets: dict[int, str] = {}
        for key, value in conf.sub_text("charset.port.").items():
            if not key.isdigit():
                conf.error(f"{key!r} is not a port number", "charset.port." + key)
                continue
            self.port_charsets[int(key)] = self._charset(conf, value, "charset.port." + key)
        self._listeners: _TcpListeners | None = None

    @staticmethod
    def _charset(conf: Conf, name: str, prop: str) -> str:
        try:
            return codecs.lookup(name).name
        except LookupError:
            conf.error(f"unknown character set {name!r}", prop)
            return "utf-8"

    def start(self) -> None:
        self._running = True
        self._crash = None
        try:
            listeners = _TcpListeners(self, self.ports, self._serve, self._tls)
            listeners.start()
        except OSError:
            self._running = False
            raise
        self._listeners = listeners
        self.log.info("Source %s listening for syslog on tcp %s ports %s", self.name, self.host or "*",
                      " ".join(map(str, listeners.ports)))

    def stop(self) -> None:
        self._running = False
        if self._listeners is not None:
            self._listeners.stop()
            self._listeners = None
        self.log.info("Source %s stopped", self.name)

    def _serve(self, conn: socket.socket, port: int, ip: str) -> None:
        parser = SyslogParser()
        charset = self.port_charsets.get(port, self.default_charset)
        extra = self._client_headers(ip) if (self.ip_header or self.hostname_header) else {}
        if self.port_header:
            extra[self.port_header] = str(port)
        recv = conn.recv
        saved = b""
        while self._running:
            chunk = recv(self.read_size)
            if chunk:
                lines, saved = split_lines(chunk, saved, self.max_len)
            else:
                lines, saved = ([(saved, False)] if saved else []), b""
            events = [self._event(parser, line, incomplete, charset) for line, incomplete in lines if line]
            if extra:
                for e in events:
                    e.headers.update(extra)
            for i in range(0, len(events), self.batch):
                if not self._deliver(events[i:i + self.batch]):
                    return
            if not chunk:
                return

    def _event(self, parser: SyslogParser, line: bytes, incomplete: bool, charset: str) -> Event:
        try:
            msg = line.decode(charset)
        except UnicodeDecodeError:
            with self.counter.lock:
                self.counter.event_read_fail += 1
            return Event(line, {STATUS_HEADER: INVALID})
        try:
            headers, data = parser.parse(msg, self.keep)
        except ValueError:
            with self.counter.lock:
                self.counter.event_read_fail += 1
            return Event(msg.encode(charset, "replace"), {STATUS_HEADER: INVALID})
        if incomplete:
            headers[STATUS_HEADER] = INCOMPLETE
        return Event(data.encode(charset, "replace"), headers)


class SyslogUDPSource(_SyslogSource):
    """Syslog over UDP, one message per datagram, parsed by Flume's SyslogUtils."""

    alias = "syslogudp"
    flume_class = "org.apache.flume.source.SyslogUDPSource"
    spec = Spec(
        Prop("host", "str", None, "Host name or IP address to listen on (every interface when unset)."),
        Prop("port", "int", required=True, doc="UDP port to listen on (0 picks a free port).", min=0, max=65535),
        _keep_fields_prop(" (The user guide says false; Flume's code defaults to none, the same thing.)"),
        *_CLIENT_PROPS,
        _FORMAT_PROP,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        _reject_unsupported(conf)
        self.port: int = conf["port"]
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._hostnames: dict[str, dict[str, str]] = {}

    def start(self) -> None:
        family, host, dual = _family_and_host(self.host)
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if dual:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            s.bind((host, self.port))
        except OSError as exc:
            s.close()
            raise OSError(f"cannot listen on udp {host}:{self.port}: {exc.strerror or exc}") from None
        self.port = s.getsockname()[1]
        self._sock = s
        self._running = True
        self._crash = None
        self._thread = threading.Thread(target=self._loop, name=f"syslogudp-{self.name}", daemon=True)
        self._thread.start()
        self.log.info("Source %s listening for syslog on udp %s:%d", self.name, self.host or "*", self.port)

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.log.info("Source %s stopped", self.name)

    def _headers_for(self, ip: str) -> dict[str, str]:
        extra = self._hostnames.get(ip)
        if extra is None:
            if len(self._hostnames) >= 4096:
                self._hostnames.clear()
            extra = self._hostnames[ip] = self._client_headers(ip)
        return extra

    def _loop(self) -> None:
        s = self._sock
        assert s is not None
        s.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ)
        decoder = SyslogUtilsDecoder(1 << 16, self.keep)  # Flume: 64 KiB, the largest datagram
        client = bool(self.ip_header or self.hostname_header)
        recvfrom = s.recvfrom
        try:
            while self._running:
                if not sel.select(0.2):
                    continue
                batch = []
                while len(batch) < 1000:  # what is queued already becomes one batch
                    try:
                        batch.append(recvfrom(65536))
                    except (BlockingIOError, InterruptedError):
                        break
                events = []
                for data, addr in batch:
                    ev = decoder.datagram(data)
                    if ev is None:
                        with self.counter.lock:
                            self.counter.event_read_fail += 1
                        continue
                    if client:
                        ev.headers.update(self._headers_for(addr[0]))
                    events.append(ev)
                if events and not self._deliver(events):
                    return
        except (OSError, ValueError):
            if self._running:
                self._crash = "the UDP socket failed"
        finally:
            sel.close()
