"""MIT Kerberos' KDC (Debian's ``krb5-kdc``) as a real peer: a throwaway realm on a loopback port, its principals
and keytabs made per test session.

Everything lives under one work directory: the KDC's database and ``kdc.conf``, a ``krb5.conf`` for clients (MIT's
library reads it through ``KRB5_CONFIG``, Java through ``-Djava.security.krb5.conf``), and one keytab per principal.
The KDC listens on 127.0.0.1 only, over UDP and TCP on the same port (clients are told to prefer TCP, as Java does
past 1 byte with ``udp_preference_limit = 1``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from . import free_port, listening, stop_group

__all__ = ["KDC", "missing_kdc_reason"]

_TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next((f"{d}/{tool}" for d in _SBIN if os.access(f"{d}/{tool}", os.X_OK)), None)


def missing_kdc_reason() -> str | None:
    """Why a KDC cannot run here (MIT Kerberos' tools missing), or None."""
    missing = [t for t in _TOOLS if _which(t) is None]
    if missing:
        return (f"{', '.join(missing)} not found (apt-get install krb5-kdc krb5-admin-server krb5-user: MIT "
                "Kerberos' KDC and kinit)")
    return None


class KDC:
    """One MIT KDC for realm ``realm`` on ``127.0.0.1:port``; ``add(principal)`` makes a principal with a random key
    and returns its own keytab."""

    def __init__(self, workdir: Path, realm: str = "PYFLUME.TEST", max_life: str = "1h"):
        self.workdir = Path(workdir)
        self.realm = realm
        self.max_life = max_life
        self.port = free_port(udp=True)
        self.krb5_conf = self.workdir / "krb5.conf"
        self.kdc_conf = self.workdir / "kdc.conf"
        self.log_path = self.workdir / "krb5kdc.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for MIT tools and libraries: this realm's client and KDC profiles."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf)}

    def _write_confs(self) -> None:
        d = self.workdir
        self.krb5_conf.write_text(
            f"[libdefaults]\n default_realm = {self.realm}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n"
            " rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n forwardable = true\n"
            f" ticket_lifetime = {self.max_life}\n renew_lifetime = 0\n"
            f"[realms]\n {self.realm} = {{\n  kdc = 127.0.0.1:{self.port}\n }}\n"
            f"[domain_realm]\n localhost = {self.realm}\n .localhost = {self.realm}\n")
        self.kdc_conf.write_text(
            f"[kdcdefaults]\n kdc_listen = 127.0.0.1:{self.port}\n kdc_tcp_listen = 127.0.0.1:{self.port}\n"
            f"[realms]\n {self.realm} = {{\n  database_name = {d / 'principal'}\n"
            f"  key_stash_file = {d / 'stash'}\n  acl_file = {d / 'kadm5.acl'}\n"
            f"  max_life = {self.max_life}\n  max_renewable_life = 0\n"
            "  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }\n"
            f"[logging]\n kdc = FILE:{self.log_path}\n")

    def _run(self, *cmd: str) -> str:
        proc = subprocess.run([_which(cmd[0]) or cmd[0], *cmd[1:]], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, **self.env))
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def start(self, timeout: float = 30) -> KDC:
        reason = missing_kdc_reason()
        if reason:
            raise RuntimeError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_confs()
        self._run("kdb5_util", "create", "-s", "-r", self.realm, "-P", os.urandom(12).hex())
        return self.restart(timeout)

    def restart(self, timeout: float = 30) -> KDC:
        """Run the KDC again (after ``stop``) on the same port and database."""
        self._log = open(self.workdir / "krb5kdc.out", "ab")
        self.proc = subprocess.Popen([_which("krb5kdc") or "krb5kdc", "-n", "-r", self.realm],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ, **self.env),
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"krb5kdc exited with {self.proc.returncode}: {self.log()[-2000:]}")
            if listening(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"krb5kdc not listening on 127.0.0.1:{self.port} within {timeout} s")

    def principal(self, name: str) -> str:
        """``name`` with this realm appended when it has none."""
        return name if "@" in name else f"{name}@{self.realm}"

    def add(self, name: str, keytab: Path | None = None, max_life: str | None = None) -> Path:
        """Make principal ``name`` (random key) and write its keys to ``keytab`` (default: <workdir>/<name>.keytab,
        appended to when it exists: several principals in one keytab). Returns the keytab."""
        principal = self.principal(name)
        keytab = keytab or self.workdir / (name.replace("/", "_") + ".keytab")
        life = f" -maxlife {max_life}" if max_life else ""
        self._run("kadmin.local", "-r", self.realm, "-q", f"addprinc -randkey{life} {principal}")
        self._run("kadmin.local", "-r", self.realm, "-q", f"ktadd -k {keytab} {principal}")
        return keytab

    def kinit(self, principal: str, keytab: Path, ccache: Path) -> None:
        """A TGT for ``principal`` from ``keytab`` into the file ccache ``ccache`` (for Java clients: KRB5CCNAME)."""
        self._run("kinit", "-k", "-t", str(keytab), "-c", f"FILE:{ccache}", self.principal(principal))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_group(self.proc, 10)
        if self.proc is not None:
            self._log.close()
        self.proc = None
