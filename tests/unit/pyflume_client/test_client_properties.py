"""pyflume_client's reading of Flume's RPC client properties (RpcClientFactory's keys) and the load balancing
client's host order, with Flume's backoff, on a recording transport (the wire is tested in tests/e2e)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pytest

from agent.core import Event
from pyflume_client import (
    TRANSPORTS,
    AvroClient,
    ClientError,
    FailoverClient,
    LoadBalancingClient,
    Transport,
    client_from_properties,
)


@pytest.mark.parametrize("name, props, error", [
    ("no hosts", {"client.type": "default"}, "no hosts: set hosts = h1 and hosts.h1 = host:port"),
    ("host without port", {"hosts": "h1", "hosts.h1": "example.com"},
     "hosts.h1 = 'example.com': expected host:port"),
    ("unknown type", {"hosts": "h1", "hosts.h1": "a:1", "client.type": "zeromq"},
     "client.type = 'zeromq': expected default, default_failover, default_loadbalance"),
    ("kerberos", {"hosts": "h1", "hosts.h1": "a:1", "kerberos": "true"},
     "kerberos = true is not supported by pyflume_client"),
    ("bad compression", {"hosts": "h1", "hosts.h1": "a:1", "compression-type": "gzip"},
     "avro client a:1: compression-type: 'gzip' is not valid; expected one of none, deflate"),
    ("load balancing one host", {"hosts": "h1", "hosts.h1": "a:1", "client.type": "default_loadbalance"},
     "the load balancing client needs at least two hosts"),
])
def test_bad_properties_say_what_is_wrong(name, props, error):
    with pytest.raises(ClientError) as e:
        client_from_properties(props)
    assert str(e.value).startswith(error), (name, str(e.value))


def test_flumes_keys_make_flumes_clients(caplog):
    hosts = {"hosts": "h1 h2 h3", "hosts.h1": "a:1", "hosts.h2": "b:2"}  # h3 has no address: skipped, as Flume
    with caplog.at_level(logging.WARNING, "pyflume_client"):
        default = client_from_properties({**hosts, "batch-size": "0", "compresion-type": "deflate"})
    assert isinstance(default, AvroClient) and str(default.host) == "a:1" and default.batch_size == 100
    assert "batch-size = '0' is not a positive integer; using 100 (as Flume)" in caplog.text
    assert "uses one host; a:1 is used, the others are ignored" in caplog.text
    assert "unknown property 'compresion-type'; did you mean 'compression-type'?" in caplog.text
    failover = client_from_properties({**hosts, "client.type": "DEFAULT_FAILOVER", "max-attempts": "5",
                                       "batch-size": "7"})
    assert isinstance(failover, FailoverClient)
    assert (failover.max_attempts, failover.batch_size, [str(h) for h in failover.hosts]) == (5, 7, ["a:1", "b:2"])
    lb = client_from_properties({**hosts, "client.type": "default_loadbalance", "host-selector": "random",
                                 "backoff": "true", "maxBackoff": "5000"})
    assert isinstance(lb, LoadBalancingClient) and lb.random and lb.backoff and lb.max_backoff_ms == 5000


class Recording:
    """A host that answers or fails as its test says, and records the batches it got."""

    down: set[str] = set()

    def __init__(self, host: str, port: int, props: Mapping[str, str]):
        self.name, self.connected, self.got = f"{host}:{port}", False, []

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def append_batch(self, events: Sequence[Event]) -> None:
        if self.name in self.down:
            raise ConnectionError(f"{self.name} is down")
        self.got.append([e.body for e in events])


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setitem(TRANSPORTS, "recording", Transport(Recording, (ConnectionError,)))
    Recording.down = set()
    return Recording


def test_round_robin_with_flumes_backoff(recording):
    now = [1000.0]
    client = LoadBalancingClient(["a:1", "b:2", "c:3"], backoff=True, transport="recording",
                                 clock=lambda: now[0])
    conns = {str(h): h.conn for h in client.hosts}
    for i in range(3):
        client.append(f"e{i}")
    assert [conns[h].got for h in ("a:1", "b:2", "c:3")] == [[[b"e0"]], [[b"e1"]], [[b"e2"]]]
    recording.down = {"b:2"}
    client.append("e3")  # a's turn
    client.append("e4")  # b's turn: b fails, c takes it; b is skipped for 2 s (its first failure in a row)
    client.append_batch(["e5", "e6"])
    assert conns["c:3"].got[-1:] == [[b"e4"]] and conns["a:1"].got[-1] == [b"e5", b"e6"]
    now[0] += 1.5
    client.append("e7")
    assert [b"e7"] not in conns["b:2"].got  # still skipped, not even tried
    recording.down = set()
    now[0] += 1.0  # 2.5 s after the failure: b is back in the rotation
    for i in range(8, 11):
        client.append(f"e{i}")
    assert sum(batch in conns["b:2"].got for batch in ([b"e8"], [b"e9"], [b"e10"])) == 1  # one turn in three


def test_every_host_failing_is_one_clear_error(recording):
    recording.down = {"a:1", "b:2"}
    failover = FailoverClient(["a:1", "b:2"], transport="recording")
    with pytest.raises(ClientError, match=r"^1 events not delivered after 2 attempts: a:1: a:1 is down; b:2: b:2 is"):
        failover.append("x")
    lb = LoadBalancingClient(["a:1", "b:2"], transport="recording", backoff=True)
    with pytest.raises(ClientError, match="^1 events not delivered to any host: a:1: a:1 is down; b:2"):
        lb.append("x")
    with pytest.raises(ClientError, match="every host is backing off after failures"):
        lb.append("x")
    lb.close()
    with pytest.raises(ClientError, match="the client is closed"):
        lb.append("x")
