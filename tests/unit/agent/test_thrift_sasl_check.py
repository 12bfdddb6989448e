"""What ``--check`` says about the thrift source's and sink's Kerberos properties (Flume 1.11's names): missing
keytab, a keytab without the principal, a principal without realm or not of the service/host form, a missing
server-principal, and Flume's one principal per agent; and Flume's splitting of a server principal."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent import config, thrift_sasl
from tests.unit.agent.test_kerberos import make_keytab


def _check(tmp_path: Path, body: str) -> tuple[list[str], list[str]]:
    conf = tmp_path / "t.conf"
    conf.write_text("a1.channels = c1\na1.channels.c1.type = memory\n" + body)
    _, problems = config.check([str(conf)], "a1")
    return ([str(p) for p in problems if p.severity == "error"], [str(p) for p in problems if p.severity != "error"])


def _source(principal: str | None, keytab: object, kerberos: str = "true") -> str:
    text = ("a1.sources = r1\na1.sources.r1.type = thrift\na1.sources.r1.bind = 0.0.0.0\na1.sources.r1.port = 4141\n"
            f"a1.sources.r1.channels = c1\na1.sources.r1.kerberos = {kerberos}\n")
    if principal is not None:
        text += f"a1.sources.r1.agent-principal = {principal}\n"
    if keytab is not None:
        text += f"a1.sources.r1.agent-keytab = {keytab}\n"
    return text


def _sink(principal: str | None, keytab: object, server: str | None) -> str:
    text = ("a1.sinks = k1\na1.sinks.k1.type = thrift\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = collector\n"
            "a1.sinks.k1.port = 4141\na1.sinks.k1.kerberos = true\n")
    for prop, value in (("client-principal", principal), ("client-keytab", keytab), ("server-principal", server)):
        if value is not None:
            text += f"a1.sinks.k1.{prop} = {value}\n"
    return text


def test_check_accepts_flumes_secure_pair(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    errors, warnings = _check(tmp_path, _source("flume/gw1@EXAMPLE.COM", kt)
                              + _sink("flume/gw1@EXAMPLE.COM", kt, "flume/collector1@EXAMPLE.COM"))
    assert errors == [] and warnings == []


def test_check_source_errors_name_file_line_and_property(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    conf = tmp_path / "t.conf"
    errors, _ = _check(tmp_path, _source("flume/gw2@EXAMPLE.COM", kt))
    assert errors == [f"{conf}:10: a1.sources.r1 (thrift): agent-keytab: agent-keytab = '{kt}' has no key for "
                      f"'flume/gw2@EXAMPLE.COM'; it holds flume/gw1@EXAMPLE.COM (list them with: klist -kt {kt})"]
    missing = tmp_path / "nope.keytab"
    errors, _ = _check(tmp_path, _source("flume/gw1", missing))
    assert f"{conf}:9: a1.sources.r1 (thrift): agent-principal: agent-principal = 'flume/gw1' has no realm" in \
        "\n".join(errors), errors
    assert f"{conf}:10: a1.sources.r1 (thrift): agent-keytab: agent-keytab = '{missing}': no such file" in errors
    errors, _ = _check(tmp_path, _source(None, None))
    assert errors == [f"{conf}:8: a1.sources.r1 (thrift): kerberos: kerberos = true needs agent-principal and "
                      "agent-keytab (the source's principal and its keytab)"]


def test_check_wants_a_service_principal_for_sasl(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume@EXAMPLE.COM")
    errors, _ = _check(tmp_path, _source("flume@EXAMPLE.COM", kt))
    assert len(errors) == 1 and errors[0].startswith(
        f"{tmp_path / 't.conf'}:9: a1.sources.r1 (thrift): agent-principal: agent-principal = 'flume@EXAMPLE.COM' "
        "is not a service principal"), errors


def test_check_sink_needs_server_principal_and_its_login(tmp_path):
    conf = tmp_path / "t.conf"
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    errors, _ = _check(tmp_path, _sink("flume/gw1@EXAMPLE.COM", kt, None))
    assert errors == [f"{conf}:8: a1.sinks.k1 (thrift): kerberos: kerberos = true needs server-principal, the "
                      "source's principal (Flume: 'Flume in secure mode, but Flume config doesn't specify a server "
                      "principal')"]
    errors, _ = _check(tmp_path, _sink(None, kt, "flume/c1@EXAMPLE.COM"))
    assert errors == [f"{conf}:9: a1.sinks.k1 (thrift): client-keytab: client-keytab is set but client-principal is "
                      "not; Kerberos needs both (as in Flume)"]
    errors, _ = _check(tmp_path, _sink("flume/gw1@EXAMPLE.COM", kt, "collector@EXAMPLE.COM"))
    assert len(errors) == 1 and "server-principal: server-principal = 'collector@EXAMPLE.COM' is not a service " \
        "principal" in errors[0], errors
    errors, _ = _check(tmp_path, _sink("flume/gw1@EXAMPLE.COM", kt, "flume/c1"))  # realm from krb5.conf
    assert errors == []


def test_check_one_principal_per_agent_across_source_and_sink(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM", "etl/gw1@EXAMPLE.COM")
    errors, _ = _check(tmp_path, _source("flume/gw1@EXAMPLE.COM", kt)
                       + _sink("etl/gw1@EXAMPLE.COM", kt, "flume/c1@EXAMPLE.COM"))
    assert len(errors) == 1 and "Flume allows one Kerberos principal and keytab per agent" in errors[0], errors


def test_kerberos_properties_without_kerberos_warn(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    errors, warnings = _check(tmp_path, _source("flume/gw1@EXAMPLE.COM", kt, kerberos="false"))
    assert errors == []
    assert warnings == [f"{tmp_path / 't.conf'}:9: a1.sources.r1 (thrift): agent-principal: warning: agent-principal "
                        "is set but kerberos is not true: the source serves without Kerberos"]


@pytest.mark.parametrize(("principal", "expected"), [
    ("flume/c1.example.com@EXAMPLE.COM", ("flume", "c1.example.com", "EXAMPLE.COM")),
    ("hbase/c1", ("hbase", "c1", "")),
])
def test_split_principal_as_flume(principal, expected):
    assert thrift_sasl.split_principal(principal) == expected


def test_split_principal_resolves_host():
    host = socket.getfqdn(socket.gethostname()).lower()
    assert thrift_sasl.split_principal("flume/_HOST@R") == ("flume", host, "R")
    with pytest.raises(ValueError, match="service/host@REALM"):
        thrift_sasl.split_principal("flume@R")


def test_parse_qop():
    assert thrift_sasl.parse_qop("auth-conf, auth") == ("auth-conf", "auth")
    with pytest.raises(ValueError, match="auth, auth-int or auth-conf"):
        thrift_sasl.parse_qop("privacy")
