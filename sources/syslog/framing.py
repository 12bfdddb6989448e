"""RFC 6587 octet counting on the syslog TCP sources, an extension beyond Flume.

Over TCP a syslog sender frames its messages one of two ways (RFC 6587 §3.4): *non-transparent framing*, each
message ending at ``\\n`` (what Flume reads), or *octet counting*, each message preceded by its length in bytes and
a space (``57 <13>1 2024-05-01T10:00:00Z host app - - - hello``), which is what syslog-ng's ``syslog()``
destination, rsyslog's omfwd with ``TCP_Framing="octet-counted"`` and ``logger --octet-count`` send. Flume reads an
octet-counted stream as one long invalid line.

pyflume decides per connection from its first byte (newlines before it are skipped): a digit 1-9 means octet
counting, anything else (``<``, as every syslog message starts) means one message per line, exactly as before. A
counted message may hold newlines; one trailing ``\\n`` (or ``\\r\\n``) inside the count is dropped, and newlines
between frames are skipped. A message longer than ``eventSize`` is cut there and flagged ``Incomplete``, and the
rest of it becomes following events, as for a long line.

A length that is not 1-8 digits followed by a space is a framing error: the frames before it are delivered, the
source logs one line naming the client and the bytes it saw, counts it in ``EventReadFail`` and closes that
connection (the stream cannot be resynchronised). A connection that ends inside a frame delivers what arrived,
flagged ``Incomplete``, and logs the missing byte count.
"""

from __future__ import annotations

__all__ = ["OctetCountedFrames", "FramingError", "starts_octet_counted"]

_MAX_DIGITS = 8  # lengths up to 99,999,999 bytes; rsyslog and syslog-ng cap messages far below that
_DIGITS = frozenset(b"0123456789")


def starts_octet_counted(data: bytes) -> bool | None:
    """Whether a connection whose first bytes are ``data`` uses octet counting; None while only newlines came."""
    for b in data:
        if b not in (10, 13):
            return 49 <= b <= 57  # '1'-'9': MSG-LEN = NONZERO-DIGIT *DIGIT
    return None


class FramingError(ValueError):
    """The stream does not follow octet counting from here on; the message says where and what was seen.
    ``pieces`` holds the pieces completed before the error in the chunk being read."""

    pieces: list[tuple[bytes, bool, bool]] = []


class OctetCountedFrames:
    """Splits one connection's octet-counted byte stream into messages, in pieces of at most ``max_size`` bytes.

    ``feed(chunk)`` returns ``(piece, first, cut)`` triples: ``first`` is true for the piece that starts a message,
    ``cut`` when that message goes on in a later piece. It raises :class:`FramingError` at a bad length; the
    pieces completed before it are in the exception's ``pieces``. ``finish()`` is called at end of stream.
    """

    __slots__ = ("max_size", "_head", "_left", "_part", "_first", "_offset")

    def __init__(self, max_size: int):
        self.max_size = max_size
        self._head = b""  # the length digits read so far (a header may be split across chunks)
        self._left = 0  # bytes of the current message still to come; 0 between frames
        self._part = b""  # the current piece's bytes so far
        self._first = True  # the current piece starts its message
        self._offset = 0  # stream offset of the chunk being read, for error messages

    def feed(self, data: bytes) -> list[tuple[bytes, bool, bool]]:
        out: list[tuple[bytes, bool, bool]] = []
        pos, n = 0, len(data)
        max_size = self.max_size
        try:
            while pos < n:
                if self._left or self._head:
                    pos = self._body(data, pos, out) if self._left else self._header(data, pos)
                    continue
                # the common case first: a whole frame, header and message, within this chunk
                space = data.find(b" ", pos, pos + _MAX_DIGITS + 1)
                digits = data[pos:space]
                if space > pos and digits.isdigit() and digits[0] != 48:  # not '0'
                    end = space + 1 + int(digits)
                    if end <= n and end - space - 1 <= max_size:
                        out.append((_without_lf(data[space + 1:end]), True, False))
                        pos = end
                        continue
                pos = self._header(data, pos)  # newlines between frames, a split or bad header, a long message
        except FramingError as e:
            e.pieces = out
            raise
        self._offset += n
        return out

    def finish(self) -> tuple[list[tuple[bytes, bool, bool]], str | None]:
        """At end of stream: the torn message's piece (if any) and a description of what was missing."""
        if self._left:
            piece, missing = self._part, self._left
            self._part, self._left = b"", 0
            out = [(piece, self._first, True)] if piece else []
            return out, f"the stream ended {missing} bytes before the end of an octet-counted message"
        if self._head:
            head, self._head = self._head, b""
            return [], f"the stream ended inside an octet-counting length ({head!r})"
        return [], None

    def _header(self, data: bytes, pos: int) -> int:
        """Read (part of) ``MSG-LEN SP`` at ``pos``; the position after what was read."""
        if not self._head:
            while pos < len(data) and data[pos] in (10, 13):  # newlines between frames
                pos += 1
            if pos == len(data):
                return pos
        space = data.find(b" ", pos, pos + _MAX_DIGITS + 1 - len(self._head))
        digits = data[pos:space if space >= 0 else pos + _MAX_DIGITS + 1 - len(self._head)]
        head = self._head + digits
        if not all(b in _DIGITS for b in digits) or head[:1] == b"0" or len(head) > _MAX_DIGITS or (
                space >= 0 and not head):
            raise FramingError(f"bad octet-counting length {head[:_MAX_DIGITS + 1]!r} at byte "
                               f"{self._offset + pos - len(self._head)} (expected 1-{_MAX_DIGITS} digits, the "
                               f"first not 0, then a space)")
        if space < 0:
            self._head = head
            return pos + len(digits)
        self._head = b""
        self._left = int(head)
        self._first = True
        return space + 1

    def _body(self, data: bytes, pos: int, out: list[tuple[bytes, bool, bool]]) -> int:
        """Read message bytes at ``pos`` up to the frame's end or the piece's size limit."""
        room = self.max_size - len(self._part)
        take = min(self._left, room, len(data) - pos)
        part = self._part + data[pos:pos + take] if self._part else data[pos:pos + take]
        self._left -= take
        pos += take
        if not self._left:
            out.append((_without_lf(part), self._first, False))
            self._part = b""
        elif len(part) >= self.max_size:
            out.append((part, self._first, True))
            self._part = b""
            self._first = False
        else:
            self._part = part
        return pos


def _without_lf(message: bytes) -> bytes:
    """A message without the one trailing ``\\n`` (or ``\\r\\n``) some senders count in."""
    if message.endswith(b"\n"):
        return message[:-2] if message.endswith(b"\r\n") else message[:-1]
    return message
