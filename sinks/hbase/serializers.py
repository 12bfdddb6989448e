"""HBase serializers: how the HBase sinks turn a batch of events into puts and increments.

A sink names its serializer with ``serializer`` (Flume's Simple or Regex serializer class names of HBase 1, HBase 2
or asynchbase, or a dotted Python path to an :class:`HbaseEventSerializer` subclass); options under
``serializer.*`` are validated against the serializer's own ``spec``. The built-in serializers write exactly the
rows, columns and increments Flume's write.
"""

from __future__ import annotations

import random
import re
import string
import threading
import time
import uuid
from collections.abc import Sequence

from agent.core import Event
from agent.java import java_regex, java_split
from agent.spec import Conf, ConfigError, Prop, Spec

__all__ = ["Put", "Increment", "HbaseEventSerializer", "SimpleHbaseEventSerializer", "RegexHbaseEventSerializer"]

Put = tuple[bytes, dict[bytes, bytes]]  # row key, {b"family:qualifier": value}
Increment = tuple[bytes, bytes, int]  # row key, b"family:qualifier", amount


class HbaseEventSerializer:
    """Turns events into HBase puts and increments; subclass it for your own (name it by dotted path).

    Override ``actions(event)`` and/or ``increments(event)``; build column names with ``self.column(qualifier)``
    (``family:qualifier`` for the sink's ``columnFamily``). Options come from the sink's ``serializer.*`` keys;
    declare them in ``spec`` to have them validated and read them from ``self.config``, the typed configuration
    (the base spec takes any key, as text in ``self.config.options``).
    ``serialize(events)`` is what the sink calls once per batch; override it for speed.
    """

    spec = Spec(Prop("", prefix=True, doc="Free-form options of a custom serializer."))

    def __init__(self, name: str, conf: Conf, family: bytes = b""):
        self.name = name
        self.conf = conf
        #: the typed, frozen configuration (see agent.spec)
        self.config = conf.typed if conf.spec is not None else None
        self.family = family
        self.prefix = family + b":"

    def column(self, qualifier: bytes) -> bytes:
        return self.prefix + qualifier

    def actions(self, event: Event) -> list[Put]:
        return []

    def increments(self, event: Event) -> list[Increment]:
        return []

    def serialize(self, events: Sequence[Event]) -> tuple[list[Put], list[Increment]]:
        puts: list[Put] = []
        incs: list[Increment] = []
        for e in events:
            puts.extend(self.actions(e))
            incs.extend(self.increments(e))
        return puts, incs


_SUFFIXES = {
    "uuid": "prefix + a random UUID (the default; any unknown value also means uuid, as in Flume)",
    "random": "prefix + a random signed 64-bit number",
    "timestamp": "prefix + the time in ms (events of the same ms overwrite each other, as in Flume)",
    "nano": "prefix + a monotonic nanosecond clock (Java's System.nanoTime)",
}


class SimpleHbaseEventSerializer(HbaseEventSerializer):
    """Flume's SimpleHbaseEventSerializer / SimpleHBase2EventSerializer / SimpleAsyncHbaseEventSerializer.

    Each event becomes one put of its body to ``payloadColumn`` in row ``rowPrefix + suffix``, and one increment
    by 1 of ``incrementColumn`` in row ``incrementRow``. (Flume's serializer would skip a part whose column is
    empty, but Flume's configuration loader drops keys with empty values, so the defaults apply; so here.)
    """

    spec = Spec(
        Prop("rowPrefix", "str", "default", "Prefix of every row key."),
        Prop("suffix", "str", "uuid", "Row key suffix: " + "; ".join(f"{k}: {v}" for k, v in _SUFFIXES.items())
             + "."),
        Prop("payloadColumn", "str", "pCol", "Column qualifier the body goes to."),
        Prop("incrementColumn", "str", "iCol", "Column qualifier incremented by 1 per event (in row incrementRow)."),
        Prop("incrementRow", "str", "incRow", "Row key of the increments."),
    )

    def __init__(self, name: str, conf: Conf, family: bytes = b""):
        super().__init__(name, conf, family)
        c = self.config
        self.row_prefix = c.row_prefix or ""
        self.row_prefix_b = self.row_prefix.encode()
        suffix = c.suffix or "uuid"
        self.suffix = suffix if suffix in _SUFFIXES else "uuid"
        pcol = c.payload_column
        icol = c.increment_column
        self.payload_col = self.column(pcol.encode()) if pcol else None
        self.inc_col = self.column(icol.encode()) if icol else None
        self.inc_row = (c.increment_row or "").encode()

    def row_keys(self, n: int) -> list[bytes]:
        p = self.row_prefix
        s = self.suffix
        if s == "uuid":
            return [(p + str(uuid.uuid4())).encode() for _ in range(n)]
        if s == "random":
            bits = random.getrandbits
            return [(p + str(bits(64) - (1 << 63))).encode() for _ in range(n)]
        if s == "timestamp":
            return [(p + str(time.time_ns() // 1_000_000)).encode() for _ in range(n)]
        clock = time.monotonic_ns
        return [(p + str(clock())).encode() for _ in range(n)]

    def serialize(self, events: Sequence[Event]) -> tuple[list[Put], list[Increment]]:
        col = self.payload_col
        puts: list[Put] = []
        if col is not None:
            keys = self.row_keys(len(events))
            puts = [(k, {col: e.body}) for k, e in zip(keys, events, strict=True)]
        incs: list[Increment] = []
        if self.inc_col is not None:
            inc = (self.inc_row, self.inc_col, 1)
            incs = [inc] * len(events)
        return puts, incs

    def actions(self, event: Event) -> list[Put]:
        return self.serialize([event])[0]

    def increments(self, event: Event) -> list[Increment]:
        return self.serialize([event])[1]


ROW_KEY_NAME = "ROW_KEY"
_ALNUM = string.ascii_letters + string.digits


_ASCII = bytes(range(128))


class RegexHbaseEventSerializer(HbaseEventSerializer):
    """Flume's RegexHbaseEventSerializer / RegexHBase2EventSerializer.

    The body (decoded with ``charset``) must match ``regex`` as a whole; group i goes to column i of ``colNames``
    in one put. The row key is group ``rowKeyIndex`` when that is set (its column must be named ROW_KEY), else
    ``<time ms>-<10 random alphanumerics fixed per process>-<counter>``. With ``depositHeaders`` every header
    becomes a column too. An event that does not match, or a regex whose group count differs from the number of
    colNames, writes nothing (as in Flume). Values are written in UTF-8; column names and headers in ``charset``.
    """

    spec = Spec(
        Prop("regex", "str", "(.*)", "Regex the whole body must match (Java syntax; DOTALL is on)."),
        Prop("regexIgnoreCase", "bool", False, "Match case-insensitively."),
        Prop("colNames", "str", "payload", "Comma-separated column qualifiers, one per regex group."),
        Prop("rowKeyIndex", "int", -1, "Index in colNames of the group that is the row key (that column must be "
             "named ROW_KEY); -1: generated keys."),
        Prop("depositHeaders", "bool", False, "Also write each header as a column (name = header name)."),
        Prop("charset", "str", "UTF-8", "Charset of the body for matching, and of column and header names."),
    )

    nonce = 0
    nonce_lock = threading.Lock()
    random_key = "".join(random.SystemRandom().choice(_ALNUM) for _ in range(10))

    def __init__(self, name: str, conf: Conf, family: bytes = b""):
        super().__init__(name, conf, family)
        # Java's \w \d \s \b and case-insensitive matching are ASCII-only unless a pattern asks otherwise: re.ASCII
        c = self.config
        flags = re.DOTALL | re.ASCII | (re.IGNORECASE if c.regex_ignore_case else 0)
        text = java_regex(c.regex)
        try:
            self.pattern = re.compile(text, flags)
        except re.error as exc:
            raise ConfigError(f"invalid regex {c.regex!r}: {exc}", "regex") from None
        self.charset = c.charset
        try:
            ascii_same = _ASCII.decode("ascii").encode(self.charset) == _ASCII
        except LookupError:
            raise ConfigError(f"unknown charset {self.charset!r}", "charset") from None
        # An ASCII body in an ASCII-compatible charset matches an ASCII pattern the same as bytes or as text, and
        # its groups are already their UTF-8 bytes: that path skips the decode and the encodes.
        self.bytes_pattern = re.compile(text.encode("ascii"), flags) if ascii_same and text.isascii() else None
        names = java_split(c.col_names, ",")
        self.columns = [self.column(n.encode(self.charset)) for n in names]
        self.row_key_index = c.row_key_index
        if self.row_key_index >= 0:
            if self.row_key_index >= len(names):
                raise ConfigError(f"rowKeyIndex must be less than num columns {len(names)}", "rowKeyIndex")
            if names[self.row_key_index].upper() != ROW_KEY_NAME:
                raise ConfigError(f"Column at {self.row_key_index} must be {ROW_KEY_NAME} and is "
                                  f"{names[self.row_key_index]}", "rowKeyIndex")
        self.deposit_headers = c.deposit_headers
        self.usable = self.pattern.groups == len(names)
        if not self.usable:
            conf.warn(f"the regex has {self.pattern.groups} groups but colNames lists {len(names)} columns; "
                      f"Flume's serializer writes nothing for any event then, and so does this one", "colNames")

    @classmethod
    def _take_nonces(cls, n: int) -> int:
        with cls.nonce_lock:
            first = cls.nonce
            cls.nonce = first + n
        return first

    def serialize(self, events: Sequence[Event]) -> tuple[list[Put], list[Increment]]:
        if not self.usable:
            return [], []
        match = self.pattern.fullmatch
        bmatch = self.bytes_pattern.fullmatch if self.bytes_pattern is not None else None
        charset = self.charset
        columns = self.columns
        rk = self.row_key_index
        deposit = self.deposit_headers
        prefix = self.prefix
        puts: list[Put] = []
        generated: list[int] = []
        for e in events:
            body = e.body
            if bmatch is not None and body.isascii():
                m = bmatch(body)
                if m is None:
                    continue
                groups = m.groups()
            else:
                m = match(body.decode(charset, "replace"))
                if m is None:
                    continue
                groups = tuple(g.encode() if g is not None else None for g in m.groups())  # values in UTF-8
            cells = {c: g for c, g in zip(columns, groups, strict=True) if g is not None}
            if rk >= 0:
                row = groups[rk]
                if row is None:
                    continue  # no row key to write to (Flume fails the batch on this event, forever)
                cells.pop(columns[rk], None)
            else:
                row = b""
                generated.append(len(puts))
            if deposit:
                for k, v in e.headers.items():
                    cells[prefix + k.encode(charset)] = v.encode(charset)
            puts.append((row, cells))
        if generated:
            first = self._take_nonces(len(generated))
            head = f"{time.time_ns() // 1_000_000}-{self.random_key}-"
            for i, at in enumerate(generated):
                puts[at] = ((head + str(first + i)).encode(charset), puts[at][1])
        return puts, []
