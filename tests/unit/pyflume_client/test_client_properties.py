"""pyflume_client's settings: Flume's RPC client keys from code (keyword arguments, a mapping) or from a properties
file, checked by agent.rpc_client_props, with errors a developer can act on (the wire is tested in tests/e2e)."""

from __future__ import annotations

import logging

import pytest

from agent.core import Event
from agent.rpc import RpcError
from pyflume_client import (
    AvroClient,
    ClientError,
    FailoverClient,
    FlumeClient,
    LoadBalancingClient,
    client_from_properties,
)


@pytest.mark.parametrize("name, props, error", [
    ("no hosts", {"client.type": "default"}, "hosts: required property is missing"),
    ("host without port", {"hosts": "h1", "hosts.h1": "example.com"},
     "hosts.h1: 'example.com' is not host:port"),
    ("unknown type", {"hosts": "h1", "hosts.h1": "a:1", "client.type": "zeromq"},
     "client.type: 'zeromq' is not valid; expected one of default, default_failover, default_loadbalance"),
    ("bad compression", {"hosts": "h1", "hosts.h1": "a:1", "compression-type": "gzip"},
     "compression-type: 'gzip' is not valid; expected one of none, deflate"),
    ("load balancing one host", {"hosts": "h1", "hosts.h1": "a:1", "client.type": "default_loadbalance"},
     "hosts: at least two hosts are required to use the load balancing RPC client; 1 given"),
    ("trust store missing", {"hosts": "h1", "hosts.h1": "a:1", "ssl": "true", "truststore": "/nonexistent.pem"},
     "truststore: cannot load /nonexistent.pem"),
])
def test_bad_properties_say_what_is_wrong(name, props, error):
    with pytest.raises(ClientError) as e:
        client_from_properties(props)
    assert error in str(e.value), (name, str(e.value))


def test_properties_make_flumes_client_types():
    hosts = {"hosts": "h1 h2", "hosts.h1": "a:1", "hosts.h2": "b:2"}
    assert str(client_from_properties(hosts)) == "AvroClient(a:1)"  # the default client uses the first host
    failover = client_from_properties({**hosts, "client.type": "DEFAULT_FAILOVER", "batch-size": "7"})
    assert isinstance(failover, FailoverClient) and failover.batch_size == 7
    assert str(client_from_properties({**hosts, "client.type": "default_loadbalance"})) == \
        "LoadBalancingClient(a:1, b:2)"


def test_a_properties_file_names_its_lines(tmp_path):
    path = tmp_path / "client.properties"
    path.write_text("client.type = default_failover\nhosts = h1 h2\nhosts.h1 = a:1\nhosts.h2 = b\n")
    with pytest.raises(ClientError, match=rf"^{path}:4: hosts.h2: 'b' is not host:port"):
        client_from_properties(path)
    with pytest.raises(ClientError, match="does-not-exist"):
        client_from_properties(tmp_path / "does-not-exist")


def test_keyword_arguments_are_flumes_keys(caplog):
    with caplog.at_level(logging.WARNING, "pyflume_client"):
        client = AvroClient("a", 1, batch_size=7, compresion_type="deflate", connect_timeout=500)
    assert (str(client), client.batch_size) == ("AvroClient(a:1)", 7)
    assert "AvroClient(a:1): unknown property 'compresion-type'; did you mean 'compression-type'?" in caplog.text
    assert "AvroClient(a:1): connect-timeout: less than 1000 ms; the default (20000) is used" in caplog.text
    failover = FailoverClient(["a:1", ("b", 2)], max_attempts=5)
    assert str(failover) == "FailoverClient(a:1, b:2)"
    with pytest.raises(ClientError, match="LoadBalancingClient: host-selector: 'fastest' is not valid"):
        LoadBalancingClient(["a:1", "b:2"], host_selector="fastest")
    with pytest.raises(ClientError, match="batch_size = 0: expected at least 1"):
        FlumeClient(make=lambda: None, batch_size=0)  # type: ignore[arg-type, return-value]


class Answering:
    """A sender of another transport: answers, then fails as its test says, recording what it got."""

    def __init__(self) -> None:
        self.got: list[list[bytes]] = []
        self.fail = False

    def append_batch(self, events: list[Event]) -> None:
        if self.fail:
            raise RpcError("the host went away")
        self.got.append([e.body for e in events])

    def close(self) -> None:
        pass


def test_any_sender_plugs_in_and_gets_sub_batches():
    sender = Answering()
    with FlumeClient(sender, batch_size=2, target="thrift://x:1") as client:
        client.append_batch(["a", b"b", Event(b"c", {"k": "v"})])
        sender.fail = True
        with pytest.raises(ClientError, match=r"^1 events not delivered to thrift://x:1: the host went away$"):
            client.append("d")
    assert sender.got == [[b"a", b"b"], [b"c"]]
    with pytest.raises(ClientError, match="the client is closed"):
        client.append("e")


def test_a_sender_without_make_is_not_used_after_a_fork():
    sender = Answering()
    client = FlumeClient(sender)
    client.after_fork()  # as in a forked child: the inherited connection is the parent's
    with pytest.raises(ClientError, match="made before the process forked and has no make="):
        client.append("x")
    assert sender.got == []
    remade = []
    client = FlumeClient(make=lambda: remade.append(Answering()) or remade[-1])
    client.after_fork()
    client.append("y")
    assert len(remade) == 2 and remade[1].got == [[b"y"]] and remade[0].got == []
