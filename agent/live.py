"""The operators' live tools served on the monitoring port beside Flume's ``/metrics``: ``/tap`` for
``agent tap`` (agent/tap.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from agent import tap

__all__ = ["routes"]

log = logging.getLogger("pyflume.live")


def routes(agent: Any) -> dict[str, Callable[[BaseHTTPRequestHandler], None]]:
    """The extra GET paths of a running :class:`agent.runners.Agent`'s monitoring server."""
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

    return {"/tap": lambda handler: tap.serve(handler, hub, networks, stopping)}
