"""agent.kerberos: _HOST substitution, keytab reading, and what ``--check`` says about a component's principal and
keytab (file:line, property, value, what would be right), including Flume's one-principal-per-agent rule."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from agent import config, kerberos

_KTUTIL = shutil.which("ktutil")


def make_keytab(path: Path, *principals: str) -> Path:
    """A real keytab made by MIT's ktutil (password-derived keys; no KDC needed)."""
    if _KTUTIL is None:
        pytest.skip("ktutil not found (apt-get install krb5-user)")
    script = "".join(f"addent -password -p {p} -k 1 -e aes256-cts-hmac-sha1-96\nsecret\n" for p in principals)
    script += f"wkt {path}\nquit\n"
    proc = subprocess.run([_KTUTIL], input=script, capture_output=True, text=True, timeout=30)
    assert path.exists(), proc.stderr
    return path


@pytest.mark.parametrize(("principal", "host", "expected"), [
    ("flume/_HOST@EXAMPLE.COM", "Node1.Example.Com", "flume/node1.example.com@EXAMPLE.COM"),
    ("flume/node9@EXAMPLE.COM", "other", "flume/node9@EXAMPLE.COM"),        # no _HOST: unchanged
    ("flume@EXAMPLE.COM", "other", "flume@EXAMPLE.COM"),                    # two parts: unchanged
    ("flume/_HOST", "other", "flume/_HOST"),                                # no realm: Hadoop leaves it
    ("_HOST/x@R", "other", "_HOST/x@R"),                                    # only the host part is replaced
])
def test_host_substitution(principal, host, expected):
    assert kerberos.resolve_principal(principal, host) == expected


def test_host_defaults_to_this_machine():
    assert kerberos.resolve_principal("hdfs/_HOST@R") == f"hdfs/{socket.getfqdn(socket.gethostname()).lower()}@R"


def test_keytab_principals_in_order(tmp_path):
    kt = make_keytab(tmp_path / "a.keytab", "flume/host1@EXAMPLE.COM", "HTTP/host1@EXAMPLE.COM", "alice@EXAMPLE.COM")
    assert kerberos.read_keytab(kt) == ["flume/host1@EXAMPLE.COM", "HTTP/host1@EXAMPLE.COM", "alice@EXAMPLE.COM"]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty", b"", "not a Kerberos keytab"),
    ("text", b"[libdefaults]\n", "not a Kerberos keytab"),
    ("truncated entry", b"\x05\x02\x00\x00\x00\x30\x00\x01\x00\x0bEXAMPLE.COM\x00\x40ab", "damaged keytab entry"),
])
def test_bad_keytabs(tmp_path, name, data, message):
    path = tmp_path / "bad.keytab"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message):
        kerberos.read_keytab(path)


def _check(tmp_path: Path, body: str) -> tuple[list[str], list[str]]:
    conf = tmp_path / "k.conf"
    conf.write_text("a1.channels = c1\na1.sinks = k1 k2\na1.channels.c1.type = memory\n"
                    "a1.sinks.k1.channel = c1\na1.sinks.k2.channel = c1\n" + body)
    _, problems = config.check([str(conf)], "a1")
    return ([str(p) for p in problems if p.severity == "error"], [str(p) for p in problems if p.severity != "error"])


def _hdfs(name: str, principal: str | None, keytab: str | None) -> str:
    text = f"a1.sinks.{name}.type = hdfs\na1.sinks.{name}.hdfs.path = hdfs://nn:8020/flume\n"
    if principal is not None:
        text += f"a1.sinks.{name}.hdfs.kerberosPrincipal = {principal}\n"
    if keytab is not None:
        text += f"a1.sinks.{name}.hdfs.kerberosKeytab = {keytab}\n"
    return text


def test_check_accepts_a_good_pair_shared_by_two_sinks(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    errors, _ = _check(tmp_path, _hdfs("k1", "flume/gw1@EXAMPLE.COM", kt) + _hdfs("k2", "flume/gw1@EXAMPLE.COM", kt))
    assert errors == []


def test_check_substitutes_host_before_looking_in_the_keytab(tmp_path):
    host = socket.getfqdn(socket.gethostname()).lower()
    kt = make_keytab(tmp_path / "f.keytab", f"flume/{host}@EXAMPLE.COM")
    errors, _ = _check(tmp_path, _hdfs("k1", "flume/_HOST@EXAMPLE.COM", kt) + _hdfs("k2", None, None))
    assert errors == []


def test_check_names_file_line_property_and_value(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM", "HTTP/gw1@EXAMPLE.COM")
    missing = tmp_path / "nope.keytab"
    errors, _ = _check(tmp_path, _hdfs("k1", "flume/gw1", missing) + _hdfs("k2", "flume/gw2@EXAMPLE.COM", kt))
    assert any(e.endswith("k.conf:8: a1.sinks.k1 (hdfs): hdfs.kerberosPrincipal: hdfs.kerberosPrincipal = "
                          "'flume/gw1' has no realm: write it in full, e.g. 'flume/gw1@EXAMPLE.COM' (name/_HOST@REALM "
                          "for a per-host principal)") for e in errors), errors
    assert any(e.endswith(f"k.conf:9: a1.sinks.k1 (hdfs): hdfs.kerberosKeytab: hdfs.kerberosKeytab = '{missing}': "
                          "no such file") for e in errors), errors
    assert any(e.endswith(f"k.conf:13: a1.sinks.k2 (hdfs): hdfs.kerberosKeytab: hdfs.kerberosKeytab = '{kt}' has no "
                          "key for 'flume/gw2@EXAMPLE.COM'; it holds flume/gw1@EXAMPLE.COM, HTTP/gw1@EXAMPLE.COM "
                          f"(list them with: klist -kt {kt})") for e in errors), errors


def test_check_wants_both_or_neither(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    errors, _ = _check(tmp_path, _hdfs("k1", "flume/gw1@EXAMPLE.COM", None) + _hdfs("k2", None, kt))
    assert any(e.endswith("k.conf:8: a1.sinks.k1 (hdfs): hdfs.kerberosPrincipal: hdfs.kerberosPrincipal is set but "
                          "hdfs.kerberosKeytab is not; a login needs the keytab holding the principal's key (as in "
                          "Flume)") for e in errors), errors
    assert any(e.endswith("k.conf:11: a1.sinks.k2 (hdfs): hdfs.kerberosKeytab: hdfs.kerberosKeytab is set but "
                          "hdfs.kerberosPrincipal is not; Kerberos needs both (as in Flume)") for e in errors), errors


def test_check_refuses_two_principals_in_one_agent_naming_both(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM", "etl@EXAMPLE.COM")
    errors, _ = _check(tmp_path, _hdfs("k1", "flume/gw1@EXAMPLE.COM", kt) + _hdfs("k2", "etl@EXAMPLE.COM", kt))
    assert len(errors) == 1, errors
    assert errors[0].endswith(
        f"k.conf:12: a1.sinks.k2 (hdfs): hdfs.kerberosPrincipal: hdfs.kerberosPrincipal = 'etl@EXAMPLE.COM' (keytab "
        f"{kt}): a1.sinks.k1 (hdfs) already logs this agent in as 'flume/gw1@EXAMPLE.COM' (keytab {kt}); Flume "
        "allows one Kerberos principal and keytab per agent: use the same pair in both, or run two agents")


def test_a_password_never_appears(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    errors, _ = _check(tmp_path, _hdfs("k1", "flume/gw9@EXAMPLE.COM", kt) + _hdfs("k2", None, None))
    assert errors and not any("secret" in e for e in errors)


def test_check_says_when_the_kerberos_extra_is_missing(tmp_path, monkeypatch):
    import importlib.util

    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gssapi" else real(name, *a))
    errors, _ = _check(tmp_path, _hdfs("k1", "flume/gw1@EXAMPLE.COM", kt) + _hdfs("k2", None, None))
    assert any(e.endswith("k.conf:8: a1.sinks.k1 (hdfs): hdfs.kerberosPrincipal: Kerberos logins need the gssapi "
                          "package: pip install 'pyflume-agent[kerberos]' (it builds against MIT Kerberos: apt-get "
                          "install libkrb5-dev gcc)") for e in errors), errors


def test_kerberos_is_ignored_with_a_warning_for_local_paths(tmp_path):
    kt = make_keytab(tmp_path / "f.keytab", "flume/gw1@EXAMPLE.COM")
    body = (f"a1.sinks.k1.type = hdfs\na1.sinks.k1.hdfs.path = file://{tmp_path}/out\n"
            f"a1.sinks.k1.hdfs.kerberosPrincipal = flume/gw1@EXAMPLE.COM\na1.sinks.k1.hdfs.kerberosKeytab = {kt}\n")
    errors, warnings = _check(tmp_path, body + _hdfs("k2", None, None))
    assert errors == []
    assert any(w.endswith("k.conf:8: a1.sinks.k1 (hdfs): hdfs.kerberosPrincipal: warning: Kerberos is used only for "
                          "HDFS paths; it is ignored for this local path") for w in warnings), warnings


def test_java_krb5_conf_system_property_sets_krb5_config(monkeypatch):
    monkeypatch.delenv("KRB5_CONFIG", raising=False)
    kerberos.use_system_properties({"java.security.krb5.conf": "/etc/krb5-prod.conf"})
    assert os.environ["KRB5_CONFIG"] == "/etc/krb5-prod.conf"
