"""Batch: events kept as columns on the hot path, and every component that takes it seeing the same events as a
list would show."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from fastavro import schemaless_reader, schemaless_writer

from agent import config
from agent.avro_event import decode_uniform_events
from agent.core import Batch, Event, Interceptor, as_events, concat
from agent.rpc import EVENTS, encode_events
from agent.spec import Conf
from channels.memory import MemoryChannel


def test_events_are_made_once_and_changes_through_them_stay() -> None:
    shared = {"host": "h1"}
    b = Batch([b"a", b"b"], shared)
    assert b.raw and len(b) == 2 and b.bodies == [b"a", b"b"] and b.shared == {"host": "h1"}
    events = b.events()
    assert events == [Event(b"a", {"host": "h1"}), Event(b"b", {"host": "h1"})]
    events[0].headers["x"] = "1"  # each event has its own copy of the shared headers
    events[1].body = b"B"
    assert shared == {"host": "h1"} and events[1].headers == {"host": "h1"}
    assert not b.raw and b.events() is events and b[0].headers == {"host": "h1", "x": "1"}
    assert b.bodies == [b"a", b"B"] and b.shared is None
    assert [e.body for e in b] == [b"a", b"B"] and as_events(b) is events


def test_slices_of_a_raw_batch_stay_raw_and_header_changes_copy_on_write() -> None:
    b = Batch([b"0", b"1", b"2", b"3"], {"k": "v"})
    head, odd = b[:2], b[1::2]
    assert type(head) is Batch and head.raw and head.bodies == [b"0", b"1"] and odd.bodies == [b"1", b"3"]
    head.with_header("k", "new")
    head.with_header("t", "1")
    odd.with_header("k", "kept", preserve=True)
    assert head.shared == {"k": "new", "t": "1"} and b.shared == {"k": "v"} and odd.shared == {"k": "v"}
    head.without_header("k")
    assert head.shared == {"t": "1"} and b.shared == {"k": "v"}
    assert Batch([]) == [] and not Batch([]) and Batch([b"x"]) == [Event(b"x")]


def test_concat_keeps_columns_only_when_every_chunk_shares_the_same_headers() -> None:
    h = {"a": "1"}
    same = concat([Batch([b"1"], h), Batch([b"2"], dict(h))])
    assert type(same) is Batch and same.raw and same.bodies == [b"1", b"2"] and same.shared == h
    mixed = concat([Batch([b"1"], h), [Event(b"2")], Batch([b"3"])])
    assert type(mixed) is list and mixed == [Event(b"1", h), Event(b"2"), Event(b"3")]


def make_channel(capacity: int = 100, tx: int = 10) -> MemoryChannel:
    conf = Conf.from_dict(MemoryChannel.spec, capacity=str(capacity), transactionCapacity=str(tx),
                          **{"keep-alive": "0"})
    ch = MemoryChannel("c1", conf)
    ch.start()
    return ch


def test_memory_channel_keeps_order_across_batch_sizes_and_rollbacks() -> None:
    ch = make_channel()
    rng = random.Random(7)
    sent: list[bytes] = []
    for i in range(20):
        bodies = [b"%d" % (len(sent) + j) for j in range(rng.randrange(1, 8))]
        batch = Batch(bodies, {"n": str(i % 2)}) if i % 3 else [Event(b, {"n": str(i % 2)}) for b in bodies]
        with ch.transaction() as t:
            t.put_batch(batch)
            t.commit()
        sent += bodies
    got: list[bytes] = []
    while ch.size():
        n = rng.randrange(1, 10)
        with ch.transaction() as t:
            first = t.take_batch(n, raw=True)
            if rng.random() < 0.3:  # rolled back: the same events come back first, in order
                t.rollback()
                continue
            second = t.take_batch(10 - n)
            assert type(second) is list  # a caller that did not ask for a Batch gets a list
            t.commit()
        for part in (first, second):
            got += [e.body for e in as_events(part)]
            assert all(e.headers.keys() == {"n"} for e in as_events(part))
    assert got == sent and ch.counter.attributes()["EventTakeSuccessCount"] == str(len(sent))


class _Upper(Interceptor):
    """A custom interceptor without a batch path: it must get a plain list."""

    seen: list[type] = []

    def intercept(self, events: list[Event]) -> list[Event]:
        _Upper.seen.append(type(events))
        for e in events:
            e.body = e.body.upper()
        return events


def test_channel_processor_gives_a_list_to_components_that_did_not_ask_for_a_batch(tmp_path: Path) -> None:
    p = tmp_path / "a.conf"
    p.write_text("""\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1 c2
a1.sources.r1.interceptors = t s
a1.sources.r1.interceptors.t.type = timestamp
a1.sources.r1.interceptors.s.type = static
a1.sources.r1.interceptors.s.key = dc
a1.sources.r1.interceptors.s.value = east
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = dc
a1.sources.r1.selector.mapping.east = c2
a1.sources.r1.selector.default = c1
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
""")
    topo, problems = config.build(config.plan(config.load([p]), "a1"))
    assert topo is not None and not [x for x in problems if x.severity == "error"]
    for ch in topo.channels.values():
        ch.start()
    cp = topo.sources["r1"].channel_processor
    cp.process_batch(Batch([b"a", b"b"]))
    assert topo.channels["c1"].size() == 0 and topo.channels["c2"].size() == 2
    with topo.channels["c2"].transaction() as t:
        got = t.take_batch(10, raw=True)
        t.commit()
    assert type(got) is Batch and got.raw, "timestamp, static and multiplexing all have batch paths"
    assert got.bodies == [b"a", b"b"] and got.shared["dc"] == "east" and got.shared["timestamp"].isdigit()

    cp.interceptors.append(_Upper("u", Conf.from_dict(_Upper.spec)))
    cp.process_batch(Batch([b"c"]))
    assert _Upper.seen == [list]
    with topo.channels["c2"].transaction() as t:
        assert [(e.body, e.headers["dc"]) for e in t.take_batch(10)] == [(b"C", "east")]
        t.commit()


def _random_events(rng: random.Random) -> list[Event]:
    headers = [{}, {"a": "1"}, {"a": "1", "b": "é"}, {"ts": str(rng.randrange(10**13))}]
    out = []
    for _ in range(rng.randrange(0, 30)):
        size = rng.choice([0, 1, 63, 64, 100, 8191, 8192, 9000])
        out.append(Event(rng.randbytes(size), dict(rng.choice(headers))))
    return out


def test_append_batch_encoding_and_uniform_decoding_agree_with_fastavro() -> None:
    rng = random.Random(3)
    for _ in range(300):
        events = _random_events(rng)
        if rng.random() < 0.5 and events:  # the same headers for all: encoded from a Batch
            events = [Event(e.body, dict(events[0].headers)) for e in events]
            data = encode_events(Batch([e.body for e in events], events[0].headers))
        else:
            data = encode_events(events)
        buf = io.BytesIO()
        schemaless_writer(buf, EVENTS, [{"headers": e.headers, "body": e.body} for e in events])
        assert data == buf.getvalue()
        assert [Event(x["body"], x["headers"]) for x in schemaless_reader(io.BytesIO(data), EVENTS)] == events
        decoded = decode_uniform_events(data + b"next", 0)
        if len({tuple(e.headers.items()) for e in events}) > 1:
            assert decoded is None
        else:
            assert decoded is not None and decoded[1] == len(data) and decoded[0] == events


def test_uniform_decoding_refuses_a_truncated_array() -> None:
    data = encode_events(Batch([b"x" * 100] * 3))
    with pytest.raises(ValueError):
        decode_uniform_events(data[:-60], 0)


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_thrift_encoding_of_a_batch_is_byte_equal_to_its_events(protocol: str) -> None:
    from agent.thrift_rpc import encode_events as thrift_events

    rng = random.Random(11)
    for _ in range(200):
        headers = rng.choice([{}, {"a": "1"}, {"k" * 200: "v" * 300, "é": "x"}])
        bodies = [rng.randbytes(rng.choice([0, 1, 127, 128, 200, 20000])) for _ in range(rng.randrange(0, 20))]
        assert thrift_events(protocol, Batch(bodies, headers)) == \
            thrift_events(protocol, [Event(b, dict(headers)) for b in bodies])


def test_per_event_headers_are_made_only_when_the_events_are_needed() -> None:
    made: list[int] = []

    def headers() -> list[dict[str, str]]:
        made.append(1)
        return [{"offset": "7"}, {"offset": "8"}]

    b = Batch([b"a", b"b"], headers=headers)
    assert len(b) == 2 and b.bodies == [b"a", b"b"] and not b.raw and b.shared is None and made == []
    ch = make_channel()
    with ch.transaction() as t:  # the memory channel queues it as it is; a whole take gives it back
        t.put_batch(b)
        t.commit()
    with ch.transaction() as t:
        got = t.take_batch(2, raw=True)
        t.commit()
    assert got is b and made == []
    assert b[1:] == [Event(b"b", {"offset": "8"})] and made == [1]  # a slice needs the events: made once
    assert b.events() == [Event(b"a", {"offset": "7"}), Event(b"b", {"offset": "8"})] and made == [1]


@pytest.mark.parametrize("shared", [None, {"host": "web-1", "topic": "logs"}])
def test_uniform_decoding_of_every_body_length_and_every_truncation(shared) -> None:
    """Bodies whose lengths take one, two and three varint bytes (0, 63, 64, 8191, 8192, 70000 bytes); every
    prefix of the array is refused (ValueError or None), never decoded into a wrong batch."""
    bodies = [b"a" * n for n in (0, 63, 64, 100, 8191, 8192, 70000, 5)]
    data = encode_events(Batch(bodies, shared))
    decoded = decode_uniform_events(data, 0)
    assert decoded is not None and decoded[0].bodies == bodies and decoded[0].shared == shared
    assert decoded[1] == len(data)
    for cut in [*range(0, 200), *range(len(data) - 200, len(data))]:
        try:
            got = decode_uniform_events(data[:cut], 0)
        except ValueError:
            continue
        assert got is None, cut
