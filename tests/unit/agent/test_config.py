"""Flume's grammar, substitution and validation: what a user sees for each mistake."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agent import config
from agent.core import Event, EventDrivenSource
from agent.spec import Prop, Spec

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""


def run(tmp_path: Path, text: str, agent: str = "a1", sysprops=None, environ=None):
    p = tmp_path / "a1.conf"
    p.write_text(text)
    cf = config.load([p], sysprops, environ)
    ap = config.plan(cf, agent, sysprops)
    topo, problems = config.build(ap)
    return topo, [str(x).replace(str(p), "F") for x in problems]


def errors(problems: list[str]) -> list[str]:
    return [p for p in problems if ": warning: " not in p]


def test_minimal_agent_builds(tmp_path):
    topo, problems = run(tmp_path, BASE)
    assert problems == []
    assert topo is not None
    assert list(topo.sources) == ["r1"] and list(topo.channels) == ["c1"] and list(topo.sinks) == ["k1"]
    assert topo.sinks["k1"].channel is topo.channels["c1"]
    assert topo.sources["r1"].channel_processor is not None


@pytest.mark.parametrize(
    "extra, expected",
    [
        pytest.param("a1.channels.c1.capacity = abc\n", "F:9: a1.channels.c1 (memory): capacity: 'abc' is not an integer",
                     id="non-numeric"),
        pytest.param("a1.channels.c1.capacity = 10\na1.channels.c1.transactionCapacity = 20\n",
                     "F:10: a1.channels.c1 (memory): transactionCapacity: transactionCapacity (20) must not exceed "
                     "capacity (10)", id="txcap-over-capacity"),
        pytest.param("a1.sources.r1.batchSize = 500\n",
                     "F:9: a1.sources.r1 (seq): batchSize: 500 is larger than the transactionCapacity (100) of "
                     "channel 'c1'; lower batchSize or raise the channel's transactionCapacity", id="batch-over-txcap"),
        pytest.param("a1.sinks.k1.batchSize = 0\n", "F:9: a1.sinks.k1 (null): batchSize: 0 is too small; the minimum is 1",
                     id="below-min"),
        pytest.param("a1.sources.r1.channels = c1 c2\n",
                     "F:9: a1.sources.r1 (seq): channels: channel 'c2' is not defined; a1.channels lists c1",
                     id="undefined-channel"),
        pytest.param("a1.sinks.k1.channel = c7\n",
                     "F:9: a1.sinks.k1 (null): channel: channel 'c7' is not defined; a1.channels lists c1",
                     id="sink-undefined-channel"),
        pytest.param("a1.sources.r1.type = nosuch\n",
                     "F:9: a1.sources.r1 (nosuch): type: unknown source type 'nosuch'; expected one of", id="bad-alias"),
        pytest.param("a1.sources.r1.type = org.apache.flume.source.jms.JMSSource\n",
                     "F:9: a1.sources.r1 (org.apache.flume.source.jms.JMSSource): type: "
                     "'org.apache.flume.source.jms.JMSSource' looks like a Java class; Java plugins cannot run in "
                     "pyflume", id="java-class"),
        pytest.param("a1.channels.c1.type = jdbc\n",
                     "F:9: a1.channels.c1 (jdbc): type: 'jdbc' is a Flume channel type that pyflume does not provide "
                     "yet", id="not-yet"),
        pytest.param("a1.sources.r1.selector.type = multiplexing\na1.sources.r1.selector.mapping.x = c5\n",
                     "F:10: a1.sources.r1 (seq): selector.mapping.x: channel 'c5' is not one of this source's "
                     "channels (c1)", id="selector-unknown-channel"),
        pytest.param("a1.sources.r1.interceptors = i1\n",
                     "F:9: a1.sources.r1 (seq): interceptors.i1.type: interceptor 'i1' has no type", id="interceptor-no-type"),
    ],
)
def test_validation_messages(tmp_path, extra, expected):
    topo, problems = run(tmp_path, BASE + extra)
    assert topo is None
    assert any(p.startswith(expected) for p in errors(problems)), problems


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    text = BASE + "a1.channels.c1.capacity = x\na1.sinks.k1.batchSize = y\na1.sources.r1.totalEvents = z\n"
    topo, problems = run(tmp_path, text)
    assert topo is None
    assert len(errors(problems)) == 3


def test_unknown_property_warns_with_nearest_name(tmp_path):
    topo, problems = run(tmp_path, BASE + "a1.channels.c1.capacty = 10\n")
    assert topo is not None
    assert problems == ["F:9: a1.channels.c1 (memory): warning: unknown property 'capacty'; did you mean 'capacity'?"]


def test_flume_class_names_resolve_like_aliases(tmp_path):
    text = BASE.replace("type = seq", "type = org.apache.flume.source.SequenceGeneratorSource").replace(
        "type = memory", "type = org.apache.flume.channel.MemoryChannel").replace(
        "type = null", "type = org.apache.flume.sink.NullSink")
    topo, problems = run(tmp_path, text)
    assert problems == [] and topo is not None
    assert type(topo.sources["r1"]).__name__ == "SequenceGeneratorSource"


def test_aliases_are_case_insensitive(tmp_path):
    topo, problems = run(tmp_path, BASE.replace("type = seq", "type = SEQ").replace("type = memory", "type = Memory"))
    assert problems == [] and topo is not None


class CustomSource(EventDrivenSource):
    """A user's own source, loaded by dotted path."""

    spec = Spec(Prop("greeting", "str", "hi", "What to say."))

    def start(self) -> None:
        assert self.channel_processor is not None
        self.channel_processor.process_batch([Event(self.conf["greeting"].encode())])


def test_dotted_python_path_loads_a_custom_component(tmp_path):
    text = BASE.replace("type = seq", f"type = {__name__}.CustomSource") + "a1.sources.r1.greeting = hello\n"
    topo, problems = run(tmp_path, text)
    assert problems == [], problems
    assert isinstance(topo.sources["r1"], CustomSource)
    assert topo.sources["r1"].conf["greeting"] == "hello"


def test_dotted_path_that_is_not_a_component_is_refused(tmp_path):
    topo, problems = run(tmp_path, BASE.replace("type = seq", "type = pathlib.Path"))
    assert topo is None
    assert any("'pathlib.Path' is not a source: it must subclass agent.core.Source" in p for p in problems)


def test_empty_values_are_dropped_as_in_flume(tmp_path):
    topo, problems = run(tmp_path, BASE + "a1.channels.c1.capacity =\n")
    assert problems == [] and topo.channels["c1"].capacity == 100


def test_substitution_env_sys_default_and_escape(tmp_path):
    text = BASE + (
        "a1.channels.c1.capacity = ${env:CAP}\n"
        "a1.channels.c1.transactionCapacity = ${sys:TX}\n"
        "a1.sinks.k1.logEveryNEvents = ${env:NOPE:-77}\n"
    )
    topo, problems = run(tmp_path, text, sysprops={"TX": "200"}, environ={"CAP": "500"})
    assert problems == [], problems
    assert topo.channels["c1"].capacity == 500
    assert topo.channels["c1"].transaction_capacity == 200
    assert topo.sinks["k1"].conf["logEveryNEvents"] == 77


def test_unresolved_substitution_stays_literal_with_a_warning(tmp_path):
    topo, problems = run(tmp_path, BASE + "a1.sinks.k1.logEveryNEvents = ${UNSET_THING}\n", environ={})
    assert topo is None  # the literal is not an integer
    assert any("'${UNSET_THING}' is not set; it stays as written" in p for p in problems)


def test_legacy_env_resolver_property(tmp_path):
    sysprops = {"propertiesImplementation": "org.apache.flume.node.EnvVarResolverProperties"}
    topo, problems = run(tmp_path, BASE + "a1.channels.c1.capacity = ${CAP}\n", sysprops=sysprops,
                         environ={"CAP": "321"})
    assert problems == [] and topo.channels["c1"].capacity == 321


def test_config_key_reference(tmp_path):
    text = "cap = 222\n" + BASE + "a1.channels.c1.capacity = ${cap}\n"
    topo, problems = run(tmp_path, text)
    assert topo.channels["c1"].capacity == 222


def test_env_config_filter(tmp_path):
    text = BASE + "a1.configfilters = f1\na1.configfilters.f1.type = env\na1.channels.c1.capacity = ${f1['CAPX']}\n"
    import os

    os.environ["CAPX"] = "444"
    try:
        topo, problems = run(tmp_path, text)
    finally:
        del os.environ["CAPX"]
    assert topo.channels["c1"].capacity == 444


def test_unknown_agent_lists_agents(tmp_path):
    topo, problems = run(tmp_path, BASE + BASE.replace("a1.", "b2."), agent="zz")
    assert topo is None
    assert any("agent 'zz' is not defined in this file; agents defined: a1, b2" in p for p in problems)


def test_sink_in_two_groups_is_an_error(tmp_path):
    text = BASE.replace("a1.sinks = k1", "a1.sinks = k1 k2\na1.sinkgroups = g1 g2") + (
        "a1.sinks.k2.type = null\na1.sinks.k2.channel = c1\n"
        "a1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failover\n"
        "a1.sinkgroups.g2.sinks = k1\na1.sinkgroups.g2.processor.type = default\n"
    )
    topo, problems = run(tmp_path, text)
    assert topo is None
    assert any("sink 'k1' is already in sink group 'g1'; a sink may belong to one group only" in p for p in problems)


def test_sinkgroup_without_processor_type_is_an_error(tmp_path):
    text = BASE.replace("a1.sinks = k1", "a1.sinks = k1\na1.sinkgroups = g1") + "a1.sinkgroups.g1.sinks = k1\n"
    topo, problems = run(tmp_path, text)
    assert topo is None
    assert any("processor.type: required property is missing" in p for p in problems)


def test_unused_channel_is_a_warning_and_not_started(tmp_path):
    text = BASE.replace("a1.channels = c1", "a1.channels = c1 c2") + "a1.channels.c2.type = memory\n"
    topo, problems = run(tmp_path, text)
    assert topo is not None and "c2" not in topo.channels
    assert any("a1.channels.c2 (memory): warning: no source or sink uses this channel" in p for p in problems)


def test_properties_of_unlisted_components_are_warned(tmp_path):
    topo, problems = run(tmp_path, BASE + "a1.sinks.k9.type = logger\n")
    assert topo is not None
    assert any("'k9' is not listed in a1.sinks = k1; its properties are ignored" in p for p in problems)


def test_source_with_channel_singular_is_explained(tmp_path):
    topo, problems = run(tmp_path, BASE.replace("a1.sources.r1.channels = c1", "a1.sources.r1.channel = c1"))
    assert topo is None
    assert any("sources use 'channels' (plural, space-separated), not 'channel'" in p for p in problems)


def test_missing_required_points_at_the_type_line(tmp_path):
    text = BASE.replace("a1.sinks.k1.type = null", "a1.sinks.k1.type = file_roll")
    topo, problems = run(tmp_path, text)
    assert "F:7: a1.sinks.k1 (file_roll): sink.directory: required property is missing" in problems[0]


def test_log4j_files_in_the_conf_dir_set_the_level(tmp_path):
    from agent.cli import _log4j_level

    (tmp_path / "log4j.properties").write_text("flume.root.logger=DEBUG,LOGFILE\nlog4j.rootLogger=INFO\n")
    assert _log4j_level(tmp_path) == "DEBUG"
    (tmp_path / "log4j2.xml").write_text(
        '<Configuration><Loggers><Logger name="x" level="ERROR"/>'
        '<Root level="${sys:flume.root.logger:-WARN}"><AppenderRef ref="c"/></Root></Loggers></Configuration>')
    assert _log4j_level(tmp_path) == "WARN"  # log4j2.xml wins, as in Flume 1.11
    (tmp_path / "log4j2.xml").write_text('<Configuration><Loggers><Root level="error"/></Loggers></Configuration>')
    assert _log4j_level(tmp_path) == "error"


def test_a_prefix_family_ends_at_a_dot(tmp_path):
    """`header.*` and `kafka.consumer.*` are families; `headerz.foo` and `kafka.consumerr.x` are typos, not members."""
    text = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = kafka
a1.sources.r1.channels = c1
a1.sources.r1.kafka.bootstrap.servers = 127.0.0.1:9
a1.sources.r1.kafka.topics = t
a1.sources.r1.header.trace = trace-id
a1.sources.r1.headerz.foo = x
a1.sources.r1.kafka.consumerr.fetch.min.bytes = 1
a1.channels.c1.type = memory
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""
    pytest.importorskip("confluent_kafka")
    _, problems = run(tmp_path, text)
    assert "F:9: a1.sources.r1 (kafka): warning: unknown property 'headerz.foo'" in problems
    assert "F:10: a1.sources.r1 (kafka): warning: unknown property 'kafka.consumerr.fetch.min.bytes'" in problems
    assert not any("header.trace" in p for p in problems)


def test_typed_config_has_attributes_and_compares_by_value():
    from agent.spec import Conf

    spec = Spec(Prop("hdfs.rollInterval", "int", 30), Prop("batch-size", "int", 100),
                Prop("serializer", "str", "TEXT"), Prop("serializer.", prefix=True), Prop("kafka.producer", prefix=True))
    a = Conf.from_dict(spec, hdfs__rollInterval="5", serializer__appendNewline="false", kafka__producer__acks="all")
    c = a.typed
    assert (c.hdfs_roll_interval, c.batch_size, c.serializer) == (5, 100, "TEXT")
    assert c.serializer_options == {"appendNewline": "false"} and c.kafka_producer == {"acks": "all"}
    assert c == Conf.from_dict(spec, hdfs__rollInterval="5", serializer__appendNewline="false",
                               kafka__producer__acks="all").typed
    assert c != Conf.from_dict(spec, hdfs__rollInterval="6").typed
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.batch_size = 1  # type: ignore[misc]
