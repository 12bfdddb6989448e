"""Kerberos logins from keytabs, as Flume's ``FlumeAuthenticationUtil`` makes them, through the system's GSSAPI.

What a component gets here:

- ``identity(conf, principal_prop, keytab_prop)`` checks the pair at ``--check`` time, like Flume's
  ``KerberosAuthenticator.authenticate``: both or neither; the principal has a realm; ``_HOST`` becomes this host's
  canonical name in lower case (Hadoop's ``SecurityUtil.getServerPrincipal``); the keytab is a readable keytab file that
  holds the (substituted) principal. Every problem points at the file and line of the property.
- ``check_one_principal(components, problems)`` applies Flume's "one principal per agent" rule: Flume logs a JVM in
  once, so two components with different principals (or keytabs) cannot run in one agent. The error names both.
- ``login(identity)`` is the process's one login for that principal: a TGT from the keytab into a private credential
  cache (a file readable by this user only, never the user's default cache), renewed by a thread when 80% of the
  ticket's life is over. Clients use it through ``Login.ccache`` (``KRB5CCNAME``) or hand principal, keytab and cache
  to a GSSAPI client that refreshes from the keytab itself (hdfs-native). A failed login (KDC unreachable, clock
  skew, key version mismatch) raises ``KerberosLoginError`` and is retried with backoff; each kind of failure is
  logged once per 10 s.

The MIT library reads its realms and KDCs from ``/etc/krb5.conf`` or ``$KRB5_CONFIG``; Java's
``-Djava.security.krb5.conf=FILE`` given to the agent sets ``KRB5_CONFIG`` (see ``use_system_properties``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.spec import Conf, Problem

__all__ = ["Identity", "JaasEntry", "JaasError", "KerberosLoginError", "Login", "check_one_principal",
           "checked_identity", "identity", "jaas_file", "jaas_section", "login", "parse_jaas", "read_keytab",
           "resolve_principal", "use_system_properties"]

log = logging.getLogger("agent.kerberos")

_RENEW_AT = 0.8  # of the ticket's lifetime
_BACKOFF_MIN, _BACKOFF_MAX = 1.0, 30.0


class KerberosLoginError(Exception):
    """A login from a keytab failed at run time (KDC unreachable, wrong key, clock skew …)."""


# Principals and keytabs -------------------------------------------------------------------------------------------
def resolve_principal(principal: str, hostname: str | None = None) -> str:
    """Hadoop's ``_HOST`` substitution: in ``service/_HOST@REALM`` the host part becomes ``hostname`` (default: this
    machine's canonical name), in lower case. Any other form is returned unchanged, as Hadoop does."""
    parts = principal.replace("@", "/").split("/")
    if len(parts) != 3 or parts[1] != "_HOST" or "@" not in principal:
        return principal
    host = (hostname or socket.getfqdn(socket.gethostname())).lower()
    return f"{parts[0]}/{host}@{parts[2]}"


def read_keytab(path: str | os.PathLike) -> list[str]:
    """The principals (``name/instance@REALM``) whose keys a keytab file holds, in file order, each once.

    MIT's keytab format, versions 0x501 and 0x502: a 2-byte version, then entries each led by a signed 32-bit size
    (negative: a hole left by a removed key)."""
    data = Path(path).read_bytes()
    if len(data) < 2 or data[0] != 5 or data[1] not in (1, 2):
        raise ValueError("not a Kerberos keytab (it does not start with the keytab version 0x0501 or 0x0502)")
    v1 = data[1] == 1
    order = "=" if v1 else ">"  # version 1 is in the writer's byte order
    out: list[str] = []
    pos = 2
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(f"{order}i", data, pos)
        pos += 4
        if size <= 0:
            pos += -size
            continue
        entry = data[pos:pos + size]
        pos += size
        try:
            name = _entry_principal(entry, order, v1)
        except (struct.error, UnicodeDecodeError) as exc:
            raise ValueError(f"damaged keytab entry at byte {pos - size}: {exc}") from None
        if name not in out:
            out.append(name)
    return out


def _entry_principal(entry: bytes, order: str, v1: bool) -> str:
    (count,) = struct.unpack_from(f"{order}H", entry, 0)
    if v1:
        count -= 1  # version 1 counts the realm as a component
    pos = 2
    strings = []
    for _ in range(count + 1):
        (n,) = struct.unpack_from(f"{order}H", entry, pos)
        strings.append(entry[pos + 2:pos + 2 + n].decode())
        pos += 2 + n
        if pos > len(entry):
            raise struct.error("entry shorter than its names")
    realm, names = strings[0], strings[1:]
    return "/".join(names) + "@" + realm


# Configuration checks ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """A checked principal and keytab of one component (``principal`` is after ``_HOST`` substitution)."""

    principal: str
    keytab: str
    component: str = field(default="", compare=False)
    conf: Any = field(default=None, compare=False, repr=False)
    principal_prop: str = field(default="", compare=False)

    @property
    def short_name(self) -> str:
        """The principal's first component (``flume`` of ``flume/host@REALM``), the user HDFS sees."""
        return self.principal.split("@", 1)[0].split("/", 1)[0]


def identity(conf: Conf, principal_prop: str, keytab_prop: str) -> Identity | None:
    """The component's principal and keytab, checked (errors go to ``conf``); None when neither is set or one is
    wrong."""
    principal = (conf.get(principal_prop) or "").strip()
    keytab = (conf.get(keytab_prop) or "").strip()
    if not principal and not keytab:
        return None
    if not principal:
        conf.error(f"{keytab_prop} is set but {principal_prop} is not; Kerberos needs both (as in Flume)", keytab_prop)
        return None
    if not keytab:
        conf.error(f"{principal_prop} is set but {keytab_prop} is not; a login needs the keytab holding the "
                   f"principal's key (as in Flume)", principal_prop)
        return None
    return checked_identity(conf, principal, keytab, principal_prop, keytab_prop)


def checked_identity(conf: Conf, principal: str, keytab: str, principal_prop: str | None, keytab_prop: str | None,
                     principal_label: str | None = None, keytab_label: str | None = None) -> Identity | None:
    """``principal`` and ``keytab`` checked as :func:`identity` checks them, wherever they were read: problems are
    recorded on ``conf`` at ``*_prop`` (the line to blame) and name the setting as ``*_label`` (default: the
    property), e.g. ``keyTab (JAAS file /etc/flume/jaas.conf:5, KafkaClient)``."""
    p_label = principal_label or principal_prop
    k_label = keytab_label or keytab_prop
    ok = True
    if "@" not in principal or not principal.rsplit("@", 1)[1]:
        conf.error(f"{p_label} = '{principal}' has no realm: write it in full, e.g. "
                   f"'{principal.rstrip('@')}@EXAMPLE.COM' (name/_HOST@REALM for a per-host principal)",
                   principal_prop)
        ok = False
    resolved = resolve_principal(principal)
    if not _keytab_holds(conf, keytab_prop, keytab, resolved if ok else None, k_label):
        ok = False
    if importlib.util.find_spec("gssapi") is None:
        conf.error("Kerberos logins need the gssapi package: pip install 'pyflume-agent[kerberos]' (it builds "
                   "against MIT Kerberos: apt-get install libkrb5-dev gcc)", principal_prop)
        ok = False
    if not ok:
        return None
    return Identity(resolved, os.path.abspath(keytab), conf.component, conf, principal_prop or "")


def _keytab_holds(conf: Conf, prop: str | None, keytab: str, principal: str | None, label: str | None = None) -> bool:
    label = label or prop
    path = Path(keytab)
    if not path.exists():
        conf.error(f"{label} = '{keytab}': no such file", prop)
        return False
    if not path.is_file() or not os.access(path, os.R_OK):
        conf.error(f"{label} = '{keytab}': not a readable file (the agent runs as uid {os.getuid()})", prop)
        return False
    try:
        held = read_keytab(path)
    except (OSError, ValueError) as exc:
        conf.error(f"{label} = '{keytab}': {exc}", prop)
        return False
    if principal is not None and principal not in held:
        conf.error(f"{label} = '{keytab}' has no key for '{principal}'; it holds "
                   f"{', '.join(held) or 'no keys'} (list them with: klist -kt {keytab})", prop)
        return False
    return True


def check_one_principal(components: Iterable[Any], problems: list[Problem]) -> None:
    """Flume's rule: one Kerberos principal and keytab per agent. A component's ``kerberos_identities`` (a list
    of :class:`Identity`) is compared with the first one seen; a different one is an error naming both."""
    first: Identity | None = None
    for comp in components:
        for ident in getattr(comp, "kerberos_identities", ()) or ():
            if first is None:
                first = ident
            elif ident != first:
                ident.conf.error(
                    f"{ident.principal_prop} = '{ident.principal}' (keytab {ident.keytab}): {first.component} "
                    f"already logs this agent in as '{first.principal}' (keytab {first.keytab}); Flume allows one "
                    "Kerberos principal and keytab per agent: use the same pair in both, or run two agents",
                    ident.principal_prop)


_jaas_file: list[str] = []  # -Djava.security.auth.login.config, as given to the agent (or in JAVA_OPTS)


def use_system_properties(sysprops: Mapping[str, str]) -> None:
    """``-Djava.security.krb5.conf=FILE`` (as Flume users pass it) points MIT's library at that file;
    ``-Djava.security.auth.login.config=FILE`` is remembered for :func:`jaas_section`. Either may also come from
    ``JAVA_OPTS`` in the environment (flume-ng passes it to the JVM), the command line winning."""
    from_env = dict(_java_opts(os.environ.get("JAVA_OPTS", "")))
    path = sysprops.get("java.security.krb5.conf") or from_env.get("java.security.krb5.conf")
    if path:
        os.environ["KRB5_CONFIG"] = path
    _jaas_file[:] = [f for f in [sysprops.get("java.security.auth.login.config")
                                 or from_env.get("java.security.auth.login.config")] if f]


def _java_opts(text: str) -> list[tuple[str, str]]:
    import shlex

    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return [tuple(w[2:].partition("=")[::2]) for w in words if w.startswith("-D")]  # type: ignore[misc]


def jaas_file() -> str | None:
    """The JAAS file the agent was given (``-Djava.security.auth.login.config``), if any."""
    return _jaas_file[0] if _jaas_file else None


@dataclass(frozen=True)
class JaasEntry:
    """One login module of a JAAS section: its class, flag and options; ``lines`` maps each option to its line."""

    module: str
    flag: str
    options: dict[str, str]
    where: str  # FILE:LINE of the module
    lines: dict[str, str]  # option -> FILE:LINE


class JaasError(ValueError):
    """A JAAS file that cannot be read or parsed."""


def parse_jaas(text: str, name: str = "<jaas>") -> dict[str, list[JaasEntry]]:
    """The sections of a JAAS login configuration (Java's ``ConfigFile`` syntax): ``Name { module flag key=value
    ...; ... };``, comments ``//`` and ``/* */``, values quoted or bare. Section names map to their modules."""
    tokens: list[tuple[str, int]] = []  # (token, line)
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i) or c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += text.count("\n", i, end)
            i = end
        elif c in "{};=":
            tokens.append((c, line))
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise JaasError(f"{name}:{line}: a quoted value is not closed")
            tokens.append(('"' + "".join(buf), line))
            line += text.count("\n", i, j)
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '{};="':
                j += 1
            tokens.append((text[i:j], line))
            i = j
    sections: dict[str, list[JaasEntry]] = {}
    pos = 0

    def take(expect: str | None = None) -> tuple[str, int]:
        nonlocal pos
        if pos >= len(tokens):
            raise JaasError(f"{name}: ends in the middle of a section" + (f" (expected '{expect}')" if expect else ""))
        tok = tokens[pos]
        pos += 1
        if expect is not None and tok[0] != expect:
            raise JaasError(f"{name}:{tok[1]}: expected '{expect}', found '{tok[0].lstrip(chr(34))}'")
        return tok

    while pos < len(tokens):
        section, _ = take()
        take("{")
        entries: list[JaasEntry] = []
        while pos < len(tokens) and tokens[pos][0] != "}":
            module, mline = take()
            flag, _ = take()
            options: dict[str, str] = {}
            lines: dict[str, str] = {}
            while True:
                tok, tline = take()
                if tok == ";":
                    break
                take("=")
                value, _ = take()
                options[tok] = value[1:] if value.startswith('"') else value
                lines[tok] = f"{name}:{tline}"
            entries.append(JaasEntry(module, flag, options, f"{name}:{mline}", lines))
        take("}")
        if pos < len(tokens) and tokens[pos][0] == ";":
            pos += 1
        sections[section] = entries
    return sections


def jaas_section(path: str, section: str) -> list[JaasEntry] | None:
    """The login modules of ``section`` in the JAAS file ``path`` (None: no such section). Raises JaasError when
    the file cannot be read or parsed."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise JaasError(f"cannot read the JAAS file {path}: {exc.strerror or exc}") from None
    return parse_jaas(text, path).get(section)


# Logins ---------------------------------------------------------------------------------------------------------
class Login:
    """The process's login as one principal: a TGT in a private credential cache, renewed before it expires."""

    def __init__(self, ident: Identity):
        self.principal = ident.principal
        self.keytab = ident.keytab
        self._dir = tempfile.mkdtemp(prefix="pyflume-krb5-")  # mode 0700
        self.ccache_path = os.path.join(self._dir, "ccache")
        self.expires = 0.0  # time.time() when the current TGT ends; 0: no TGT
        self.lifetime = 0.0
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self._users = 0
        self._failing: set[str] = set()  # kinds of failure logged since the last good login
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0

    @property
    def ccache(self) -> str:
        """The credential cache name for ``KRB5CCNAME`` or a client's ``ccache`` setting."""
        return f"FILE:{self.ccache_path}"

    def ensure(self) -> str:
        """A valid TGT in the cache (logging in now when there is none or it is near its end); returns the cache
        name. Raises KerberosLoginError while the KDC refuses or cannot be reached (retried with backoff)."""
        with self._lock:
            now = time.time()
            if self.expires and now < self._renew_at():
                return self.ccache
            if now < self._retry_at:
                raise KerberosLoginError(f"Kerberos login as {self.principal} failed recently; next try in "
                                         f"{self._retry_at - now:.0f} s")
            self._login()
            return self.ccache

    def _renew_at(self) -> float:
        return self.expires - (1 - _RENEW_AT) * self.lifetime

    def _login(self) -> None:
        try:
            lifetime = _kinit(self.principal, self.keytab, self.ccache_path)
        except KerberosLoginError as exc:
            self._failures += 1
            delay = min(_BACKOFF_MIN * 2 ** (self._failures - 1), _BACKOFF_MAX)
            self._retry_at = time.time() + delay
            if str(exc) not in self._failing:  # one line per kind of failure, until a login works again
                self._failing.add(str(exc))
                log.warning("Kerberos login as %s from %s failed: %s; retrying with backoff (up to %.0f s) until "
                            "it works", self.principal, self.keytab, exc, _BACKOFF_MAX)
            raise
        renewed = bool(self.expires)
        if self._failing:
            log.info("Kerberos login as %s works again after %d failed tries", self.principal, self._failures)
            self._failing.clear()
        self._failures = 0
        self.lifetime = float(lifetime)
        self.expires = time.time() + lifetime
        self.renewals += renewed
        log.info("Kerberos %s as %s from keytab %s: ticket valid for %d s (cache %s)",
                 "re-login" if renewed else "login", self.principal, self.keytab, lifetime, self.ccache)

    def start_renewal(self) -> None:
        """Renew in the background (a thread per login), so a ticket never runs out between batches."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._renew_loop, name=f"kerberos-{self.principal}", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                due = max(self._renew_at() if self.expires else 0.0, self._retry_at)
            if self._stop.wait(max(due - time.time(), 0.2)):
                return
            try:
                self.ensure()
            except KerberosLoginError:
                pass  # logged by _login; the next try waits for the backoff

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        try:
            os.unlink(self.ccache_path)
        except FileNotFoundError:
            pass
        try:
            os.rmdir(self._dir)
        except OSError:
            pass


_LOGINS: dict[tuple[str, str], Login] = {}
_LOGINS_LOCK = threading.Lock()


def login(ident: Identity) -> Login:
    """This process's login for ``ident`` (made on first use, shared by every component with the same pair), its
    renewal thread running. Call :func:`release` when the component stops."""
    with _LOGINS_LOCK:
        lg = _LOGINS.get((ident.principal, ident.keytab))
        if lg is None:
            lg = _LOGINS[(ident.principal, ident.keytab)] = Login(ident)
        lg._users += 1
    lg.start_renewal()
    return lg


def release(lg: Login) -> None:
    """A component is done with ``lg``; the last one stops its renewal and removes its cache."""
    with _LOGINS_LOCK:
        lg._users -= 1
        if lg._users > 0:
            return
        _LOGINS.pop((lg.principal, lg.keytab), None)
    lg.stop()


def _kinit(principal: str, keytab: str, ccache_path: str) -> int:
    """A TGT for ``principal`` from ``keytab`` into the file cache ``ccache_path`` (replaced atomically, so readers
    never see it empty); returns the ticket's lifetime in seconds."""
    try:
        import gssapi
    except ImportError:
        raise KerberosLoginError("the gssapi package is missing (pip install 'pyflume-agent[kerberos]'; it needs "
                                 "MIT Kerberos' libgssapi_krb5)") from None
    tmp = f"{ccache_path}.{threading.get_ident()}.new"
    try:
        name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
        creds = gssapi.Credentials(name=name, usage="initiate",
                                   store={"client_keytab": keytab, "ccache": f"FILE:{tmp}"})
        lifetime = creds.lifetime
        os.replace(tmp, ccache_path)
    except gssapi.exceptions.GSSError as exc:
        raise KerberosLoginError(_gss_message(exc)) from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return int(lifetime or 0)


def _gss_message(exc: Exception) -> str:
    """The minor (Kerberos) part of a GSSAPI error: 'Cannot contact any KDC for realm …'."""
    text = str(exc)
    if "Minor" in text:
        text = text.split("Minor", 1)[1].split("):", 1)[-1].strip()
    return text
