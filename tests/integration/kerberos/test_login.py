"""agent.kerberos.Login against a real KDC: a login from a keytab fills a private cache, renews before the ticket
ends, and a KDC that cannot be reached gives KerberosLoginError with backoff and one log line per kind of failure."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import time

import pytest

from agent import kerberos

pytestmark = pytest.mark.peer


@pytest.fixture
def krb5_env(realm, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    pytest.importorskip("gssapi", reason="the kerberos extra is not installed (pip install '.[kerberos]')")
    monkeypatch.setenv("KRB5_CONFIG", str(realm.kdc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'not-used'}")


def _klist(realm, ccache: str) -> str:
    return subprocess.run(["klist", "-c", ccache], capture_output=True, text=True, check=True,
                          env=dict(os.environ, **realm.kdc.env)).stdout


def test_login_fills_a_private_cache_and_renews(realm, krb5_env, tmp_path) -> None:
    ident = kerberos.Identity(realm.short, str(realm.short_keytab))
    lg = kerberos.login(ident)
    try:
        ccache = lg.ensure()
        assert f"Default principal: {realm.short}" in _klist(realm, ccache)
        path = ccache.removeprefix("FILE:")
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert 0 < lg.lifetime <= 20
        first_end = lg.expires
        assert not (tmp_path / "not-used").exists()  # the user's own cache is never touched
        deadline = time.time() + 25
        while lg.renewals < 1 and time.time() < deadline:  # the renewal thread, at 80% of 20 s
            time.sleep(0.5)
        assert lg.renewals == 1 and lg.expires > first_end
        assert f"Default principal: {realm.short}" in _klist(realm, ccache)
    finally:
        kerberos.release(lg)
    assert not os.path.exists(path)


def test_unreachable_kdc_backs_off_and_logs_once(realm, krb5_env, caplog) -> None:
    ident = kerberos.Identity(realm.flume, str(realm.flume_keytab))
    lg = kerberos.Login(ident)  # no renewal thread: the test drives the tries
    realm.kdc.stop()
    try:
        caplog.set_level(logging.WARNING, logger="agent.kerberos")
        with pytest.raises(kerberos.KerberosLoginError, match="Cannot contact any KDC for realm"):
            lg.ensure()
        with pytest.raises(kerberos.KerberosLoginError, match="failed recently; next try in"):
            lg.ensure()  # within the backoff: no new try
        time.sleep(1.1)
        with pytest.raises(kerberos.KerberosLoginError, match="Cannot contact any KDC"):
            lg.ensure()
        warnings = [r.getMessage() for r in caplog.records if "Cannot contact any KDC" in r.getMessage()]
        assert len(warnings) == 1, warnings
    finally:
        realm.kdc.restart()
    time.sleep(2.1)  # the backoff after the second failure
    caplog.set_level(logging.INFO, logger="agent.kerberos")
    assert lg.ensure() == lg.ccache
    assert any("works again after 2 failed tries" in r.getMessage() for r in caplog.records)
    lg.stop()
