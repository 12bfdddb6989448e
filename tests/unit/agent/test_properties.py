"""Java .properties semantics, case by case (java.util.Properties.load)."""

from __future__ import annotations

import pytest

from agent.properties import PropertiesError, load_properties, parse_properties

CASES = [
    ("equals", "a.b = c", [("a.b", "c", 1)]),
    ("colon", "a.b: c", [("a.b", "c", 1)]),
    ("whitespace", "a.b   c", [("a.b", "c", 1)]),
    ("no-spaces", "a.b:c", [("a.b", "c", 1)]),
    ("equals-in-value", "a = b=c", [("a", "b=c", 1)]),
    ("hash-comment", "# comment\na = 1", [("a", "1", 2)]),
    ("bang-comment", "  ! comment\na = 1", [("a", "1", 2)]),
    ("hash-in-value-kept", "a = 10 # ten", [("a", "10 # ten", 1)]),
    ("blank-lines", "\n\n  \na = 1\n", [("a", "1", 4)]),
    ("leading-whitespace", "   a = 1", [("a", "1", 1)]),
    ("continuation", "a = one, \\\n    two", [("a", "one, two", 1)]),
    ("continuation-3-lines", "a = x\\\n y\\\n  z\nb = 2", [("a", "xyz", 1), ("b", "2", 4)]),
    ("even-backslashes-do-not-continue", "a = x\\\\\nb = 2", [("a", "x\\", 1), ("b", "2", 2)]),
    ("continuation-line-starting-with-hash", "a = x\\\n# not a comment", [("a", "x# not a comment", 1)]),
    ("comment-does-not-continue", "# c \\\na = 1", [("a", "1", 2)]),
    ("unicode-escape", "a = caf\\u00e9", [("a", "café", 1)]),
    ("escapes", "a = t\\tn\\nr\\rf\\f", [("a", "t\tn\nr\rf\f", 1)]),
    ("other-escape-is-literal", "a = \\q\\=\\#", [("a", "q=#", 1)]),
    ("escaped-separator-in-key", "a\\=b = c", [("a=b", "c", 1)]),
    ("escaped-space-in-key", "a\\ b = c", [("a b", "c", 1)]),
    ("key-only", "lonely", [("lonely", "", 1)]),
    ("empty-value", "a =", [("a", "", 1)]),
    ("trailing-whitespace-kept", "a = 1  ", [("a", "1  ", 1)]),
    ("crlf", "a = 1\r\nb = 2\r\n", [("a", "1", 1), ("b", "2", 2)]),
    ("cr", "a = 1\rb = 2", [("a", "1", 1), ("b", "2", 2)]),
    ("duplicates-kept-in-order", "a = 1\na = 2", [("a", "1", 1), ("a", "2", 2)]),
    ("regex-value", "a = (\\\\d+)", [("a", "(\\d+)", 1)]),
    ("windows-path", "a = C:\\\\temp", [("a", "C:\\temp", 1)]),
    ("line-after-continuation", "a = 1\\\n  2\n\nb = 3", [("a", "12", 1), ("b", "3", 4)]),
]


@pytest.mark.parametrize("text, want", [pytest.param(t, w, id=i) for i, t, w in CASES])
def test_java_properties(text, want):
    assert [(e.key, e.value, e.line) for e in parse_properties(text)] == want


def test_malformed_unicode_escape_names_the_line():
    with pytest.raises(PropertiesError) as err:
        parse_properties("a = 1\nb = \\u12x4", "f.conf")
    assert "f.conf:2" in str(err.value) and "Malformed \\uxxxx encoding" in str(err.value)


def test_load_file_keeps_path_and_utf8(tmp_path):
    p = tmp_path / "x.conf"
    p.write_bytes("a1.sources.r1.greeting = héllo\n".encode())
    (e,) = load_properties(p)
    assert (e.key, e.value, e.line, e.path) == ("a1.sources.r1.greeting", "héllo", 1, str(p))
