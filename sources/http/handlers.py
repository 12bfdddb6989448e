"""HTTP source handlers: how one request becomes events (``handler`` of the http source, Flume's
HTTPSourceHandler).

Flume's three are built in: ``org.apache.flume.source.http.JSONHandler`` (the default: a JSON array of events),
``org.apache.flume.sink.solr.morphline.BlobHandler`` and ``org.apache.flume.source.http.BLOBHandler`` (the body as
one event). A handler of your own subclasses :class:`HTTPSourceHandler` and is named by its dotted Python path; its
``handler.*`` properties are checked against its ``spec``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from agent.core import Batch, Component, Event, _rate_limited
from agent.spec import Conf, Prop, Spec

__all__ = [
    "HTTPSourceHandler",
    "HTTPRequest",
    "HTTPBadRequestError",
    "JSONHandler",
    "BlobHandler",
    "BLOBHandler",
]


class HTTPBadRequestError(Exception):
    """Raised by a handler for a request the client must fix: the source answers 400 with this message."""


@dataclass(slots=True)
class HTTPRequest:
    """One request as a handler sees it: method, path, raw query, headers (case-insensitive), the whole body."""

    method: str
    path: str
    query: str
    headers: Message
    body: bytes
    client_address: tuple[str, int]
    _params: dict[str, list[str]] | None = field(default=None, init=False, repr=False)

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header as sent, or None."""
        return self.headers.get("Content-Type")

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of the Content-Type (lower case), or None (Servlet getCharacterEncoding)."""
        ctype = self.headers.get("Content-Type")
        if ctype is None or ";" not in ctype:  # no parameters: no charset (and no email parsing)
            return None
        return self.headers.get_content_charset()

    def is_form(self) -> bool:
        """A POST whose body is form parameters (``application/x-www-form-urlencoded``), read as parameters."""
        ctype = (self.content_type or "").split(";", 1)[0].strip().lower()
        return self.method == "POST" and ctype == "application/x-www-form-urlencoded"

    def parameters(self) -> dict[str, list[str]]:
        """Query parameters, then form parameters of a form POST, each name with its values in order (Servlet)."""
        if self._params is None:
            params: dict[str, list[str]] = {}
            pairs = parse_qsl(self.query, keep_blank_values=True, errors="replace")
            if self.is_form():
                charset = self.charset or "utf-8"
                pairs += parse_qsl(self.body.decode(charset, "replace"), keep_blank_values=True, encoding=charset,
                                   errors="replace")
            for k, v in pairs:
                params.setdefault(k, []).append(v)
            self._params = params
        return self._params


class HTTPSourceHandler(Component):
    """Turns one HTTP request into events (Flume's HTTPSourceHandler).

    Contract: ``__init__(name, conf)`` only reads its configuration: ``name`` is the source's, ``conf`` holds the
    ``handler.*`` properties checked against the class's ``spec`` (names without the ``handler.`` prefix), typed in
    ``self.config``; raise ConfigError for a bad setting. ``get_events(request)`` is called on the connection's
    thread, concurrently for different connections, and returns the request's events in order. Raise
    :class:`HTTPBadRequestError` for a request the client must fix (answered 400); any other exception is answered
    500. Events are committed to the channel before the client gets 200. ``log`` is the source's logger.
    """

    kind = "handler"

    def get_events(self, request: HTTPRequest) -> list[Event]:
        raise NotImplementedError


class JSONHandler(HTTPSourceHandler):
    """Flume's JSONHandler: a JSON array of ``{"headers": {...}, "body": "..."}``.

    Both fields may be missing (no headers, empty body). The body text is stored in the request's charset: UTF-8
    (the default), UTF-16 (big-endian with a byte-order mark, as Java writes it) or UTF-32 (big-endian); any other
    charset is answered 500. Numbers and booleans are taken as their text. Unlike Flume's lenient Gson, the JSON must
    be standard (no comments, single quotes or unquoted names), a header repeated in one object keeps its last
    value, and a header whose value is null is left out.
    """

    flume_class = "org.apache.flume.source.http.JSONHandler"

    def get_events(self, request: HTTPRequest) -> list[Event]:
        charset = request.charset or "utf-8"
        if charset not in ("utf-8", "utf-16", "utf-32"):
            raise ValueError(f"JSON handler supports UTF-8, UTF-16 and UTF-32 only, not {charset!r}.")
        body = request.body
        # (a one-byte search is a memchr, about a hundred times faster than looking for the two bytes \u)
        if charset == "utf-8" and not (b"\\" in body and _SURROGATE_ESCAPE_BYTES.search(body) is not None):
            # The common request, decoded straight from the bytes into typed objects by msgspec (no dict per
            # event): 190 µs for 1000 100-byte events with their bodies encoded, where orjson took 250 and json's C
            # decoder 330. Only the plain shape decodes: every item an object whose body (if any) is a string and
            # whose headers (if any) are strings. Numbers (kept as their text), nulls, a byte-order mark, bytes that
            # are not UTF-8 and every error go through json below, which keeps Flume's semantics and messages.
            try:
                items = _PLAIN_EVENTS.decode(body)
            except msgspec.DecodeError:
                pass
            else:
                return _plain_events(items)
        text = _java_decode(body, charset)
        if not text.strip(" \t\r\n"):
            raise ValueError("the request body is empty (expected a JSON array of events)")
        sanitize = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
        try:
            data = json.loads(text, parse_int=str, parse_float=str, parse_constant=str)
        except json.JSONDecodeError as exc:
            raise HTTPBadRequestError(f"Request has invalid JSON Syntax. ({exc})") from None
        except RecursionError:  # nesting deeper than the parser's stack: the client's fault, like any bad body
            raise HTTPBadRequestError("Request has invalid JSON Syntax. (nested too deeply)") from None
        if data is None:
            raise ValueError("the request body is JSON null (expected a JSON array of events)")
        if data.__class__ is not list:
            raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (expected an array of events, got "
                                      f"{_json_kind(data)})")
        events = []
        append = events.append
        for i, item in enumerate(data):
            if item.__class__ is not dict:
                if item is None:
                    raise ValueError(f"event {i} is null")
                raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (event {i}: expected an object, "
                                          f"got {_json_kind(item)})")
            headers = item.get("headers")
            if headers is None:
                headers = {}
            elif headers.__class__ is not dict:
                raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (event {i}: headers must be an "
                                          f"object, got {_json_kind(headers)})")
            else:
                for v in headers.values():
                    if v.__class__ is not str:
                        headers = _coerce_headers(headers, i)
                        break
            body = item.get("body")
            if body.__class__ is not str:
                body = _coerce_body(body, i)
            if sanitize:
                headers = {_clean(k): _clean(v) for k, v in headers.items()}
            append(Event(_java_encode(body, charset), headers))
        return events


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


class _PlainEvent(msgspec.Struct):
    """One item of the common request: its other fields are ignored, as Flume's Gson mapping does."""

    body: str = ""
    headers: dict[str, str] | None = None


_PLAIN_EVENTS = msgspec.json.Decoder(list[_PlainEvent])


def _plain_events(items: list[_PlainEvent]) -> Sequence[Event]:
    """The events of a plain request: a Batch (no Event made per item) when every item has the same headers
    (often none), else one Event each."""
    bodies = [item.body.encode() for item in items]
    heads = [item.headers for item in items]
    first = heads[0] if heads else None
    if heads.count(first) == len(heads):
        return Batch(bodies, first)
    return [Event(b, h or {}) for b, h in zip(bodies, heads, strict=True)]


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    return "a string or number"


def _coerce_headers(headers: dict[str, Any], i: int) -> dict[str, str]:
    out = {}
    for k, v in headers.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif not isinstance(v, str):
            raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (event {i}: header {k!r} must be a "
                                      f"string, got {_json_kind(v)})")
        out[k] = v
    return out


def _coerce_body(body: Any, i: int) -> str:
    if body is None:
        return ""
    if isinstance(body, bool):
        return "true" if body else "false"
    raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (event {i}: body must be a string, got "
                              f"{_json_kind(body)})")


def _clean(text: str) -> str:
    """A lone surrogate (from a ``\\ud800`` escape) becomes '?', as Java's encoder writes it."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _java_decode(body: bytes, charset: str) -> str:
    """Decode as Java does: UTF-16/UTF-32 honour a byte-order mark and are big-endian without one."""
    if charset == "utf-8":
        return body.decode("utf-8", "replace")
    if charset == "utf-16":
        if body[:2] == b"\xff\xfe":
            return body[2:].decode("utf-16-le", "replace")
        return body[2:].decode("utf-16-be", "replace") if body[:2] == b"\xfe\xff" else body.decode(
            "utf-16-be", "replace")
    if body[:4] == b"\xff\xfe\x00\x00":
        return body[4:].decode("utf-32-le", "replace")
    return body[4:].decode("utf-32-be", "replace") if body[:4] == b"\x00\x00\xfe\xff" else body.decode(
        "utf-32-be", "replace")


def _java_encode(text: str, charset: str) -> bytes:
    """String.getBytes(charset): UTF-16 is big-endian after a byte-order mark, UTF-32 big-endian without one."""
    if charset == "utf-8":
        return text.encode("utf-8", "replace")
    if charset == "utf-16":
        return b"\xfe\xff" + text.encode("utf-16-be", "replace") if text else b""
    return text.encode("utf-32-be", "replace")


class BlobHandler(HTTPSourceHandler):
    """Flume's morphline BlobHandler: the whole request body is one event.

    Its headers are ``Content-Type`` (when sent) and the request's parameters (the first value of each). A body
    longer than ``handler.maxBlobLength`` is cut there (logged).
    """

    flume_class = "org.apache.flume.sink.solr.morphline.BlobHandler"
    spec = Spec(
        Prop("maxBlobLength", "int", 100_000_000, "Longest body in bytes; a longer one is cut to this length.",
             min=1),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.max_length: int = self.config.max_blob_length

    def get_events(self, request: HTTPRequest) -> list[Event]:
        headers: dict[str, str] = {}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        for name, values in request.parameters().items():
            headers[name] = values[0]
        body = b"" if request.is_form() else request.body
        if len(body) >= self.max_length:
            if len(body) > self.max_length:
                _rate_limited(self.log, f"Request length exceeds maxBlobLength ({self.max_length}), truncating "
                                        f"BLOB event!")
            body = body[:self.max_length]
        return [Event(body, headers)]


class BLOBHandler(HTTPSourceHandler):
    """Flume's core BLOBHandler: the body is one event, the request parameters are its headers.

    Every parameter named in ``handler.mandatoryParameters`` must be present, else the answer is 500 (as in
    Flume). With Flume's default (empty) it demands a parameter named "", so every request fails: set it.
    """

    flume_class = "org.apache.flume.source.http.BLOBHandler"
    spec = Spec(
        Prop("mandatoryParameters", "str", "",
             "Comma-separated parameters every request must carry (Flume's empty default makes every request "
             "fail, as in Flume)."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        parts = self.config.mandatory_parameters.split(",")
        while len(parts) > 1 and parts[-1] == "":  # Java's String.split drops trailing empty strings
            parts.pop()
        self.mandatory = parts
        if "" in parts:
            conf.warn("with mandatoryParameters empty (Flume's default) every request is refused with 500, as "
                      "in Flume; list the parameters requests must carry", "mandatoryParameters")

    def get_events(self, request: HTTPRequest) -> list[Event]:
        headers = {name: values[0] for name, values in request.parameters().items()}
        for name in self.mandatory:
            if name not in headers:
                raise ValueError(f"Please specify {name} parameter in the request.")
        return [Event(b"" if request.is_form() else request.body, headers)]

