"""The operators' live tools served on the monitoring port beside Flume's ``/metrics``: the status page (``/``
and ``/status.json``, agent/status_page.py) and ``/tap`` for ``agent tap`` (agent/tap.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from agent import status_page, tap

__all__ = ["routes"]

log = logging.getLogger("pyflume.live")
_errors = status_page.ErrorLog()


def routes(agent: Any) -> dict[str, Callable[[BaseHTTPRequestHandler], None]]:
    """The extra GET paths of a running :class:`agent.runners.Agent`'s monitoring server."""
    pyflume_log = logging.getLogger("pyflume")
    if _errors not in pyflume_log.handlers:
        pyflume_log.addHandler(_errors)
    hub = tap.TapHub(lambda: agent.topo)
    allow = agent.topo.sysprops.get("pyflume.tap.allow")
    try:
        networks = tap.allowed_networks(allow)
    except ValueError as exc:
        log.error("-Dpyflume.tap.allow=%s: %s (expected CIDRs such as 10.0.0.0/8, comma-separated, or none); "
                  "agent tap is off", allow, exc)
        networks = []

    def stopping() -> bool:
        return agent.health().get("status") == "STOPPING"

    def page(handler: Any) -> None:
        handler._send(200, status_page.page(), "text/html;charset=utf-8")

    def status(handler: Any) -> None:
        body = json.dumps(status_page.status(agent, _errors)).encode()
        handler._send(200, body, "application/json;charset=utf-8")

    return {"/": page, "/status.json": status, "/tap": lambda handler: tap.serve(handler, hub, networks, stopping)}
