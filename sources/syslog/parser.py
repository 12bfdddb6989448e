"""Flume's SyslogParser and LineSplitter, the parser of ``multiport_syslogtcp``: a hand-written parser of one
decoded line.

Headers ``Facility``, ``Severity``, ``Priority``, ``Version``, ``timestamp``, ``host``; times are UTC unless the
message has a zone; ``.5`` means 500 ms. A line longer than ``eventSize`` is cut there and flagged incomplete.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable
from datetime import datetime

from sources.syslog.fields import KEEP_ALL, MONTHS, add_fields_to_body, utc_ms, year_window

__all__ = ["SyslogParser", "split_lines"]

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
            data = add_fields_to_body(keep, msg[space + 1:], priority, version, stamp, host)
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
                ts = utc_ms(datetime(*map(int, m.groups())))  # strict, as Joda
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
        month = MONTHS.get(m.group(1).lower()) if m else None
        if m is None or month is None:
            return 0
        day, hour, minute, second = (int(g) for g in m.groups()[1:])
        if not (1 <= day <= calendar.monthrange(2000, month)[1] and hour < 24 and minute < 60 and second < 60):
            return 0
        now_ms = int(self.now() * 1000)
        year = time.localtime(now_ms / 1000).tm_year
        day = min(day, calendar.monthrange(year, month)[1])  # Feb 29 in a common year: Feb 28, as Joda's withYear
        parsed = datetime(year, month, day, hour, minute, second)
        return year_window(parsed, now_ms, utc_ms)


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
