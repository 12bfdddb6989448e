"""The irc sink against a real IRC server (Debian's ngircd, started by a fixture on a free loopback port) with a
real IRC client reading the channel: messages arrive in order, split as Flume splits them, with the server password;
a refused registration or a server that goes away rolls the batch back and nothing is lost."""

from __future__ import annotations

import os
import socket

import pytest

from agent import config
from agent.core import Event, Status
from peers.ircd import NGIRCD, PASSWORD, IrcClient, Ircd
from tests.conftest import free_port, put_events, started_sink, wait_for


@pytest.fixture(scope="module")
def ircd(tmp_path_factory):
    if NGIRCD is None:
        reason = "ngircd is not installed (apt-get install ngircd)"
        if os.environ.get("PYFLUME_REQUIRE_PEERS") == "1":
            pytest.fail(f"PYFLUME_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)
    server = Ircd(tmp_path_factory.mktemp("ngircd"), free_port())
    yield server
    server.stop()


@pytest.fixture
def listener(ircd, request):
    chan = "#" + request.node.name[5:30].replace("[", "").replace("]", "")
    client = IrcClient(ircd.port, "reader", chan)
    yield client
    client.close()


CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = irc
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = {port}
a1.sinks.k1.nick = {nick}
a1.sinks.k1.chan = {chan}
"""


def irc_sink(tmp_path, port: int, chan: str, extra: str = "", nick: str = "flume", password: str = PASSWORD):
    p = tmp_path / "a1.conf"
    text = CONF.format(port=port, chan=chan.lstrip("#"), nick=nick) + extra
    if password:
        text += f"a1.sinks.k1.password = {password}\n"
    p.write_text(text)
    return started_sink(p)


def left(ch) -> list[bytes]:  # noqa: ANN001
    with ch.transaction() as tx:
        got = tx.take_batch(ch.transaction_capacity)
        tx.rollback()
    return [e.body for e in got]


def test_every_body_arrives_in_order_as_a_message(tmp_path, ircd, listener):
    k, ch = irc_sink(tmp_path, ircd.port, listener.channel, "a1.sinks.k1.user = flumeuser\na1.sinks.k1.name = F\n")
    bodies = [f"event {i} – ünïcode" for i in range(150)]
    put_events(ch, [Event(b.encode()) for b in bodies[:100]])
    put_events(ch, [Event(b.encode()) for b in bodies[100:]])
    assert [k.process() for _ in range(3)] == [Status.READY, Status.READY, Status.BACKOFF]
    assert left(ch) == []  # committed: the server answered the PING after the messages
    wait_for(lambda: len(listener.messages) >= 150, 10, "the messages in the channel")
    assert listener.messages == [("flume", b) for b in bodies]
    k.stop()


def test_splitlines_splits_by_the_java_regex_and_a_line_break_never_becomes_a_command(tmp_path, ircd, listener):
    k, ch = irc_sink(tmp_path, ircd.port, listener.channel, "a1.sinks.k1.splitlines = true\n"
                                                            "a1.sinks.k1.splitchars = [,;]\n", nick="splitter")
    put_events(ch, [Event(b"a,b;c,,"), Event(b"one\r\nQUIT :injected")])
    assert k.process() is Status.READY
    wait_for(lambda: len(listener.messages) >= 5, 10, "the pieces")
    assert listener.texts() == ["a", "b", "c", "one", "QUIT :injected"]
    k.stop()


def test_without_splitlines_a_body_is_one_message(tmp_path, ircd, listener):
    k, ch = irc_sink(tmp_path, ircd.port, listener.channel, nick="whole")
    put_events(ch, [Event(b"a,b;c"), Event(b""), Event(b"last")])
    assert k.process() is Status.READY
    wait_for(lambda: len(listener.messages) >= 2, 10, "the messages")
    assert listener.texts() == ["a,b;c", "last"]  # the empty body is not sent: the server refuses it
    k.stop()


def test_a_wrong_password_rolls_back_and_the_events_wait(tmp_path, ircd, listener):
    k, ch = irc_sink(tmp_path, ircd.port, listener.channel, nick="locked", password="wrong")
    put_events(ch, [Event(b"kept")])
    assert k.process() is Status.BACKOFF
    assert left(ch) == [b"kept"] and listener.messages == []
    k.stop()


def test_a_server_that_went_away_is_reconnected_and_nothing_is_lost(tmp_path, ircd, listener):
    k, ch = irc_sink(tmp_path, ircd.port, listener.channel, nick="phoenix")
    put_events(ch, [Event(b"before")])
    assert k.process() is Status.READY
    k._sock.shutdown(socket.SHUT_RDWR)  # the connection breaks under the sink (as when the server restarts)
    after = [b"after %d" % i for i in range(10)]
    put_events(ch, [Event(b) for b in after])
    assert k.process() is Status.BACKOFF and left(ch) == after  # rolled back
    # reconnected; after a failed batch the sink takes half as many events (a server may refuse big bursts)
    assert k.process() is Status.READY and left(ch) == after[5:]
    assert k.process() is Status.READY and left(ch) == []
    wait_for(lambda: len(listener.messages) >= 11, 10, "the messages")
    assert listener.texts() == ["before"] + [b.decode() for b in after]
    k.stop()


def test_check_warns_about_a_hash_in_chan(tmp_path):
    p = tmp_path / "a1.conf"
    p.write_text(CONF.format(port=6667, chan="#flume", nick="x"))
    topo, problems = config.check([str(p)], "a1")
    assert topo is not None
    assert [str(x) for x in problems] == [
        f"{p}:14: a1.sinks.k1 (irc): chan: warning: Flume puts '#' before chan itself, so this writes to "
        f"'##flume'; write the channel name without its '#'"]


def test_the_agent_runs_the_sink(ircd, listener, run_agent):
    agent = run_agent(CONF.replace("a1.sources.r1.type = seq\n", "a1.sources.r1.type = seq\n"
                                   "a1.sources.r1.totalEvents = 250\na1.sources.r1.batchSize = 50\n")
                      .format(port=ircd.port, chan=listener.channel.lstrip("#"), nick="agent")
                      + f"a1.sinks.k1.password = {PASSWORD}\n")
    wait_for(lambda: len(listener.messages) >= 250, 30, "the seq events in the channel")
    assert agent.terminate() == 0
    assert listener.messages == [("agent", str(i)) for i in range(250)]
