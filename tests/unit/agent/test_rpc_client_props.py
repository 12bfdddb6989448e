"""Flume's RPC client properties for ``avro-client --rpcProps``: what is read, what is refused (with file, line and
key), and the load balancing host order with backoff."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core import ChannelProcessor, Event
from agent.rpc_client_props import FailoverClient, HostOrder, LoadBalancingClient, build_sender, load_rpc_props
from agent.spec import Conf, Problem
from channels.memory import MemoryChannel
from channels.selectors import ReplicatingChannelSelector
from conftest import free_port, take_events
from sources.avro import AvroSource


def load(tmp_path: Path, text: str):  # noqa: ANN201
    path = tmp_path / "client.properties"
    path.write_text(text)
    problems: list[Problem] = []
    props = load_rpc_props(path, problems)
    return props, [str(p).replace(str(path), "F") for p in problems]


def test_failover_hosts_in_order_with_flumes_keys(tmp_path: Path) -> None:
    props, problems = load(tmp_path, "client.type = default_failover\nhosts = h1 h2\nhosts.h1 = 127.0.0.1:4141\n"
                                     "hosts.h2 = localhost:4142\nbatch-size = 50\nmax-attempts = 3\n"
                                     "compression-type = deflate\nrequest-timeout = 5000\n")
    assert problems == []
    assert [(h.name, h.host, h.port) for h in props.hosts] == [("h1", "127.0.0.1", 4141), ("h2", "localhost", 4142)]
    sender, batch = build_sender(props)
    assert isinstance(sender, FailoverClient) and batch == 50 and sender.max_attempts == 3


def test_client_type_is_case_insensitive_and_max_attempts_defaults_to_the_hosts(tmp_path: Path) -> None:
    props, problems = load(tmp_path, "client.type = DEFAULT_LOADBALANCE\nhosts = a b c\nhosts.a = h:1\nhosts.b = h:2\n"
                                     "hosts.c = h:3\nhost-selector = RANDOM\nbackoff = true\nmaxBackoff = 5000\n")
    assert problems == []
    sender, batch = build_sender(props)
    assert isinstance(sender, LoadBalancingClient) and batch == 100
    props, _ = load(tmp_path, "client.type = default_failover\nhosts = a b\nhosts.a = h:1\nhosts.b = h:2\n")
    assert build_sender(props)[0].max_attempts == 2


CASES = [
    ("no hosts", "client.type = default\n",
     ["F: hosts: required property is missing (Space-separated names of the hosts, each given by hosts.<name>)"]),
    ("not host:port", "hosts = h1\nhosts.h1 = localhost\n",
     ["F:2: hosts.h1: 'localhost' is not host:port (a host name or address, a colon, a port from 1 to 65535)"]),
    ("bad port", "hosts = h1\nhosts.h1 = localhost:99999\n",
     ["F:2: hosts.h1: 'localhost:99999' is not host:port (a host name or address, a colon, a port from 1 to 65535)"]),
    ("default host missing", "hosts = h1\nhosts.h2 = x:1\n",
     ["F:1: hosts: 'h1' has no hosts.h1 = host:port",
      "F:2: hosts.h2: warning: 'h2' is not listed in hosts (h1); unused"]),
    ("failover leaves out a host without address", "client.type = default_failover\nhosts = h1 h2\nhosts.h2 = x:1\n",
     ["F:2: hosts: warning: 'h1' has no hosts.h1 = host:port; it is left out, as Flume does"]),
    ("load balance needs two", "client.type = default_loadbalance\nhosts = h1\nhosts.h1 = x:1\n",
     ["F:2: hosts: at least two hosts are required to use the load balancing RPC client; 1 given"]),
    ("default with two hosts", "hosts = h1 h2\nhosts.h1 = x:1\nhosts.h2 = x:2\n",
     ["F:1: hosts: warning: more than one host for the default client: only h1 is used (client.type = "
      "default_failover or default_loadbalance uses them all)"]),
    ("unknown client type", "client.type = failover\nhosts = h1\nhosts.h1 = x:1\n",
     ["F:1: client.type: 'failover' is not valid; expected one of default, default_failover, default_loadbalance, "
      "thrift"]),
    ("thrift", "client.type = thrift\nhosts = h1\nhosts.h1 = x:1\n",
     ["F:1: client.type: the Thrift RPC client is not provided by pyflume's avro-client; use default, "
      "default_failover or default_loadbalance with Avro sources"]),
    ("typo and short timeout", "hosts = h1\nhosts.h1 = x:1\nbatch-sise = 5\nconnect-timeout = 500\n",
     ["F:3: warning: unknown property 'batch-sise'; did you mean 'batch-size'?",
      "F:4: connect-timeout: warning: less than 1000 ms; the default (20000) is used, as Flume does"]),
    ("bad numbers", "hosts = h1\nhosts.h1 = x:1\nbatch-size = 0\nmax-attempts = two\ncompression-type = gzip\n",
     ["F:3: batch-size: 0 is too small; the minimum is 1", "F:4: max-attempts: 'two' is not an integer",
      "F:5: compression-type: 'gzip' is not valid; expected one of none, deflate"]),
]


@pytest.mark.parametrize("text, expected", [pytest.param(t, e, id=i) for i, t, e in CASES])
def test_problems_name_the_line_the_key_and_what_is_valid(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert load(tmp_path, text)[1] == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_round_robin_starts_each_batch_at_the_next_host() -> None:
    order = HostOrder(3, random_order=False, backoff=False, max_backoff_ms=30000)
    assert [order.order() for _ in range(4)] == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]
    order.failed(1)  # without backoff a failure changes nothing
    assert order.order() == [1, 2, 0]


def test_backoff_leaves_a_failed_host_out_for_a_doubling_time_up_to_max_backoff() -> None:
    clock = Clock()
    order = HostOrder(2, random_order=False, backoff=True, max_backoff_ms=5000, clock=clock)
    order.failed(0)
    assert order.order() == [1] and order.order() == [1]
    clock.now += 2.1  # first failure: 2 s
    assert sorted(order.order()) == [0, 1]
    for expect in (4.0, 5.0, 5.0):  # then 4 s, then capped by maxBackoff
        order.failed(0)
        clock.now += expect - 0.1
        assert order.order() == [1]
        clock.now += 0.2
        assert 0 in order.order()
    order.failed(0)
    order.failed(1)
    assert order.order() == []


def test_random_order_is_a_permutation_of_the_hosts_not_backing_off() -> None:
    order = HostOrder(4, random_order=True, backoff=True, max_backoff_ms=30000, rng=random.Random(7))
    seen = {tuple(order.order()) for _ in range(30)}
    assert len(seen) > 1 and all(sorted(s) == [0, 1, 2, 3] for s in seen)
    order.failed(2)
    assert all(2 not in order.order() for _ in range(10))


class Aggregator:
    """A real pyflume avro source on a free loopback port, into a memory channel nobody drains: once ``capacity``
    events are in it, the source answers FAILED, as it does when its channels are full."""

    def __init__(self, capacity: int):
        self.port = free_port()
        self.channel = MemoryChannel("c1", Conf.from_dict(MemoryChannel.spec, capacity=str(capacity),
                                                          transactionCapacity=str(capacity), **{"keep-alive": "0"}))
        selector = ReplicatingChannelSelector("s", Conf.from_dict(ReplicatingChannelSelector.spec))
        selector.configure_channels([self.channel])
        self.source = AvroSource("r1", Conf.from_dict(AvroSource.spec, bind="127.0.0.1", port=str(self.port)))
        self.source.channel_processor = ChannelProcessor(selector)
        self.channel.start()
        self.source.start()

    def bodies(self) -> list[bytes]:
        return [e.body for e in take_events(self.channel, self.channel.capacity)]

    def refusals(self) -> int:
        return self.source.counter.channel_write_fail

    def stop(self) -> None:
        self.source.stop()
        self.channel.stop()


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[Aggregator, Aggregator, str]]:
    small, big = Aggregator(100), Aggregator(10000)
    text = f"hosts = h1 h2\nhosts.h1 = 127.0.0.1:{small.port}\nhosts.h2 = 127.0.0.1:{big.port}\nbatch-size = 50\n"
    yield small, big, text
    small.stop()
    big.stop()


def send(sender, n: int, batch: int = 50) -> list[bytes]:  # noqa: ANN001
    bodies = [b"e%03d" % i for i in range(n)]
    for i in range(0, n, batch):
        sender.append_batch([Event(b) for b in bodies[i:i + batch]])
    sender.close()
    return bodies


def test_failover_moves_to_the_next_host_when_a_batch_is_refused_and_stays_there(two_hosts, tmp_path) -> None:
    small, big, text = two_hosts
    props, problems = load(tmp_path, "client.type = default_failover\n" + text)
    assert problems == []
    bodies = send(build_sender(props)[0], 300)
    assert small.bodies() == bodies[:100]  # two batches, then the third was refused (FAILED)
    assert big.bodies() == bodies[100:]  # the refused batch and every later one, in order
    assert small.refusals() == 1


def test_load_balance_with_backoff_stops_trying_a_refusing_host(two_hosts, tmp_path) -> None:
    small, big, text = two_hosts
    props, _ = load(tmp_path, "client.type = default_loadbalance\nbackoff = true\n" + text)
    bodies = send(build_sender(props)[0], 600)
    on_small, on_big = small.bodies(), big.bodies()
    assert sorted(on_small + on_big) == bodies  # nothing twice, nothing lost
    assert on_small == bodies[0:50] + bodies[100:150]  # batches 1 and 3 (round robin); batch 5 was refused
    assert small.refusals() == 1  # and then h1 was left out for 2 s
