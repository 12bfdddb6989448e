"""What both syslog parsers share: the ``flume.syslog.status`` header, ``keepFields``, and Java's date arithmetic.

``keepFields`` decides which parsed fields stay in the body (Flume's ``SyslogUtils.chooseFieldsToKeep`` and
``addFieldsToBody``). The time helpers reproduce a lenient ``SimpleDateFormat`` / ``Calendar`` (fields that
overflow roll over, ``Calendar.add(MONTH)`` clamps the day) and Flume's year window for RFC 3164 times, which carry
no year.
"""

from __future__ import annotations

import calendar
import functools
import time
from collections.abc import Callable
from datetime import datetime, timedelta

__all__ = [
    "STATUS_HEADER",
    "INVALID",
    "INCOMPLETE",
    "KEEP_ALL",
    "FIELDS",
    "MONTHS",
    "choose_fields_to_keep",
    "add_fields_to_body",
    "lenient",
    "add_months",
    "local_ms",
    "utc_ms",
    "year_window",
]

STATUS_HEADER = "flume.syslog.status"
INVALID = "Invalid"
INCOMPLETE = "Incomplete"
#: The keepFields value that keeps the whole original message as the body.
KEEP_ALL = frozenset({"--all--"})
FIELDS = ("priority", "version", "timestamp", "hostname")


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
    return frozenset(f for f in FIELDS if f in low)  # substring match, as Flume's indexOf


def add_fields_to_body(keep: frozenset[str] | None, body: str, priority: str | None, version: str | None,
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


# --------------------------------------------------------------------------------------------------------------
# Time helpers (Java's lenient SimpleDateFormat arithmetic, Calendar.add clamping)

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_name) if m})


def lenient(year: int, month: int, day: int, hour: int, minute: int, second: int, ms: int = 0) -> datetime:
    """A naive datetime from fields that may overflow (month 13, hour 25), rolled over like a lenient Calendar."""
    carry, month0 = divmod(month - 1, 12)
    base = datetime(year + carry, month0 + 1, 1)
    return base + timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second, milliseconds=ms)


def add_months(dt: datetime, months: int) -> datetime:
    """Calendar.add(MONTH, n): the day is clamped to the length of the target month."""
    carry, month0 = divmod(dt.month - 1 + months, 12)
    year = dt.year + carry
    day = min(dt.day, calendar.monthrange(year, month0 + 1)[1])
    return dt.replace(year=year, month=month0 + 1, day=day)


def local_ms(dt: datetime) -> int:
    """Epoch milliseconds of a naive local time (the JVM's default time zone is the process's)."""
    return int(time.mktime(dt.timetuple())) * 1000 + dt.microsecond // 1000


def utc_ms(dt: datetime) -> int:
    return calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000


def year_window(parsed: datetime, now_ms: int, to_ms: Callable[[datetime], int]) -> int:
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
    return (to_ms(parsed), to_ms(add_months(parsed, -1)), to_ms(add_months(parsed, 11)),
            to_ms(add_months(parsed, -12)), to_ms(add_months(parsed, 12)))
