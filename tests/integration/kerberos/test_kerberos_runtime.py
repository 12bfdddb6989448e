"""A long-running agent on a kerberized HDFS: its tickets are renewed before they expire and it keeps writing across
renewals; while the KDC cannot be reached the batches stay in the channel and arrive once it is back.

The namenode of the session's secure cluster drops connections idle for 4 s, so each pause between the bursts below
makes the agent authenticate again with the tickets it holds at that moment."""

from __future__ import annotations

import re
import time

import pytest

from conftest import free_port, send_lines, wait_for_events

pytestmark = pytest.mark.peer

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = {uri}{path}
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.batchSize = 100
a1.sinks.k1.hdfs.rollInterval = 0
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.rollCount = 100
a1.sinks.k1.hdfs.callTimeout = 20000
a1.sinks.k1.hdfs.kerberosPrincipal = {principal}
a1.sinks.k1.hdfs.kerberosKeytab = {keytab}
"""


def _hadoop_lines(secure_hdfs, path: str) -> list[str]:
    """Every line under ``path`` as Hadoop's own FsShell reads it (as hdfs/localhost)."""
    return secure_hdfs.dfs("-text", f"{path}/FlumeData.*").stdout.decode().split()


def test_writes_across_ticket_renewals(run_agent, realm, secure_hdfs, kerberos_client_env) -> None:
    """Tickets of renew/localhost live 20 s; the agent writes a burst every 6 s for 66 s (3+ lifetimes)."""
    port, path = free_port(), "/flume/kerberos-renewal"
    agent = run_agent(CONF.format(port=port, uri=secure_hdfs.uri, path=path, principal=realm.short,
                                  keytab=realm.short_keytab))
    agent.wait_for_port(port)
    sent: list[str] = []
    start = time.monotonic()
    burst = 0
    while time.monotonic() - start < 66:
        lines = [f"{burst:03d}-{i:03d}" for i in range(100)]
        send_lines(port, [x.encode() for x in lines])
        sent += lines
        burst += 1
        time.sleep(6)
    wait_for_events(sent, lambda: secure_hdfs.closed_lines(path), timeout=60, logs=[agent], every=1)
    assert sorted(_hadoop_lines(secure_hdfs, path)) == sorted(sent)
    log = agent.log()
    lifetimes = [int(s) for s in re.findall(r"Kerberos (?:re-)?login as renew/localhost@\S+ from keytab \S+: ticket "
                                            r"valid for (\d+) s", log)]
    assert lifetimes and max(lifetimes) <= 20, log[-3000:]
    assert len(re.findall("Kerberos re-login as renew/localhost", log)) >= 3, log[-3000:]
    assert "failed" not in log, log[-3000:]
    assert agent.terminate() == 0


def test_unreachable_kdc_keeps_events_in_the_channel(run_agent, realm, secure_hdfs, kerberos_client_env) -> None:
    port, path = free_port(), "/flume/kerberos-kdc-down"
    realm.kdc.stop()
    try:
        agent = run_agent(CONF.format(port=port, uri=secure_hdfs.uri, path=path, principal=realm.flume,
                                      keytab=realm.flume_keytab))
        agent.wait_for_port(port)
        sent = [f"down-{i:04d}" for i in range(500)]
        send_lines(port, [x.encode() for x in sent])
        agent.wait_for_log("Cannot contact any KDC", timeout=30)
        time.sleep(4)  # several retries while the KDC is down
        assert secure_hdfs.closed_lines(path) == []
    finally:
        realm.kdc.restart()
    wait_for_events(sent, lambda: secure_hdfs.closed_lines(path), timeout=90, logs=[agent], every=1)
    assert sorted(_hadoop_lines(secure_hdfs, path)) == sent
    log = agent.log()
    # one line per kind of failure, not one per retry (the first failed batch may quote it too)
    assert 1 <= log.count("Cannot contact any KDC") <= 2, log[-3000:]
    assert "Kerberos login as flume/localhost@PYFLUME.TEST works again" in log
    assert agent.terminate() == 0
