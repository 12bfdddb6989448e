"""Flume's global SSL settings: a component's own key wins, then the -D system property, then FLUME_SSL_*."""

from __future__ import annotations

from agent import tls
from agent.spec import Spec


def _conf(props: dict[str, str]):  # noqa: ANN202
    from agent.spec import Raw

    spec = Spec(*tls.server_tls_props("TLS"))
    raw = {k: Raw(v, "t.conf", i + 1) for i, (k, v) in enumerate(props.items())}
    problems: list = []
    return spec.bind(raw, problems=problems, component="a1.sources.r1"), problems


def test_component_then_system_property_then_environment(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("FLUME_SSL_KEYSTORE_PATH", "/env/ks.p12")
    monkeypatch.setenv("FLUME_SSL_KEYSTORE_TYPE", "PKCS12")
    monkeypatch.setenv("FLUME_SSL_INCLUDE_PROTOCOLS", "TLSv1.2,TLSv1.3")
    monkeypatch.setenv("FLUME_SSL_EXCLUDE_CIPHERSUITES", "A B")
    try:
        tls.use_system_properties({"javax.net.ssl.keyStore": "/sys/ks.p12", "flume.ssl.exclude.protocols": "TLSv1.3",
                                   "unrelated": "x"})
        conf, _ = _conf({"ssl": "true"})
        assert tls.setting(conf, "keystore") == "/sys/ks.p12"  # system property before environment
        assert tls.setting(conf, "keystore-type", "JKS") == "PKCS12"  # environment when no system property
        assert tls.list_setting(conf, "include-protocols") == ["TLSv1.2", "TLSv1.3"]  # commas allowed globally
        assert tls.list_setting(conf, "exclude-protocols") == ["TLSv1.3"]
        assert tls.list_setting(conf, "exclude-cipher-suites") == ["A", "B"]
        assert tls.list_setting(conf, "include-cipher-suites") == []  # nothing anywhere: the key's default
        conf, _ = _conf({"ssl": "true", "keystore": "/own/ks.pem", "exclude-protocols": "SSLv3"})
        assert tls.setting(conf, "keystore") == "/own/ks.pem"  # the component's own value wins
        assert tls.list_setting(conf, "exclude-protocols") == ["SSLv3"]
        settings = tls.ServerTls(conf)
        assert settings.keystore_type == "PEM"  # a *.pem file is read as PEM whatever the (global) type says
        assert settings.versions == ["TLSv1.2", "TLSv1.3"]
    finally:
        tls.use_system_properties({})


def test_a_missing_key_store_is_a_warning_at_check_time(tmp_path) -> None:  # noqa: ANN001
    tls.use_system_properties({})
    conf, problems = _conf({"ssl": "true", "keystore": str(tmp_path / "nope.p12"), "keystore-type": "PKCS12",
                            "keystore-password": "x"})
    tls.ServerTls(conf)
    assert [(p.prop, p.severity) for p in problems] == [("keystore", "warning")]
    assert "nope.p12 is not a file here: the source cannot start until it is" in problems[0].message
