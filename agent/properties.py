"""Java ``.properties`` files read exactly as ``java.util.Properties.load`` reads them, keeping line numbers.

Rules (JDK ``Properties.load``): lines end at ``\\n``, ``\\r`` or ``\\r\\n``; a line whose first non-blank
character is ``#`` or ``!`` is a comment (a ``#`` later in a line is part of the value); a line ending in an odd
number of backslashes continues on the next line, whose leading blanks are dropped; the key ends at the first
unescaped ``=``, ``:`` or blank, then blanks, at most one ``=``/``:`` and blanks are skipped; escapes ``\\t \\n
\\r \\f \\uXXXX`` are decoded and any other ``\\c`` is ``c``. Values keep trailing blanks (Flume trims later).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Entry", "PropertiesError", "parse_properties", "load_properties"]

_BLANK = " \t\f"
_ESC = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: str
    line: int  # 1-based line where the logical line (the key) starts
    path: str


class PropertiesError(ValueError):
    def __init__(self, message: str, path: str, line: int):
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


def _logical_lines(text: str):
    """Yield (line number, logical line text with continuations joined and the backslashes removed)."""
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    n = len(physical)
    while i < n:
        start = i
        line = physical[i].lstrip(_BLANK)
        i += 1
        if not line or line[0] in "#!":
            continue
        parts = []
        while True:
            trailing = len(line) - len(line.rstrip("\\"))
            if trailing % 2 == 1 and i <= n:
                parts.append(line[:-1])
                if i >= n:
                    break
                line = physical[i].lstrip(_BLANK)
                i += 1
                continue
            parts.append(line)
            break
        yield start + 1, "".join(parts)


def _unescape(s: str, path: str, line: int) -> str:
    if "\\" not in s:
        return s
    out = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= n:
            break
        c = s[i]
        if c == "u":
            hexd = s[i + 1:i + 5]
            if len(hexd) < 4 or any(h not in "0123456789abcdefABCDEF" for h in hexd):
                raise PropertiesError("Malformed \\uxxxx encoding.", path, line)
            out.append(chr(int(hexd, 16)))
            i += 5
            continue
        out.append(_ESC.get(c, c))
        i += 1
    return "".join(out)


def _split(logical: str) -> tuple[str, str]:
    i = 0
    n = len(logical)
    while i < n:
        c = logical[i]
        if c == "\\":
            i += 2
            continue
        if c in "=:" or c in _BLANK:
            break
        i += 1
    key = logical[:i]
    j = i
    while j < n and logical[j] in _BLANK:
        j += 1
    if j < n and logical[j] in "=:":
        j += 1
    while j < n and logical[j] in _BLANK:
        j += 1
    return key, logical[j:]


def parse_properties(text: str, path: str = "<string>") -> list[Entry]:
    """All entries in file order; duplicate keys are all kept (callers take the last)."""
    out = []
    for line_no, logical in _logical_lines(text):
        key, value = _split(logical)
        out.append(Entry(_unescape(key, path, line_no), _unescape(value, path, line_no), line_no, path))
    return out


def load_properties(path: str | os.PathLike) -> list[Entry]:
    """Read a file and parse it (UTF-8, falling back to ISO-8859-1 for bytes that are not UTF-8)."""
    data = open(path, "rb").read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")
    return parse_properties(text, os.fspath(path))
