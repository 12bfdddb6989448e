"""Flume's path escapes (BucketPath), checked against the examples in Flume's own tests and guide."""

from __future__ import annotations

import socket

import pytest

from sinks.escapes import EscapeError, PathTemplate

TS = {"timestamp": "1339505674000"}  # 2012-06-12 12:54:34 UTC, a Tuesday


@pytest.mark.parametrize(("text", "expected"), [
    ("%Y-%m-%d %H:%M:%S", "2012-06-12 12:54:34"),
    ("%a %A %b %B", "Tue Tuesday Jun June"),
    ("%c", "Tue Jun 12 12:54:34 2012"),
    ("%D %e %j %k %l %I %p", "06/12/12 12 164 12 12 12 PM"),
    ("%s %t %y %n %z %%", "1339505674 1339505674000 12 6 +0000 %"),
    ("%{host}/%{missing}/x", "web1//x"),
    ("%Q", ""),
])
def test_escapes_in_utc(text: str, expected: str) -> None:
    assert PathTemplate(text, tz="UTC").resolve({**TS, "host": "web1"}) == expected


def test_rounding_keeps_t_as_given() -> None:
    p = PathTemplate("%H%M/%S %s %t", tz="UTC", round_unit="minute", round_value=10)
    assert p.resolve(TS) == "1250/00 1339505400 1339505674000"


def test_time_zone() -> None:
    assert PathTemplate("%H %z", tz="America/New_York").resolve(TS) == "08 -0400"


def test_missing_or_bad_timestamp_is_an_error_unless_local_time() -> None:
    with pytest.raises(EscapeError, match="Expected timestamp"):
        PathTemplate("%Y").resolve({})
    with pytest.raises(EscapeError, match="parse timestamp"):
        PathTemplate("%Y").resolve({"timestamp": "yesterday"})
    assert PathTemplate("%Y", tz="UTC", use_local_timestamp=True).resolve({}, now_ms=1339505674000) == "2012"
    assert PathTemplate("/static/%{h}").resolve({}) == "/static/"  # header escapes need no timestamp


def test_static_host_escapes() -> None:
    assert PathTemplate("%[localhost]").resolve({}) == socket.gethostname()
    with pytest.raises(EscapeError, match="localhost,IP,FQDN"):
        PathTemplate("%[nope]")
