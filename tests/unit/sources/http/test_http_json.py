"""The JSON handler's fast path (UTF-8, string bodies and headers) gives exactly what its general path gives; a body
nested too deeply for the parser is the client's fault."""

from __future__ import annotations

import json
import random
from email.message import Message

import msgspec
import pytest

import sources.http.handlers as http
from sources.http.handlers import HTTPRequest, JSONHandler


class _NoFastPath:
    """Stands in for the fast path's decoder: every request goes to the general path."""

    def decode(self, body: bytes) -> None:
        raise msgspec.DecodeError("fast path turned off")


def _events(body: bytes, monkeypatch: pytest.MonkeyPatch, fast: bool):  # noqa: ANN202
    if not fast:
        monkeypatch.setattr(http, "_PLAIN_EVENTS", _NoFastPath())
    h = Message()
    h["Content-Type"] = "application/json; charset=UTF-8"
    try:
        return JSONHandler.__new__(JSONHandler).get_events(HTTPRequest("POST", "/", "", h, body, ("127.0.0.1", 1)))
    finally:
        monkeypatch.undo()


def test_fast_and_general_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    values = ["", "a", "é ü", "日本", "x" * 300, 12, 1.5e3, True, None]
    for _ in range(200):
        items = []
        for _ in range(rng.randint(0, 6)):
            item: dict = {}
            if rng.random() < 0.8:
                item["body"] = rng.choice(values[:5]) if rng.random() < 0.9 else rng.choice(values)
            if rng.random() < 0.6:
                item["headers"] = {f"k{j}": (rng.choice(values[:5]) if rng.random() < 0.9 else rng.choice(values))
                                   for j in range(rng.randint(0, 3))}
            items.append(item)
        body = json.dumps(items, ensure_ascii=rng.random() < 0.5).encode()
        assert _events(body, monkeypatch, fast=True) == _events(body, monkeypatch, fast=False), body


@pytest.mark.parametrize("body", [
    b'\xef\xbb\xbf[{"body": "after a byte-order mark"}]',  # Java keeps the BOM as a character: not JSON
    b'[{"body": "caf\xe9 in Latin-1"}]',  # not UTF-8: replaced as Java decodes it
    b'[{"body": "\\ud83d\\ude00 a pair"}, {"body": "\\ud800 alone"}]',  # surrogate escapes
    b'[{"body": "a \\\\ud800 that is no escape"}]',
    b'[{"body": "a", "body": "b", "x": [1], "headers": {"h": "1", "h": "2"}}]',  # repeated and unknown fields
    b'[{"headers": null}, {"headers": {}, "body": ""}]', b'[{"body": "x"}] trailing', b'[{"body": "\xed\xa0\x80"}]',
    b"  \r\n ", b"", b"[]"])
def test_requests_the_fast_path_leaves_alone_get_what_the_general_path_gives(body: bytes,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def outcome(fast: bool):  # noqa: ANN202
        try:
            return [(e.body, e.headers) for e in _events(body, monkeypatch, fast)]
        except Exception as exc:  # noqa: BLE001 - the error is the outcome
            return type(exc), str(exc)

    assert outcome(True) == outcome(False)


def test_fast_path_is_taken_for_the_common_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = http._plain_events
    monkeypatch.setattr(http, "_plain_events", lambda items: calls.append(len(items)) or real(items))
    h = Message()
    body = json.dumps([{"headers": {"h": "v"}, "body": "one"}, {"body": "two"}]).encode()
    events = JSONHandler.__new__(JSONHandler).get_events(HTTPRequest("POST", "/", "", h, body, ("127.0.0.1", 1)))
    assert calls == [2] and [(e.body, e.headers) for e in events] == [(b"one", {"h": "v"}), (b"two", {})]


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'[{"body": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]",
                                  b'[{"headers": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}]"])
def test_deeply_nested_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(http.HTTPBadRequestError, match="nested too deeply"):
        JSONHandler.__new__(JSONHandler).get_events(HTTPRequest("POST", "/", "", Message(), body, ("127.0.0.1", 1)))
