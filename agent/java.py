"""Java's spellings that Python writes differently, for components reading Flume's Java-flavoured properties.

Flume's patterns are Java regular expressions; pyflume compiles them with Python's ``re``, which agrees with Java
on the constructs configuration files use (classes, groups, quantifiers, anchors, ``(?i)``) once named groups are
respelled. Shared by every family (interceptors, sources, sinks), so each reads Java syntax the same way.
"""

from __future__ import annotations

import re

__all__ = ["java_regex", "java_regex_split", "java_replacement", "java_split"]

_JAVA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<([A-Za-z][A-Za-z0-9]*)>")


def java_regex(text: str) -> str:
    """Java pattern syntax that Python spells differently: named groups ``(?<name>...)`` become ``(?P<name>...)``."""
    return _JAVA_NAMED_GROUP.sub(r"(?P<\1>", text)


def java_replacement(text: str) -> str:
    """Java ``Matcher.replaceAll`` replacement syntax (``$1``, ``${name}``, ``\\$``) as a Python ``re`` template."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            lit = text[i + 1]
            out.append("\\\\" if lit == "\\" else lit)
            i += 2
        elif c == "$" and i + 1 < n and text[i + 1] == "{":
            end = text.index("}", i)
            out.append(f"\\g<{text[i + 2:end]}>")
            i = end + 1
        elif c == "$" and i + 1 < n and text[i + 1].isdigit():
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            out.append(f"\\g<{text[i + 1:j]}>")
            i = j
        elif c == "\\":
            out.append("\\\\")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def java_split(text: str, sep: str) -> list[str]:
    """``String.split`` with a literal one-character separator: trailing empty strings are dropped."""
    parts = text.split(sep)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def java_regex_split(text: str, pattern: re.Pattern[str]) -> list[str]:
    """``String.split(regex)``: the pieces between matches, no captured groups, no leading empty piece for a
    zero-width match at the start, trailing empty pieces dropped; ``[text]`` when nothing matches."""
    parts: list[str] = []
    start = 0
    for m in pattern.finditer(text):
        if m.end() == 0:
            continue  # a zero-width match at the beginning never gives a leading empty piece
        if m.start() == m.end() and m.start() >= len(text):
            break
        parts.append(text[start:m.start()])
        start = m.end()
    if not parts:
        return [text]
    parts.append(text[start:])
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts
