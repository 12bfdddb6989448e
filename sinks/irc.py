"""The irc sink: each event body as a message (PRIVMSG) to an IRC channel, as Flume's IRCSink.

The sink connects to ``hostname:port``, registers (``PASS`` when a password is set, ``NICK``, ``USER``) and joins
``#<chan>``: Flume puts the ``#`` in front of ``chan`` itself, so ``chan = flume`` is the channel ``#flume``. The body
is read as UTF-8; with ``splitlines = true`` it is split by the Java regular expression ``splitchars`` (a line
break by default; Java's ``String.split``: trailing empty pieces dropped) and each piece is a message of its own.

Unlike Flume, which takes one event per transaction and commits once the message is in the socket's buffer, this
sink takes up to 100 events, sends their messages in one write followed by a ``PING``, and commits when the
server's ``PONG`` comes back: IRC servers handle a client's commands in order, so the server then has every
message. An error numeric in between (cannot send to the channel, not registered, ...) or no PONG within 30 s
plus 2 s per message (servers throttle clients) rolls the batch back and drops the connection (Flume logs the
error and has lost the event); the next attempt reconnects, with half the batch, down to one event, so a server
that throttles or disconnects a client sending too much at once is still served. Two more differences, both so
that an event cannot become an IRC command: a line break inside a message ends it and the rest is sent as a
message of its own (Flume sends it raw, and the server reads the rest as a command), and empty messages are not
sent (the server would refuse them). A server's ``PING`` is answered.
"""

from __future__ import annotations

import re
import socket
import time

from agent.core import ChannelException, Event, Sink, Status, _rate_limited
from agent.java import java_regex, java_regex_split
from agent.spec import Conf, Prop, Spec

__all__ = ["IRCSink"]

_BATCH = 100
_ANSWER_TIMEOUT = 30.0  # seconds for the registration, and for each batch's PONG plus _PER_MESSAGE per message
_PER_MESSAGE = 2.0  # servers throttle clients (ngircd: about 3 messages a second after a burst)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# numerics that refuse what the sink sent: its registration, JOIN or PRIVMSG
_REFUSALS = {401, 403, 404, 405, 407, 411, 412, 421, 431, 432, 433, 436, 437, 451, 461, 462, 464, 465, 471, 473,
             474, 475, 476, 477, 484}


class IRCSink(Sink):
    """Sends each event body to ``#<chan>`` on an IRC server, one message per body (or per piece with splitlines)."""

    alias = "irc"
    flume_class = "org.apache.flume.sink.irc.IRCSink"
    spec = Spec(
        Prop("hostname", "str", required=True, doc="The IRC server's host name or address."),
        Prop("port", "int", 6667, "The IRC server's port.", min=1, max=65535),
        Prop("nick", "str", required=True, doc="The sink's nick name."),
        Prop("password", "str", None, "The server password (sent as PASS)."),
        Prop("user", "str", None, "The user name sent in USER (default: the nick)."),
        Prop("name", "str", None, "The real name sent in USER (default: the nick)."),
        Prop("chan", "str", required=True, doc="The channel, without its '#': the sink joins and writes to #<chan>."),
        Prop("splitlines", "bool", False, "Split each body into several messages by splitchars."),
        Prop("splitchars", "str", "\n", "The Java regular expression that splits bodies when splitlines is true "
             "(default: a line break)."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.host: str = c.hostname or ""
        self.port: int = c.port
        self.nick: str = c.nick or ""
        self.target = "#" + (c.chan or "")
        if (c.chan or "").startswith(("#", "&")):
            conf.warn(f"Flume puts '#' before chan itself, so this writes to {self.target!r}; write the channel "
                      f"name without its '#'", "chan")
        for prop, value in (("hostname", self.host), ("nick", self.nick), ("chan", c.chan or ""),
                            ("user", c.user or ""), ("name", c.name or ""), ("password", c.password or "")):
            if _LINE_BREAK.search(value) or (prop in ("nick", "chan", "user") and " " in value):
                shown = "(hidden)" if prop == "password" else repr(value)
                conf.error(f"{shown} cannot be sent to an IRC server: it holds a line break or a space", prop)
        self.split = None
        if c.splitlines:
            try:
                self.split = re.compile(java_regex(c.splitchars))
            except re.error as exc:
                conf.error(f"{c.splitchars!r} is not a valid regular expression: {exc}", "splitchars")
        self._register = ((f"PASS {c.password}\r\n" if c.password else "")
                          + f"NICK {self.nick}\r\nUSER {c.user or self.nick} 0 * :{c.name or self.nick}\r\n"
                          ).encode()
        self._privmsg = f"PRIVMSG {self.target} :".encode()
        self._sock: socket.socket | None = None
        self._reader = None
        self._pings = 0
        self._batch = _BATCH  # events per transaction: halved after a failed batch, +1 after a confirmed one
        self.sent = 0  # messages whose batch the server confirmed

    def start(self) -> None:
        try:
            self._connect()
        except OSError as exc:  # as Flume: logged, and the sink tries again when it has events
            self.log.error("IRC sink %s: cannot connect to %s:%d: %s", self.name, self.host, self.port, exc)
            self._close()
        self.counter.started()

    def stop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.sendall(b"QUIT :pyflume stopping\r\n")
            except OSError:
                pass
        self._close()
        self.counter.stopped()
        self.log.info("IRC sink %s stopped after %d messages", self.name, self.sent)

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's IRCSink registers no MBean, so /metrics does not list it

    def process(self) -> Status:
        channel = self.channel
        assert channel is not None
        cap = channel.transaction_capacity
        tx = channel.transaction()
        tx.begin()
        try:
            events = tx.take_batch(min(self._batch, cap) if cap else self._batch)
            if not events:
                tx.commit()
                return Status.BACKOFF
            lines = self._messages(events)
            if lines:
                if self._sock is None:
                    self._connect()
                try:
                    self._send_confirmed(lines)
                except OSError:
                    # a server that throttles or drops a client sending too much at once: smaller batches, down to
                    # one event (Flume's unit); each confirmed batch lets the next one grow by one event again
                    self._batch = max(1, len(events) // 2)
                    raise
                self._batch = min(_BATCH, self._batch + 1)
            tx.commit()
            self.sent += len(lines)
            return Status.READY
        except ChannelException as exc:
            tx.rollback()
            _rate_limited(self.log, f"IRC sink {self.name}: unable to get events from the channel: {exc}")
            return Status.BACKOFF
        except Exception as exc:  # noqa: BLE001 - every failure: roll back, reconnect next time, as Flume
            tx.rollback()
            self._close()
            _rate_limited(self.log, f"IRC sink {self.name}: unable to communicate with the IRC server "
                                    f"{self.host}:{self.port}: {exc}")
            return Status.BACKOFF
        finally:
            tx.close()

    def _messages(self, events: list[Event]) -> list[bytes]:
        """The PRIVMSG lines of a batch, each ending with CRLF."""
        head = self._privmsg
        out: list[bytes] = []
        for e in events:
            text = e.body.decode("utf-8", "replace")
            pieces = java_regex_split(text, self.split) if self.split is not None else [text]
            for piece in pieces:
                for line in _LINE_BREAK.split(piece) if ("\n" in piece or "\r" in piece) else (piece,):
                    if line:
                        out.append(head + line.encode() + b"\r\n")
        return out

    def _connect(self) -> None:
        """Connect, register and join; wait until the server welcomed the nick (or refused it)."""
        self._close()
        sock = socket.create_connection((self.host, self.port), timeout=_ANSWER_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._reader = sock, sock.makefile("rb")
        sock.sendall(self._register)
        self._read_until(lambda cmd, args: cmd == "001", "the welcome (001)")
        sock.sendall(f"JOIN {self.target}\r\n".encode())  # a refusal shows up before the first batch's PONG
        self.log.info("IRC sink %s connected to %s:%d as %s, writing to %s", self.name, self.host, self.port,
                      self.nick, self.target)

    def _send_confirmed(self, lines: list[bytes]) -> None:
        """Send the lines and a PING; return once its PONG came back with no refusal in between."""
        assert self._sock is not None
        self._pings += 1
        token = f"pyflume-{self._pings}"
        self._sock.sendall(b"".join(lines) + f"PING :{token}\r\n".encode())
        self._read_until(lambda cmd, args: cmd == "PONG" and token in args, f"the PONG of {token}",
                         _ANSWER_TIMEOUT + _PER_MESSAGE * len(lines))

    def _read_until(self, done, what: str, timeout: float = _ANSWER_TIMEOUT) -> None:  # noqa: ANN001
        """Read server lines until ``done(command, params)``, at most ``timeout`` seconds; PINGs answered,
        refusals and ERROR raised."""
        assert self._reader is not None and self._sock is not None
        deadline = time.monotonic() + timeout
        while True:
            self._sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                raw = self._reader.readline(8192)
            except TimeoutError:
                raise OSError(f"no answer within {timeout:g} s (waiting for {what})") from None
            if not raw:
                raise OSError(f"the server closed the connection (waiting for {what})")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith(":"):
                line = line.split(" ", 1)[1] if " " in line else ""
            cmd, _, args = line.partition(" ")
            if cmd == "PING":
                self._sock.sendall(f"PONG {args}\r\n".encode())
            elif cmd == "ERROR":
                raise OSError(f"the server ended the connection: {args}")
            elif cmd.isdigit() and int(cmd) in _REFUSALS:
                raise OSError(f"the server refused: {cmd} {args}")
            if done(cmd, args):
                return

    def _close(self) -> None:
        sock, reader = self._sock, self._reader
        self._sock = self._reader = None
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()
