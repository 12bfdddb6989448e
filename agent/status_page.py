"""The status page at the monitoring port's ``/``: the agent's topology with live rates and channel fill, its
recent errors and its effective configuration with secrets masked.

The page (``agent/static/status.html``) is one self-contained file (its styles and script inline; it fetches
nothing but ``/status.json`` from the agent that served it) that polls :func:`status` every second and computes
rates from successive counters. ``/status.json`` holds every component, also those Flume shows no MBean for
(netcat, logger, null), whose counters pyflume keeps all the same.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from importlib import resources
from typing import Any

__all__ = ["ErrorLog", "status", "effective_config", "mask", "page"]

#: A property whose name says it holds a secret: its value is never shown.
_SECRET_KEY = re.compile(r"pass(word|wd|phrase)?\b|pwd|secret|token|credential|jaas|private[._-]?key|api[._-]?key"
                         r"|auth[._-]?key|sasl\.password", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@/\s]+@", re.IGNORECASE)
MASK = "******"


def mask(key: str, value: str) -> str:
    """``value`` as the page may show it: all of it masked when ``key`` names a secret (``keystore-password``,
    ``kafka.producer.sasl.jaas.config``, ``javax.net.ssl.trustStorePassword``), and a password inside a URL
    (``http://user:pw@host``) masked anywhere."""
    if _SECRET_KEY.search(key.replace("Password", ".password")):
        return MASK if value else value
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + "@", value)


class ErrorLog(logging.Handler):
    """The last ``size`` warnings and errors of the agent's loggers, for the page."""

    def __init__(self, size: int = 50):
        super().__init__(logging.WARNING)
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a badly formatted log call must not break the agent
            message = str(record.msg)
        self.records.append({"time": record.created, "level": record.levelname, "logger": record.name,
                             "message": message[:2000]})

    def recent(self) -> list[dict[str, Any]]:
        return list(self.records)


def _type(comp: Any) -> str:
    return getattr(comp, "alias", None) or type(comp).__name__


def _counters(comp: Any) -> dict[str, str] | None:
    attrs = comp.metrics()
    if attrs is None and getattr(comp, "counter", None) is not None:
        attrs = comp.counter.attributes()  # a component Flume shows no MBean for: pyflume counts it anyway
    return attrs


def _routes(src: Any) -> tuple[list[str], list[str]]:
    sel = src.channel_processor.selector
    if hasattr(sel, "mapping"):  # multiplexing
        required = [c.name for chans in sel.mapping.values() for c in chans] + [c.name for c in sel.default]
        optional = [c.name for chans in sel.optional.values() for c in chans]
    else:
        required, optional = [c.name for c in sel.required], [c.name for c in sel.optional]
    return list(dict.fromkeys(required)), [c for c in dict.fromkeys(optional) if c not in required]


def _topology(topo: Any) -> dict[str, Any]:
    sources = []
    for name, src in topo.sources.items():
        cp = src.channel_processor
        required, optional = _routes(src) if cp is not None else ([], [])
        sources.append({"name": name, "type": _type(src), "counters": _counters(src),
                        "interceptors": [{"name": i.name, "type": _type(i)} for i in (cp.interceptors if cp else [])],
                        "selector": _type(cp.selector) if cp else "", "channels": required, "optional": optional})
    channels = [{"name": name, "type": _type(ch), "capacity": ch.capacity, "counters": _counters(ch)}
                for name, ch in topo.channels.items()]
    groups = []
    for gname, proc in topo.groups.items():
        groups.append({"name": gname, "processor": _type(proc),
                       "sinks": [{"name": s.name, "type": _type(s), "channel": s.channel.name if s.channel else None,
                                  "counters": _counters(s)} for s in proc.sinks]})
    return {"sources": sources, "channels": channels, "groups": groups}


def effective_config(topo: Any) -> list[dict[str, Any]]:
    """The properties the running agent was built from, in file order, secrets masked: each with its key,
    value, file and line, then the -D system properties."""
    plan = topo.plan
    out: list[dict[str, Any]] = []
    if plan is not None:
        for kind, comps in (("sources", plan.sources), ("channels", plan.channels), ("sinks", plan.sinks),
                            ("sinkgroups", plan.sinkgroups)):
            if comps:
                out.append({"key": f"{plan.name}.{kind}", "value": " ".join(comps), "file": "", "line": 0})
            for name, comp in comps.items():
                for prop, raw in comp.props.items():
                    key = f"{plan.name}.{kind}.{name}.{prop}"
                    out.append({"key": key, "value": mask(key, raw.value), "file": raw.path, "line": raw.line})
    head = [e for e in out if not e["line"]]
    body = sorted((e for e in out if e["line"]), key=lambda e: (e["file"], e["line"]))
    sysprops = [{"key": f"-D{k}", "value": mask(k, v), "file": "", "line": 0} for k, v in sorted(topo.sysprops.items())]
    return head + body + sysprops


_started = time.time()


def status(agent: Any, errors: ErrorLog) -> dict[str, Any]:
    """What ``/status.json`` answers: the agent's health, topology with counters, recent errors, configuration."""
    topo = agent.topo
    health = agent.health()
    return {"agent": topo.name, "status": health.get("status"), "states": health.get("components", {}),
            "time": time.time(), "started": _started, "topology": _topology(topo), "errors": errors.recent(),
            "config": effective_config(topo)}


_page_lock = threading.Lock()
_page: bytes | None = None


def page() -> bytes:
    """The status page, read once from the package."""
    global _page
    with _page_lock:
        if _page is None:
            _page = resources.files("agent").joinpath("static/status.html").read_bytes()
        return _page
