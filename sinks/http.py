"""The http sink: each event's body POSTed to an HTTP or HTTPS endpoint, one request per event, as Flume's HttpSink.

What happens after the answer is decided per status code, exactly as Flume decides it: ``rollback.<code>``,
``backoff.<code>`` and ``incrementMetrics.<code>`` name a code (``503``) or a class of codes (``5XX``, upper-case
``XX`` as Flume matches it); the code beats its class, and the class beats ``defaultRollback``,
``defaultBackoff`` and ``defaultIncrementMetrics``. Rollback returns the event to the channel (it is sent again),
commit removes it whatever the answer was; backoff makes the runner sleep before the next event. Like Flume:

- the defaults roll back and back off on *every* code, 200 included, so a working flow sets at least
  ``rollback.2XX = false`` and ``backoff.2XX = false`` (``--check`` warns otherwise);
- EventDrainSuccessCount grows only for codes whose incrementMetrics is true (default false); every event sent
  counts in EventDrainAttemptCount; a connection error or timeout rolls back, backs off and counts EventWriteFail;
- an event with an empty body is taken and dropped without a request;
- a value other than ``true`` (any case) in an override is false (Java's ``Boolean.valueOf``; ``--check`` warns).

One transaction per event (a partial batch cannot be committed, and each event's fate depends on its own
answer). Flume counts no connections for this sink, and neither does pyflume. The connection is kept alive
between requests (Java's HttpURLConnection does the same): a request on a connection the server closed meanwhile
is sent once more on a new one. Redirects are not followed: a 3XX code is decided like any other.
"""

from __future__ import annotations

import re
import socket
import ssl
from urllib.parse import urlsplit

from agent import tls
from agent.core import ChannelException, Sink, Status, _rate_limited
from agent.spec import Conf, Prop, Spec

__all__ = ["HttpSink", "StatusRules"]

_CODE_KEY = re.compile(r"^[1-9](\d\d|XX)$")
_OVERRIDES = ("rollback", "backoff", "incrementMetrics")


class StatusRules:
    """One of Flume's three per-status decisions: the code's override, else its class's (``5XX``), else the
    default."""

    __slots__ = ("default", "overrides", "_cache")

    def __init__(self, default: bool, overrides: dict[str, str]):
        self.default = default
        # Boolean.valueOf: only "true", in any case, is true
        self.overrides = {k: v.strip().lower() == "true" for k, v in overrides.items()}
        self._cache: dict[int, bool] = {}

    def __call__(self, code: int) -> bool:
        value = self._cache.get(code)
        if value is None:
            text = str(code)
            value = self.overrides.get(text)
            if value is None:
                value = self.overrides.get(text[0] + "XX", self.default)
            self._cache[code] = value
        return value


class HttpSink(Sink):
    """POSTs each event body to ``endpoint``; per-status rules decide rollback, backoff and the success counter."""

    alias = "http"
    flume_class = "org.apache.flume.sink.http.HttpSink"
    spec = Spec(
        Prop("endpoint", "str", required=True, doc="The URL events are POSTed to (http:// or https://)."),
        Prop("connectTimeout", "int", 5000, "Milliseconds to wait for the connection.", min=1),
        Prop("requestTimeout", "int", 5000, "Milliseconds to wait for each read of the answer.", min=1),
        Prop("contentTypeHeader", "str", "text/plain", "The Content-Type header of each request."),
        Prop("acceptHeader", "str", "text/plain", "The Accept header of each request."),
        Prop("defaultBackoff", "bool", True, "Back off after a code without a backoff override (200 too)."),
        Prop("defaultRollback", "bool", True, "Roll the event back after a code without a rollback override (200 "
             "too)."),
        Prop("defaultIncrementMetrics", "bool", False, "Count the event in EventDrainSuccessCount after a code "
             "without an incrementMetrics override."),
        Prop("backoff.", prefix=True, doc="backoff.<code> or backoff.<n>XX = true/false: back off after that code."),
        Prop("rollback.", prefix=True, doc="rollback.<code> or rollback.<n>XX = true/false: roll the event back "
             "(it is sent again) after that code; false commits it (removed from the channel)."),
        Prop("incrementMetrics.", prefix=True, doc="incrementMetrics.<code> or incrementMetrics.<n>XX = "
             "true/false: count the event as drained after that code."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.endpoint: str = c.endpoint
        url = urlsplit(self.endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            conf.error(f"{self.endpoint!r} is not an http:// or https:// URL", "endpoint")
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        try:
            self._port = url.port or (443 if self._https else 80)
        except ValueError:
            conf.error(f"{self.endpoint!r} has an invalid port", "endpoint")
            self._port = 0
        self._target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self.connect_timeout = c.connect_timeout / 1000
        self.request_timeout = c.request_timeout / 1000
        for prop, value in (("contentTypeHeader", c.content_type_header), ("acceptHeader", c.accept_header)):
            if "\r" in value or "\n" in value:
                conf.error(f"{value!r}: a header value cannot hold a line break", prop)
        host = f"[{self._host}]" if ":" in self._host else self._host
        default_port = self._port == (443 if self._https else 80)
        self._head = (f"POST {self._target} HTTP/1.1\r\nHost: {host}{'' if default_port else f':{self._port}'}\r\n"
                      f"Content-Type: {c.content_type_header}\r\nAccept: {c.accept_header}\r\n"
                      f"User-Agent: pyflume\r\nContent-Length: ").encode("latin-1", "replace")
        overrides = {"rollback": c.rollback, "backoff": c.backoff, "incrementMetrics": c.increment_metrics}
        for prefix, values in overrides.items():
            for key, value in values.items():
                self._check_override(conf, prefix, key, value)
        self.rollback = StatusRules(c.default_rollback, c.rollback)
        self.backoff = StatusRules(c.default_backoff, c.backoff)
        self.increment_metrics = StatusRules(c.default_increment_metrics, c.increment_metrics)
        if self.rollback(200):
            conf.warn("200 OK rolls the event back (defaultRollback = true and no rollback.200 or rollback.2XX), so "
                      "every event is sent again forever, as in Flume; set rollback.2XX = false", "defaultRollback")
        self._conn: _Connection | None = None
        self._ssl: ssl.SSLContext | None = None

    @staticmethod
    def _check_override(conf: Conf, prefix: str, key: str, value: str) -> None:
        prop = f"{prefix}.{key}"
        if not _CODE_KEY.match(key):
            hint = f"; did you mean {prefix}.{key.upper()}?" if _CODE_KEY.match(key.upper()) else ""
            conf.warn(f"'{key}' is neither a status code (503) nor a class of codes (5XX, upper-case XX), so Flume "
                      f"never applies it{hint}", prop)
        if value.strip().lower() not in ("true", "false"):
            conf.warn(f"{value!r} is read as false (only true, in any case, is true)", prop)

    def start(self) -> None:
        if self._https and self._ssl is None:
            ctx = ssl.create_default_context()
            store = tls.global_setting("truststore")
            if store:  # the JVM's -Djavax.net.ssl.trustStore / FLUME_SSL_TRUSTSTORE_PATH, as Flume's HTTPS client
                tls.load_trust_store(ctx, store, tls.global_setting("truststore-password"))
            self._ssl = ctx
        self.counter.started()
        self.log.info("HTTP sink %s started: POST to %s", self.name, self.endpoint)

    def stop(self) -> None:
        self._close()
        self.counter.stopped()

    def process(self) -> Status:
        channel = self.channel
        assert channel is not None
        tx = channel.transaction()
        tx.begin()
        try:
            events = tx.take_batch(1)
            body = events[0].body if events else b""
            if not body:  # nothing to send, or an empty body: taken and dropped, as in Flume
                tx.commit()
                return Status.BACKOFF
            self.counter.add(drain_attempt=1)
            try:
                code = self._post(body)
            except OSError as exc:
                tx.rollback()
                self.counter.add(write_fail=1)
                _rate_limited(self.log, f"HTTP sink {self.name}: POST to {self.endpoint} failed ({exc}); the event "
                                        f"was rolled back")
                return Status.BACKOFF
            return self._decide(tx, code)
        except Exception as exc:  # Flume logs any other failure and backs off, it does not raise
            tx.rollback()
            if isinstance(exc, ChannelException):
                self.counter.add(channel_read_fail=1)
            else:
                self.counter.add(write_fail=1)
            _rate_limited(self.log, f"HTTP sink {self.name}: error sending the event, retrying: {exc}")
            return Status.BACKOFF
        finally:
            tx.close()

    def _decide(self, tx, code: int) -> Status:  # noqa: ANN001 - agent.core.Transaction
        if code < 100:
            tx.rollback()
            _rate_limited(self.log, f"HTTP sink {self.name}: malformed response from {self.endpoint}, retrying")
            return Status.BACKOFF
        rollback = self.rollback(code)
        if rollback:
            tx.rollback()
        else:
            tx.commit()
        backoff = self.backoff(code)
        if self.increment_metrics(code):
            self.counter.add(drain_success=1)
        if rollback:
            _rate_limited(self.log, f"HTTP sink {self.name}: got status code {code} from {self.endpoint}; rolled "
                                    f"back the event" + (" and backed off" if backoff else " for retry"))
        return Status.BACKOFF if backoff else Status.READY

    def _post(self, body: bytes) -> int:
        """POST one body on the kept-alive connection; the status code. A connection the server closed while idle
        is replaced once; any other failure raises OSError and drops the connection."""
        for attempt in (0, 1):
            conn = self._conn
            reused = conn is not None
            if conn is None:
                conn = self._conn = self._connect()
            try:
                code, keep = conn.post(self._head, body)
            except (ConnectionResetError, BrokenPipeError):  # also the close of an idle connection
                self._close()
                if not reused or attempt:
                    raise
                continue
            except BaseException:
                self._close()
                raise
            if not keep:
                self._close()
            return code
        raise AssertionError("unreachable")

    def _connect(self) -> _Connection:
        sock = socket.create_connection((self._host, self._port), timeout=self.connect_timeout)
        try:
            sock.settimeout(self.request_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._https:
                assert self._ssl is not None
                sock = self._ssl.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class _Connection:
    """One kept-alive HTTP/1.1 connection: a request leaves in one send, the answer is read whole (Content-Length,
    chunked, or up to the close) so the next request can follow. Errors are OSErrors; ConnectionResetError when
    the server closed the connection before answering."""

    __slots__ = ("sock", "reader")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = sock.makefile("rb")

    def post(self, head: bytes, body: bytes) -> tuple[int, bool]:
        """Send ``head`` (up to ``Content-Length: ``) and ``body``; the status code and whether the connection
        stays open."""
        request = head + b"%d\r\n\r\n" % len(body)
        if len(body) <= 65536:
            self.sock.sendall(request + body)
        else:
            self.sock.sendall(request)
            self.sock.sendall(body)
        while True:
            code, length, chunked, close = self._head()
            if code >= 200 or code == 101 or code < 100:
                break  # 1XX answers before the real one are skipped
        if code in (204, 304) or 100 <= code < 200:
            length = 0
        read = self.reader.read
        if chunked:
            while True:
                size_line = self.reader.readline(1026)
                try:
                    size = int(size_line.split(b";", 1)[0], 16)
                except ValueError:
                    raise OSError(f"malformed chunk size {size_line[:40]!r}") from None
                if size == 0:
                    while self.reader.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                if len(read(size + 2)) != size + 2:
                    raise ConnectionResetError("the server closed the connection in the middle of the answer")
        elif length is not None:
            if len(read(length)) != length:
                raise ConnectionResetError("the server closed the connection in the middle of the answer")
        else:
            read()  # no length: the answer ends with the connection
            close = True
        return code, not close

    def _head(self) -> tuple[int, int | None, bool, bool]:
        readline = self.reader.readline
        line = readline(65537)
        if not line:
            raise ConnectionResetError("the server closed the connection without answering")
        parts = line.split(None, 2)
        try:
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                raise ValueError
            code = int(parts[1])
        except ValueError:
            raise OSError(f"invalid HTTP response {line[:80]!r}") from None
        length: int | None = None
        chunked = False
        close = parts[0] == b"HTTP/1.0"
        while True:
            header = readline(65537)
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                raise ConnectionResetError("the server closed the connection in the middle of the answer")
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise OSError(f"invalid Content-Length {value.strip()[:40]!r}") from None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                close = token == b"close" or (close and token != b"keep-alive")
        return code, length, chunked, close

    def close(self) -> None:
        self.reader.close()
        self.sock.close()
