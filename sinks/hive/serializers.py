"""Flume's two Hive serializers, turning event bodies into the values of a table's columns.

``DELIMITED`` (Flume's HiveDelimitedTextSerializer) splits each body at ``serializer.delimiter`` and maps the
fields in order to the columns named by ``serializer.fieldnames`` (an empty name skips that field; columns not
named get NULL). Each field is read as Hive's text SerDe reads it: ``\\N`` is NULL, and a field that is not a valid
value of its column's type becomes NULL. ``JSON`` (Flume's HiveJsonSerializer, Hive's StrictJsonWriter) reads each
body as one JSON object whose keys name columns (case-insensitively); missing keys give NULL.

Unlike Hive's writers, a body with fewer or more delimited fields than ``serializer.fieldnames`` names, or a body
that is not a JSON object, is refused: the whole batch fails with a message naming the table, the event and the
field, and the events stay in the channel (Flume's Hive 1.2 writer fails on too few fields and silently drops
extra ones).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["RecordError", "converter", "DelimitedSerializer", "JsonSerializer", "parse_delimiter",
           "parse_serde_separator"]


class RecordError(ValueError):
    """An event body that cannot become a row; the message names the event and the field."""


def parse_delimiter(text: str) -> str:
    """Flume's ``serializer.delimiter``: a value in double quotes loses them (``"\\t"``: the properties file has
    already turned the escape into a tab). The delimiter is matched literally."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    return text


def parse_serde_separator(text: str) -> str:
    """Flume's ``serializer.serdeSeparator``: one character, or one character in single quotes (``'\\t'``)."""
    if len(text) == 1:
        return text
    if len(text) == 3 and text[0] == "'" and text[-1] == "'":
        return text[1]
    raise ValueError(f"{text!r} is not one character (write it alone or in single quotes, like ','  or '\\t')")


def _int(bits: int) -> Callable[[str], Any]:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def conv(s: str) -> int | None:
        try:
            v = int(s)
        except ValueError:
            return None
        return v if lo <= v <= hi else None
    return conv


def _float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _bool(s: str) -> bool | None:
    low = s.lower()
    return True if low == "true" else False if low == "false" else None


def _decimal(scale: int) -> Callable[[str], Any]:
    q = decimal.Decimal(1).scaleb(-scale)

    def conv(s: str) -> decimal.Decimal | None:
        try:
            return decimal.Decimal(s.strip()).quantize(q, rounding=decimal.ROUND_HALF_UP)
        except (decimal.InvalidOperation, ValueError):
            return None
    return conv


def _date(s: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(s.strip()[:10])
    except ValueError:
        return None


def _timestamp(s: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(s.strip())
    except ValueError:
        return None


def _binary(s: str) -> bytes:
    raw = s.encode()
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw


def _varchar(n: int) -> Callable[[str], str]:
    return lambda s: s[:n]


def _char(n: int) -> Callable[[str], str]:
    return lambda s: s[:n].ljust(n)


def converter(hive_type: str) -> Callable[[str], Any]:
    """Text of one field → the value of a column of ``hive_type`` (None where Hive's text SerDe reads NULL)."""
    t = hive_type.strip().lower()
    base = t.split("(", 1)[0].strip()
    arg = t[t.index("(") + 1:t.rindex(")")].split(",") if "(" in t else []
    simple: dict[str, Callable[[str], Any]] = {
        "tinyint": _int(8), "smallint": _int(16), "int": _int(32), "integer": _int(32), "bigint": _int(64),
        "float": _float, "double": _float, "boolean": _bool, "date": _date, "timestamp": _timestamp,
        "binary": _binary, "string": str,
    }
    if base == "varchar":
        return _varchar(int(arg[0]))
    if base == "char":
        return _char(int(arg[0]))
    if base == "decimal":
        return _decimal(int(arg[1]) if len(arg) > 1 else 0)
    return simple[base]


class DelimitedSerializer:
    """``DELIMITED``: fields of the body → columns named by ``fieldnames``."""

    def __init__(self, delimiter: str, fieldnames: Sequence[str]):
        self.delimiter = delimiter
        self.fieldnames = [f.strip().lower() for f in fieldnames]

    def check(self, table: str, columns: Sequence[str]) -> None:
        """Every non-empty field name must be a column of ``table``; raises RecordError naming the first that is
        not."""
        known = set(columns)
        for name in self.fieldnames:
            if name and name not in known:
                raise RecordError(f"serializer.fieldnames names '{name}', which is not a column of table {table} "
                                  f"(its columns: {', '.join(columns)})")

    def columns(self, table: str, bodies: Sequence[bytes], names: Sequence[str],
                convs: Sequence[Callable[[str], Any]]) -> list[list[Any]]:
        index = {n: i for i, n in enumerate(names)}
        plan = [(pos, index[name], convs[index[name]]) for pos, name in enumerate(self.fieldnames) if name]
        mapped = {col for _, col, _ in plan}
        out: list[list[Any]] = [[] for _ in names]
        nulls = [out[i] for i in range(len(names)) if i not in mapped]
        want = len(self.fieldnames)
        sep = self.delimiter
        for k, body in enumerate(bodies):
            fields = body.decode("utf-8", "replace").split(sep)
            if len(fields) != want:
                raise RecordError(
                    f"event {k + 1} of the batch has {len(fields)} field(s) separated by {sep!r} but "
                    f"serializer.fieldnames names {want} ({','.join(self.fieldnames)}) for table {table}: "
                    f"{body[:200]!r}")
            for pos, col, conv in plan:
                text = fields[pos]
                out[col].append(None if text == "\\N" else conv(text))
            for lst in nulls:
                lst.append(None)
        return out


class JsonSerializer:
    """``JSON``: each body is one JSON object; its keys name columns (case-insensitively)."""

    def check(self, table: str, columns: Sequence[str]) -> None:
        pass

    def columns(self, table: str, bodies: Sequence[bytes], names: Sequence[str],
                convs: Sequence[Callable[[str], Any]]) -> list[list[Any]]:
        out: list[list[Any]] = [[] for _ in names]
        pairs = list(zip(names, convs, out, strict=True))
        for k, body in enumerate(bodies):
            try:
                obj = json.loads(body)
            except ValueError as exc:
                raise RecordError(f"event {k + 1} of the batch for table {table} is not JSON ({exc}): "
                                  f"{body[:200]!r}") from None
            if not isinstance(obj, dict):
                raise RecordError(f"event {k + 1} of the batch for table {table} is JSON but not an object: "
                                  f"{body[:200]!r}")
            if any(key != key.lower() for key in obj):
                obj = {key.lower(): v for key, v in obj.items()}
            for name, conv, lst in pairs:
                v = obj.get(name)
                if v is None:
                    lst.append(None)
                elif isinstance(v, bool):
                    lst.append(conv("true" if v else "false"))
                elif isinstance(v, (dict, list)):
                    lst.append(conv(json.dumps(v, separators=(",", ":"))))
                else:
                    lst.append(conv(str(v)))
        return out
