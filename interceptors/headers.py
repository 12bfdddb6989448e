"""Header interceptors: timestamp, host, static, remove_header and UUID (Flume's names, properties, defaults)."""

from __future__ import annotations

import re
import socket
import time
import uuid

from agent.core import Batch, Event, Interceptor
from agent.spec import Conf, Prop, Spec

__all__ = ["TimestampInterceptor", "HostInterceptor", "StaticInterceptor", "RemoveHeaderInterceptor",
           "UUIDInterceptor"]


def _set_header(events: list[Event], key: str, value: str, preserve: bool) -> list[Event]:
    """Put ``key = value`` on every event of the batch; with ``preserve``, keep a value already there."""
    if preserve:
        for e in events:
            e.headers.setdefault(key, value)
    else:
        for e in events:
            e.headers[key] = value
    return events


class TimestampInterceptor(Interceptor):
    """Puts the time the event passed the source (epoch milliseconds) in a header."""

    alias = "timestamp"
    flume_class = "org.apache.flume.interceptor.TimestampInterceptor$Builder"
    spec = Spec(
        Prop("headerName", "str", "timestamp", "Header that gets the time."),
        Prop("preserveExisting", "bool", False, "Keep a header that is already set."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.header = self.config.header_name
        self.preserve = self.config.preserve_existing

    def intercept(self, events: list[Event]) -> list[Event]:
        return _set_header(events, self.header, str(int(time.time() * 1000)), self.preserve)  # one clock read

    def intercept_batch(self, batch: Batch) -> Batch:
        batch.with_header(self.header, str(int(time.time() * 1000)), self.preserve)  # one value for the batch
        return batch


class HostInterceptor(Interceptor):
    """Puts the agent host's IP address (or host name) in a header."""

    alias = "host"
    flume_class = "org.apache.flume.interceptor.HostInterceptor$Builder"
    spec = Spec(
        Prop("hostHeader", "str", "host", "Header that gets the host."),
        Prop("useIP", "bool", True, "Use the IP address; false uses the canonical host name."),
        Prop("preserveExisting", "bool", False, "Keep a header that is already set."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.header = self.config.host_header
        self.use_ip = self.config.use_ip
        self.preserve = self.config.preserve_existing
        self.host: str | None = None

    def start(self) -> None:
        try:
            name = socket.gethostname()
            self.host = socket.gethostbyname(name) if self.use_ip else socket.getfqdn(name)
        except OSError as exc:
            self.log.warning("interceptor %s: could not resolve the local host (%s); no %s header will be added",
                             self.name, exc, self.header)
            self.host = None

    def intercept(self, events: list[Event]) -> list[Event]:
        if self.host is None:
            return events
        return _set_header(events, self.header, self.host, self.preserve)

    def intercept_batch(self, batch: Batch) -> Batch:
        if self.host is not None:
            batch.with_header(self.header, self.host, self.preserve)
        return batch


class StaticInterceptor(Interceptor):
    """Puts a fixed header on every event."""

    alias = "static"
    flume_class = "org.apache.flume.interceptor.StaticInterceptor$Builder"
    spec = Spec(
        Prop("key", "str", "key", "Header name."),
        Prop("value", "str", "value", "Header value."),
        Prop("preserveExisting", "bool", True, "Keep a header that is already set."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.key = self.config.key
        self.value = self.config.value
        self.preserve = self.config.preserve_existing

    def intercept(self, events: list[Event]) -> list[Event]:
        return _set_header(events, self.key, self.value, self.preserve)

    def intercept_batch(self, batch: Batch) -> Batch:
        batch.with_header(self.key, self.value, self.preserve)
        return batch


class RemoveHeaderInterceptor(Interceptor):
    """Removes headers by name, by a list of names, or by a regular expression on the name."""

    alias = "remove_header"
    flume_class = "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder"
    spec = Spec(
        Prop("withName", "str", None, "Name of one header to remove."),
        Prop("fromList", "str", None, "Names of headers to remove, separated by fromListSeparator."),
        Prop("fromListSeparator", "str", r"\s*,\s*", "Regular expression separating the names in fromList."),
        Prop("matching", "str", None, "Remove every header whose whole name matches this regular expression."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        names: set[str] = set()
        if c.with_name:
            names.add(c.with_name)
        if c.from_list:
            try:
                names.update(n for n in re.split(c.from_list_separator, c.from_list) if n)
            except re.error as exc:
                conf.error(f"invalid regular expression: {exc}", "fromListSeparator")
        self.names = frozenset(names)
        self.matching = None
        if c.matching:
            try:
                self.matching = re.compile(c.matching)
            except re.error as exc:
                conf.error(f"invalid regular expression: {exc}", "matching")

    def intercept(self, events: list[Event]) -> list[Event]:
        names, matching = self.names, self.matching
        if not names and matching is None:
            return events
        for e in events:
            h = e.headers
            if not h:
                continue
            for k in [k for k in h if k in names or (matching is not None and matching.fullmatch(k))]:
                del h[k]
        return events

    def intercept_batch(self, batch: Batch) -> Batch:
        shared = batch.shared
        if shared:
            matching = self.matching
            for k in [k for k in shared if k in self.names or (matching is not None and matching.fullmatch(k))]:
                batch.without_header(k)
        return batch


class UUIDInterceptor(Interceptor):
    """Puts a random UUID (optionally prefixed) in a header, e.g. to de-duplicate downstream."""

    alias = None
    flume_class = "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder"
    spec = Spec(
        Prop("headerName", "str", "id", "Header that gets the UUID."),
        Prop("preserveExisting", "bool", True, "Keep a header that is already set."),
        Prop("prefix", "str", "", "Text put before each UUID."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.header = self.config.header_name
        self.preserve = self.config.preserve_existing
        self.prefix = self.config.prefix

    def intercept(self, events: list[Event]) -> list[Event]:
        h, p, new = self.header, self.prefix, uuid.uuid4
        for e in events:
            if self.preserve and h in e.headers:
                continue
            e.headers[h] = p + str(new())
        return events
