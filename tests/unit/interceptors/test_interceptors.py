"""Each interceptor does what Flume's does, through a real ChannelProcessor into a memory channel."""

from __future__ import annotations

import time

import pytest

from agent.core import ChannelProcessor, Event
from agent.registry import resolve
from agent.spec import Conf, ConfigError, Problem, Raw
from channels.memory import MemoryChannel
from channels.selectors import ReplicatingChannelSelector


def build(alias: str, **props: str):
    cls = resolve("interceptor", alias)
    problems: list[Problem] = []
    conf = cls.spec.bind({k: Raw(v, 1) for k, v in props.items()}, problems=problems, component="i")
    obj = cls("i", conf)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError("; ".join(str(p) for p in errors))
    obj.start()
    return obj


def ev(body: str, **headers: str) -> Event:
    return Event(body.encode(), dict(headers))


def test_timestamp_sets_and_preserves():
    before = int(time.time() * 1000)
    out = build("timestamp").intercept([ev("a"), ev("b", timestamp="5")])
    assert all(before <= int(e.headers["timestamp"]) <= before + 5000 for e in out)
    out = build("timestamp", preserveExisting="true", headerName="ts").intercept([ev("b", ts="5")])
    assert out[0].headers["ts"] == "5"


def test_host_ip_and_name():
    import socket

    e = build("host").intercept([ev("a")])[0]
    assert e.headers["host"] == socket.gethostbyname(socket.gethostname())
    e = build("host", useIP="false", hostHeader="h").intercept([ev("a")])[0]
    assert e.headers["h"] == socket.getfqdn(socket.gethostname())


def test_static_preserves_by_default():
    i = build("static", key="dc", value="west")
    out = i.intercept([ev("a"), ev("b", dc="east")])
    assert [e.headers["dc"] for e in out] == ["west", "east"]
    out = build("static", key="dc", value="west", preserveExisting="false").intercept([ev("b", dc="east")])
    assert out[0].headers["dc"] == "west"


@pytest.mark.parametrize("props, left", [
    ({"withName": "a"}, {"b", "cc", "dd"}),
    ({"fromList": "a , b"}, {"cc", "dd"}),
    ({"fromList": "a|b", "fromListSeparator": r"\|"}, {"cc", "dd"}),
    ({"matching": "c+"}, {"a", "b", "dd"}),
    ({"matching": "d"}, {"a", "b", "cc", "dd"}),  # full match only
    ({}, {"a", "b", "cc", "dd"}),
], ids=["withName", "fromList", "separator", "matching", "matching-is-full", "nothing-set"])
def test_remove_header(props, left):
    e = build("remove_header", **props).intercept([ev("x", a="1", b="2", cc="3", dd="4")])[0]
    assert set(e.headers) == left


def test_uuid_with_prefix_and_preserve():
    i = build("org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder", prefix="p-")
    out = i.intercept([ev("a"), ev("b", id="keep")])
    assert out[0].headers["id"].startswith("p-") and len(out[0].headers["id"]) == 38
    assert out[1].headers["id"] == "keep"


@pytest.mark.parametrize("pattern, repl, body, want", [
    ("^INFO ", "", "INFO hello", "hello"),
    (r"(\d+)-(\d+)", "$2-$1", "a 12-34 b 5-6", "a 34-12 b 6-5"),
    (r"(?<word>[a-z]+)", "<${word}>", "ab 1", "<ab> 1"),
    (r"\$", r"\$\$", "cost $5", "cost $$5"),
], ids=["remove", "groups", "named", "escaped-dollar"])
def test_search_replace_java_syntax(pattern, repl, body, want):
    i = build("search_replace", searchPattern=pattern, replaceString=repl)
    assert i.intercept([ev(body)])[0].body.decode() == want


def test_search_replace_requires_pattern():
    with pytest.raises(ConfigError, match="searchPattern: required property is missing"):
        build("search_replace")


def test_bad_regex_names_the_property():
    with pytest.raises(ConfigError, match="regex: invalid regular expression"):
        build("regex_filter", regex="(unclosed")


def test_regex_filter_include_and_exclude():
    events = [ev("error: disk"), ev("info: ok"), ev("ERROR x")]
    assert [e.body for e in build("regex_filter", regex="error").intercept(list(events))] == [b"error: disk"]
    assert len(build("regex_filter", regex="error", excludeEvents="true").intercept(list(events))) == 2


def test_regex_extractor_default_and_millis(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        i = build("regex_extractor", regex=r"^(\d\d\d\d-\d\d-\d\d \d\d:\d\d) (\w+)", serializers="ts lvl",
                  **{"serializers.ts.type": "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer",
                     "serializers.ts.name": "timestamp", "serializers.ts.pattern": "yyyy-MM-dd HH:mm",
                     "serializers.lvl.name": "level"})
        out = i.intercept([ev("2012-06-12 12:54 WARN disk"), ev("no match")])
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert out[0].headers == {"timestamp": "1339505640000", "level": "WARN"}
    assert out[1].headers == {}


def test_regex_extractor_needs_serializer_names():
    with pytest.raises(ConfigError, match="serializer 's1' has no serializers.s1.name"):
        build("regex_extractor", regex="(a)", serializers="s1")


def test_chain_through_channel_processor_into_memory_channel():
    ch = MemoryChannel("c1", Conf.from_dict(MemoryChannel.spec, capacity=100, transactionCapacity=100))
    ch.start()
    sel = ReplicatingChannelSelector("r1", Conf.from_dict(ReplicatingChannelSelector.spec))
    sel.configure_channels([ch])
    proc = ChannelProcessor(sel, [build("regex_filter", regex="keep"), build("static", key="k", value="v")])
    proc.process_batch([ev("keep 1"), ev("drop"), ev("keep 2")])
    with ch.transaction() as tx:
        got = tx.take_batch(10)
        tx.commit()
    assert [(e.body, e.headers) for e in got] == [(b"keep 1", {"k": "v"}), (b"keep 2", {"k": "v"})]


class Upper:  # not a RegexExtractorSerializer: refused by name
    pass


def test_regex_extractor_serializers_are_a_family_with_their_own_options():
    from interceptors.regex import RegexExtractorSerializer

    cls = resolve("interceptor", "regex_extractor")
    problems: list[Problem] = []
    raw = {"regex": "(a)(b)", "serializers": "x y", "serializers.x.name": "hx", "serializers.x.type": "DEFAULT",
           "serializers.x.patern": "oops", "serializers.y.name": "hy",
           "serializers.y.type": "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer"}
    cls("i", cls.spec.bind({k: Raw(v, 7) for k, v in raw.items()}, problems=problems, component="i"))
    assert [str(p) for p in problems] == [
        ":7: i: warning: unknown property 'serializers.x.patern'",
        ": i: serializers.y.pattern: required property is missing (Joda-Time pattern of the group (yyyy-MM-dd HH:mm))"]
    with pytest.raises(ConfigError, match="is not a extractor_serializer: it must subclass"):
        build("regex_extractor", regex="(a)", serializers="s", **{"serializers.s.name": "h",
                                                                  "serializers.s.type": "test_interceptors.Upper"})
    assert issubclass(resolve("extractor_serializer", "default"), RegexExtractorSerializer)
