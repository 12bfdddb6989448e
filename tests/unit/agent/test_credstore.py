"""Flume's ``hadoop`` config filter against credential stores made by Hadoop's own ``hadoop credential create``
(org.apache.hadoop.security.alias.CredentialShell from the Hadoop 3.3.6 jars the HDFS tests fetch): ``${f1['key']}``
resolves to the secret; a wrong password, a missing alias or a corrupt store is an error at --check with its line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent import config
from conftest import require_java_peers

SECRET = "storepass"  # the password of server-same.jks (tests/peers/keytool.py): the filter's value opens it


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory, java_stores):  # noqa: ANN001, ANN201
    """Two stores: ``default.jceks`` with Hadoop's default password, ``own.jceks`` with HADOOP_CREDSTORE_PASSWORD."""
    require_java_peers()
    from peers import hdfs

    d = tmp_path_factory.mktemp("credstores")

    def create(store: str, alias: str, value: str, password: str | None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "HADOOP_CREDSTORE_PASSWORD"}
        if password:
            env["HADOOP_CREDSTORE_PASSWORD"] = password
        proc = subprocess.run(["java", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-cp", hdfs.classpath(),
                               "org.apache.hadoop.security.alias.CredentialShell", "create", alias, "-value", value,
                               "-provider", f"jceks://file{d / store}"], env=env, capture_output=True, text=True,
                              timeout=180)
        assert proc.returncode == 0 and (d / store).exists(), proc.stdout + proc.stderr

    create("default.jceks", "ks_password", SECRET, None)
    create("own.jceks", "db-password", "pässwörd with spaces", "credpw")
    (d / "credpw.txt").write_text("credpw\n")
    (d / "wrong.txt").write_text("not-it\n")
    (d / "corrupt.jceks").write_bytes((d / "default.jceks").read_bytes()[:100])
    return d


BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.configfilters = f1
a1.configfilters.f1.type = hadoop
a1.configfilters.f1.credential.provider.path = jceks://file{store}
{extra}a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 0
a1.sources.r1.channels = c1
a1.sources.r1.ssl = true
a1.sources.r1.keystore = {keystore}
a1.sources.r1.keystore-password = ${{f1['ks_password']}}
a1.sources.r1.handler.note = ${{f1[db-password]}}
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""


def check(tmp_path: Path, java_stores, store: Path | str, extra: str = "", note: str = "") -> tuple:  # noqa: ANN001
    f = tmp_path / "cred.conf"
    text = BASE.format(store=store, extra=extra, keystore=java_stores.server_same_jks)
    if not note:
        text = text.replace("a1.sources.r1.handler.note = ${f1[db-password]}\n", "")
    f.write_text(text)
    topo, problems = config.check([str(f)], "a1")
    return topo, [str(p) for p in problems if p.severity == "error"], [str(p) for p in problems]


def test_a_secret_from_the_default_password_store_opens_the_key_store(tmp_path, java_stores, credentials,
                                                                       monkeypatch) -> None:
    monkeypatch.delenv("HADOOP_CREDSTORE_PASSWORD", raising=False)
    topo, errors, _ = check(tmp_path, java_stores, credentials / "default.jceks")
    assert not errors, errors  # the key store opened with the resolved password
    assert topo.sources["r1"].config.keystore_password == SECRET


def test_the_store_password_from_the_environment_or_a_password_file(tmp_path, java_stores, credentials,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("HADOOP_CREDSTORE_PASSWORD", "credpw")
    # HADOOP_CREDSTORE_PASSWORD opens own.jceks but not default.jceks (Hadoop's default 'none')
    _, errors, _ = check(tmp_path, java_stores, credentials / "own.jceks")
    assert any("has no credential" in e or "no credential 'ks_password'" in e for e in errors), errors
    monkeypatch.delenv("HADOOP_CREDSTORE_PASSWORD")
    extra = ("a1.configfilters.f1.credstore.java-keystore-provider.password-file = "
             f"{os.path.relpath(credentials / 'credpw.txt', tmp_path)}\n")  # relative to the configuration file
    f = tmp_path / "two.conf"
    f.write_text(BASE.format(store=credentials / "own.jceks", extra=extra, keystore=java_stores.server_same_jks)
                 .replace("${f1['ks_password']}", SECRET))
    topo, problems = config.check([str(f)], "a1")
    assert topo is not None, [str(p) for p in problems]
    assert topo.sources["r1"].config.handler_options["note"] == "pässwörd with spaces"


@pytest.mark.parametrize("case, store, extra, line, prop, message", [
    ("wrong store password", "own.jceks",
     "a1.configfilters.f1.credstore.java-keystore-provider.password-file = {d}/wrong.txt\n", 7,
     "credstore.java-keystore-provider.password-file", "own.jceks: the store password is wrong"),
    ("corrupt store", "corrupt.jceks", "", 6, "credential.provider.path", "corrupt.jceks is a corrupt JCEKS key store"),
    ("missing alias", "default.jceks", "", 14, "handler.note",
     "${f1[db-password]}: no credential 'db-password' in {d}/default.jceks (ks_password)"),
    ("unsupported provider", "x.jceks,user:///", "", 6, "credential.provider.path",
     "provider 'user:///' is not supported"),
])
def test_problems_are_errors_with_file_line_and_property(tmp_path, java_stores, credentials, monkeypatch,
                                                         case, store, extra, line, prop, message) -> None:
    monkeypatch.delenv("HADOOP_CREDSTORE_PASSWORD", raising=False)
    if case == "unsupported provider":
        (credentials / "x.jceks").write_bytes((credentials / "default.jceks").read_bytes())
    store_path = f"{credentials}/{store.format(d=credentials)}"
    _, errors, _ = check(tmp_path, java_stores, store_path, extra.format(d=credentials),
                         note="yes" if case == "missing alias" else "")
    head = f"cred.conf:{line}: a1." + ("configfilters.f1 (hadoop)" if prop.startswith("cred") else
                                       "sources.r1 (http)") + f": {prop}: "
    assert any(head in e and message.replace("{d}", str(credentials)) in e for e in errors), errors
    assert not any(word in e for e in errors for word in ("credpw", "not-it", SECRET + " ")), errors


def test_user_guide_example_passes_check(tmp_path) -> None:
    f = tmp_path / "ug.conf"
    f.write_text("""\
a1.sources = r1
a1.channels = c1
a1.configfilters = f1

a1.configfilters.f1.type = hadoop
a1.configfilters.f1.credential.provider.path = jceks://file/<path_to_jceks file>

a1.sources.r1.channels =  c1
a1.sources.r1.type = http
a1.sources.r1.port = 5140
a1.sources.r1.keystore-password = ${f1['my_keystore_password']} #will get the value from the credential store
a1.channels.c1.type = memory
""")
    topo, problems = config.check([str(f)], "a1")
    assert topo is not None, [str(p) for p in problems]
    assert any("not a file here" in str(p) and p.severity == "warning" for p in problems)
