"""Flume's path escapes (BucketPath): ``%{header}``, ``%Y %m %d ...``, ``%[localhost]``, with rounding and time zone.

Shared by the hdfs sink (path and file prefix) and the kafka sink (topic). The rules match Flume 1.11 exactly:
``%{name}`` is the header's value or "" when missing; every single-character escape (even ``%%``) needs the
``timestamp`` header (epoch milliseconds) unless ``useLocalTimeStamp`` is set; ``%t`` is the header as given (not
rounded); an unknown ``%x`` gives ""; ``%[x]`` other than localhost, IP, FQDN is an error. Names of days, months
and AM/PM are English, as with Flume's usual default locale.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["EscapeError", "has_escapes", "PathTemplate", "round_down"]

TAG = re.compile(r"%(\w|%)|%\{([\w.-]+)\}|%\[(\w+)\]")
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


class EscapeError(ValueError):
    """An event cannot be placed: no or bad timestamp header, or an unknown ``%[...]``."""


def has_escapes(text: str) -> bool:
    return TAG.search(text) is not None


@lru_cache(maxsize=1)
def _host() -> tuple[str, str, str]:
    name = socket.gethostname()
    try:
        ip = socket.gethostbyname(name)
    except OSError:
        ip = "127.0.0.1"
    return name, ip, socket.getfqdn(name)


def _static(key: str) -> str:
    name, ip, fqdn = _host()
    low = key.lower()
    if low == "localhost":
        return name
    if low == "ip":
        return ip
    if low == "fqdn":
        return fqdn
    raise EscapeError(f"The static escape string '{key}' was provided but does not match any of (localhost,IP,FQDN)")


def round_down(ts_ms: int, unit: str, value: int, tz: dt.tzinfo) -> int:
    """Flume's TimestampRoundDownUtil: round down to a multiple of ``value`` seconds/minutes/hours in ``tz``."""
    t = dt.datetime.fromtimestamp(ts_ms / 1000, tz)
    if unit == "second":
        t = t.replace(second=t.second - t.second % value, microsecond=0)
    elif unit == "minute":
        t = t.replace(minute=t.minute - t.minute % value, second=0, microsecond=0)
    elif unit == "hour":
        t = t.replace(hour=t.hour - t.hour % value, minute=0, second=0, microsecond=0)
    return int(t.timestamp() * 1000)


def _utc_offset(t: dt.datetime) -> str:
    off = t.utcoffset() or dt.timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


#: Flume's single-character time escapes (those of Unix date); any other character gives "".
_TIME_ESCAPES: dict[str, Callable[[dt.datetime], str]] = {
    "a": lambda t: _DAYS[t.weekday()][:3],
    "A": lambda t: _DAYS[t.weekday()],
    "b": lambda t: _MONTHS[t.month - 1][:3],
    "B": lambda t: _MONTHS[t.month - 1],
    "c": lambda t: f"{_DAYS[t.weekday()][:3]} {_MONTHS[t.month - 1][:3]} {t.day} {t:%H:%M:%S} {t.year:04d}",
    "d": lambda t: f"{t.day:02d}",
    "e": lambda t: str(t.day),
    "D": lambda t: f"{t.month:02d}/{t.day:02d}/{t.year % 100:02d}",
    "H": lambda t: f"{t.hour:02d}",
    "I": lambda t: f"{(t.hour % 12) or 12:02d}",
    "j": lambda t: f"{t.timetuple().tm_yday:03d}",
    "k": lambda t: str(t.hour),
    "l": lambda t: str((t.hour % 12) or 12),
    "m": lambda t: f"{t.month:02d}",
    "M": lambda t: f"{t.minute:02d}",
    "n": lambda t: str(t.month),
    "p": lambda t: "AM" if t.hour < 12 else "PM",
    "S": lambda t: f"{t.second:02d}",
    "y": lambda t: f"{t.year % 100:02d}",
    "Y": lambda t: f"{t.year:04d}",
    "z": _utc_offset,
}


def _format(c: str, t: dt.datetime) -> str:
    escape = _TIME_ESCAPES.get(c)
    return escape(t) if escape is not None else ""


class PathTemplate:
    """A string with escapes, resolved per event. Events with equal inputs share the result (one cache per batch)."""

    def __init__(self, text: str, *, tz: str | None = None, round_unit: str | None = None, round_value: int = 1,
                 use_local_timestamp: bool = False):
        self.text = text
        self.tz: dt.tzinfo = ZoneInfo(tz) if tz else dt.datetime.now().astimezone().tzinfo  # type: ignore[assignment]
        self.round_unit = round_unit
        self.round_value = max(round_value, 1)
        self.use_local = use_local_timestamp
        parts: list[tuple[str, str]] = []  # (kind, value): lit, hdr, static, time
        pos = 0
        for m in TAG.finditer(text):
            if m.start() > pos:
                parts.append(("lit", text[pos:m.start()]))
            if m.group(2) is not None:
                parts.append(("hdr", m.group(2)))
            elif m.group(3) is not None:
                parts.append(("lit", _static(m.group(3))))
            else:
                parts.append(("time", m.group(1)))
            pos = m.end()
        if pos < len(text):
            parts.append(("lit", text[pos:]))
        self.parts = parts
        self.needs_time = any(k == "time" for k, _ in parts)
        self.headers = [v for k, v in parts if k == "hdr"]
        self.static = not self.needs_time and not self.headers

    def resolve(self, headers: Mapping[str, str], now_ms: int | None = None) -> str:
        if self.static:
            return self.text if not self.parts else "".join(v for _, v in self.parts)
        ts_text = None
        t = None
        if self.needs_time:
            if self.use_local:
                ts = now_ms if now_ms is not None else int(time.time() * 1000)
                ts_text = str(ts)
            else:
                ts_text = headers.get("timestamp")
                if ts_text is None:
                    raise EscapeError("Expected timestamp in the Flume event headers, but it was null (add a "
                                      "timestamp interceptor, or set hdfs.useLocalTimeStamp = true)")
                try:
                    ts = int(ts_text)
                except ValueError:
                    raise EscapeError(f"Flume wasn't able to parse timestamp header '{ts_text}' in the event to "
                                      f"resolve time based bucketing (epoch milliseconds expected)") from None
            if self.round_unit:
                ts = round_down(ts, self.round_unit, self.round_value, self.tz)
            t = dt.datetime.fromtimestamp(ts / 1000, self.tz)
        out = []
        for kind, value in self.parts:
            if kind == "lit":
                out.append(value)
            elif kind == "hdr":
                out.append(headers.get(value, ""))
            elif value == "%":
                out.append("%")
            elif value == "t":
                out.append(ts_text or "")
            elif value == "s":
                out.append(str(int(t.timestamp())))  # type: ignore[union-attr]
            else:
                out.append(_format(value, t))  # type: ignore[arg-type]
        return "".join(out)
