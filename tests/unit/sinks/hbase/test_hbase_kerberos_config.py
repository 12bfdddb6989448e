"""The HBase sinks' Kerberos settings as ``--check`` sees them: Flume's kerberosPrincipal / kerberosKeytab (checked
by agent.kerberos, file:line and property named), the Thrift server's principal and the SASL QOP list, and the
one-principal-per-agent rule across an HBase and an HDFS sink. The secure HBase itself is in
tests/integration/kerberos/test_hbase_kerberos.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from sinks.hbase.thrift import server_principal

pytest.importorskip("happybase")
from unit.agent.test_kerberos import make_keytab  # noqa: E402

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.channel = c1
a1.sinks.k2.channel = c1
a1.sinks.k1.type = hbase2
a1.sinks.k1.table = t
a1.sinks.k1.columnFamily = cf
a1.sinks.k1.thrift = hb1:9090
"""


def _check(tmp_path: Path, extra: str) -> list[str]:
    f = tmp_path / "h.conf"
    f.write_text(BASE + extra)
    _, problems = config.check([str(f)], "a1")
    return [str(p) for p in problems if p.severity == "error"]


def _k2_null() -> str:
    return "a1.sinks.k2.type = null\n"


def test_a_good_pair_is_accepted_with_sasl_defaults(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    f = tmp_path / "h.conf"
    f.write_text(BASE + f"a1.sinks.k1.kerberosPrincipal = flume/gw1@EXAMPLE.COM\na1.sinks.k1.kerberosKeytab = {kt}\n"
                 + _k2_null())
    topo, problems = config.check([str(f)], "a1")
    assert [p for p in problems if p.severity == "error"] == []
    sink = topo.sinks["k1"]
    assert sink.kerberos.principal == "flume/gw1@EXAMPLE.COM"
    assert sink.qop == "auth-conf,auth-int,auth"
    assert server_principal(sink.server_principal, "HB1") == ("hbase", "hb1", "")


def test_problems_name_file_line_and_property(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    missing = tmp_path / "nope.keytab"
    errors = _check(tmp_path, f"""\
a1.sinks.k1.kerberosPrincipal = flume/gw1
a1.sinks.k1.kerberosKeytab = {missing}
a1.sinks.k1.thrift.security.qop = auth-conf, privacy
a1.sinks.k1.thrift.kerberos.principal = hbase
a1.sinks.k1.thrift.transport = framed
a1.sinks.k2.type = hbase
a1.sinks.k2.table = t
a1.sinks.k2.columnFamily = cf
a1.sinks.k2.thrift = hb1:9090
a1.sinks.k2.kerberosPrincipal = flume/gw2@EXAMPLE.COM
a1.sinks.k2.kerberosKeytab = {kt}
""")
    text = "\n".join(errors)
    assert "h.conf:13: a1.sinks.k1 (hbase2): kerberosPrincipal: kerberosPrincipal = 'flume/gw1' has no realm" in text
    assert f"h.conf:14: a1.sinks.k1 (hbase2): kerberosKeytab: kerberosKeytab = '{missing}': no such file" in text
    assert "h.conf:15: a1.sinks.k1 (hbase2): thrift.security.qop: SASL QOP 'auth-conf, privacy': expected auth, " \
        "auth-int or auth-conf" in text
    assert "h.conf:16: a1.sinks.k1 (hbase2): thrift.kerberos.principal: 'hbase' is not a service principal" in text
    assert "h.conf:17: a1.sinks.k1 (hbase2): thrift.transport: HBase's Thrift server does not offer SASL over the " \
        "framed transport" in text
    assert f"h.conf:23: a1.sinks.k2 (hbase): kerberosKeytab: kerberosKeytab = '{kt}' has no key for " \
        "'flume/gw2@EXAMPLE.COM'; it holds flume/gw1@EXAMPLE.COM" in text


def test_one_principal_per_agent_across_hbase_and_hdfs(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM", "etl@EXAMPLE.COM")
    errors = _check(tmp_path, f"""\
a1.sinks.k1.kerberosPrincipal = flume/gw1@EXAMPLE.COM
a1.sinks.k1.kerberosKeytab = {kt}
a1.sinks.k2.type = hdfs
a1.sinks.k2.hdfs.path = hdfs://nn:8020/flume
a1.sinks.k2.hdfs.kerberosPrincipal = etl@EXAMPLE.COM
a1.sinks.k2.hdfs.kerberosKeytab = {kt}
""")
    assert len(errors) == 1, errors
    assert "a1.sinks.k2 (hdfs): hdfs.kerberosPrincipal: hdfs.kerberosPrincipal = 'etl@EXAMPLE.COM'" in errors[0]
    assert "a1.sinks.k1 (hbase2) already logs this agent in as 'flume/gw1@EXAMPLE.COM'" in errors[0]


@pytest.mark.parametrize(("pattern", "host", "expected"), [
    ("hbase/_HOST", "Thrift1.Example.Com", ("hbase", "thrift1.example.com", "")),
    ("hbase/_HOST@EXAMPLE.COM", "t1", ("hbase", "t1", "EXAMPLE.COM")),
    ("thrift/fixed.example.com@R", "t1", ("thrift", "fixed.example.com", "R")),
])
def test_server_principal(pattern, host, expected):
    assert server_principal(pattern, host) == expected


@pytest.mark.parametrize("pattern", ["hbase", "hbase@R", "/h@R", "a/b/c@R"])
def test_server_principal_refuses_non_service_names(pattern):
    with pytest.raises(ValueError, match="not a service principal"):
        server_principal(pattern, "h")
