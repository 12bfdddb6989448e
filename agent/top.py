"""``agent top``: a live terminal view of every component of a running agent, from its JSON metrics.

    agent top [--port N] [--host H] [--interval SEC] [--once]

It reads Flume's ``GET /metrics`` (``-Dflume.monitoring.type=http -Dflume.monitoring.port=N``), so it watches
Apache Flume's own agents as well as pyflume's; from a pyflume agent it reads ``/status.json`` instead, which has the
same counters for every component, also those Flume's JSON leaves out (netcat, logger, null). One row per
component: events per second in and out, total out, channel fill, failures and open connections, coloured as they
need attention, sorted like ``top`` (a key picks the column, pressing it again reverses). With ``--once`` (or when
the output is not a terminal) it prints one table, measured over one interval, and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import termios
import time
import tty
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["Row", "rows_of", "render", "main"]

_KIND_ORDER = {"SOURCE": 0, "CHANNEL": 1, "SINK": 2}
_KIND_STYLE = {"SOURCE": "cyan", "CHANNEL": "magenta", "SINK": "green"}
#: key → (sort column, its heading); pressing the key of the current column again reverses the order
SORT_KEYS = {"k": ("kind", "KIND"), "n": ("name", "NAME"), "i": ("in_rate", "IN/s"), "o": ("out_rate", "OUT/s"),
             "f": ("fill", "FILL"), "e": ("errors", "ERRORS")}
_HELP = "q quit · sort by k kind, n name, i in/s, o out/s, f fill, e errors (again: reverse)"
_FAIL_ATTRS = {
    "SOURCE": ("EventReadFail", "ChannelWriteFail", "GenericProcessingFail"),
    "CHANNEL": ("EventPutErrorCount", "EventTakeErrorCount", "CheckpointWriteErrorCount",
                "CheckpointBackupWriteErrorCount"),
    "SINK": ("EventWriteFail", "ChannelReadFail", "ConnectionFailedCount"),
}
_JAVA_DOUBLE_MAX = 1.7976931348623157e308


@dataclass
class Row:
    kind: str
    name: str
    in_rate: float
    out_rate: float
    total_out: int
    fill: float | None  # percent; None when the component has no capacity
    size: int | None
    capacity: int | None
    errors: int
    new_errors: int  # since the previous sample
    connections: int | None
    state: str  # START, STOP, ERROR (pyflume's /health) or "" when unknown


def _int(attrs: dict[str, str], key: str) -> int:
    try:
        return int(float(attrs.get(key, "0")))
    except ValueError:
        return 0


def _flow(kind: str, attrs: dict[str, str]) -> tuple[int, int]:
    """(events in, events out) of a component so far."""
    if kind == "SOURCE":  # Flume's seq source counts only EventAccepted
        return max(_int(attrs, "EventReceivedCount"), _int(attrs, "EventAcceptedCount")), \
            _int(attrs, "EventAcceptedCount")
    if kind == "CHANNEL":
        return _int(attrs, "EventPutSuccessCount"), _int(attrs, "EventTakeSuccessCount")
    if kind == "SINK":
        return _int(attrs, "EventDrainAttemptCount"), _int(attrs, "EventDrainSuccessCount")
    return 0, 0


def _connections(kind: str, attrs: dict[str, str]) -> int | None:
    if kind == "SOURCE" and "OpenConnectionCount" in attrs:
        return _int(attrs, "OpenConnectionCount")
    if kind == "SINK":
        return max(0, _int(attrs, "ConnectionCreatedCount") - _int(attrs, "ConnectionClosedCount"))
    return None


def rows_of(prev: dict[str, dict[str, str]] | None, cur: dict[str, dict[str, str]], seconds: float,
            states: dict[str, str] | None = None) -> list[Row]:
    """One row per component of the metrics snapshot ``cur``; rates against ``prev`` taken ``seconds`` before
    (a counter that went down — a restarted component — counts from zero)."""
    rows = []
    for key, attrs in cur.items():
        kind, _, name = key.partition(".")
        kind = attrs.get("Type", kind).upper()
        before = (prev or {}).get(key)
        n_in, n_out = _flow(kind, attrs)
        errors = sum(_int(attrs, a) for a in _FAIL_ATTRS.get(kind, ()))
        if before is not None and seconds > 0:
            b_in, b_out = _flow(kind, before)
            in_rate = (n_in - b_in if n_in >= b_in else n_in) / seconds
            out_rate = (n_out - b_out if n_out >= b_out else n_out) / seconds
            b_err = sum(_int(before, a) for a in _FAIL_ATTRS.get(kind, ()))
            new_errors = errors - b_err if errors >= b_err else errors
        else:
            in_rate = out_rate = 0.0
            new_errors = 0
        fill = size = capacity = None
        if kind == "CHANNEL":
            size, capacity = _int(attrs, "ChannelSize"), _int(attrs, "ChannelCapacity")
            try:
                fill = float(attrs.get("ChannelFillPercentage", "nan"))
            except ValueError:
                fill = None
            if fill is not None and (fill != fill or fill >= _JAVA_DOUBLE_MAX):  # NaN, or Flume's "no capacity"
                fill = None
        states = states or {}
        state = states.get(f"{_LABELS.get(kind, kind.lower())} {name}", "")
        if kind == "SINK" and not state:  # a sink of its own runs in a group of its name
            state = states.get(f"sink group {name}", "")
        if not state and _int(attrs, "StopTime") > 0:
            state = "STOP"
        rows.append(Row(kind, name, in_rate, out_rate, n_out, fill, size, capacity, errors, new_errors,
                        _connections(kind, attrs), state))
    return rows


_LABELS = {"SOURCE": "source", "CHANNEL": "channel", "SINK": "sink"}


def sort_rows(rows: list[Row], column: str, reverse: bool) -> list[Row]:
    def key(r: Row) -> Any:
        if column == "kind":
            return (_KIND_ORDER.get(r.kind, 9), r.name)
        if column == "name":
            return (r.name, _KIND_ORDER.get(r.kind, 9))
        value = getattr(r, column)
        return (-1.0 if value is None else value, r.name)

    # the numeric columns read naturally biggest first, like top; kind and name A to Z
    natural = column not in ("kind", "name")
    return sorted(rows, key=key, reverse=natural != reverse)


def _human(x: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}" if x == int(x) or x >= 100 else f"{x:.1f}"


def _fill_cell(fill: float | None) -> Text:
    if fill is None:
        return Text("—", style="dim")
    style = "green" if fill < 50 else "yellow" if fill < 80 else "bold red"
    filled = min(6, round(fill * 6 / 100))
    return Text("█" * filled + "░" * (6 - filled) + f" {fill:5.1f}%", style=style)


def render(rows: list[Row], column: str, reverse: bool, title: str, problem: str | None) -> Group:
    """The screen: a title line, the table, and a line of keys."""
    table = Table(box=None, header_style="bold reverse", padding=(0, 1, 0, 0), pad_edge=False)
    for col, heading in SORT_KEYS.values():
        if col == column:
            heading += "▲" if (col in ("kind", "name")) != reverse else "▼"
        table.add_column(heading, justify="left" if col in ("kind", "name", "fill") else "right", no_wrap=True,
                         min_width=max(len(heading), {"kind": 7, "name": 6, "fill": 13}.get(col, 6)))
    for heading in ("TOTAL", "SIZE/CAP", "CONN", "STATE"):
        table.add_column(heading, justify="left" if heading == "STATE" else "right", no_wrap=True,
                         min_width=len(heading) if heading != "SIZE/CAP" else 9)
    for r in sort_rows(rows, column, reverse):
        dim = r.state in ("STOP", "ERROR")
        err_style = "bold red" if r.new_errors else "yellow" if r.errors else "dim"
        cells = [
            Text(r.kind, style=_KIND_STYLE.get(r.kind, "")),
            Text(r.name, style="bold"),
            Text(_human(r.in_rate), style="" if r.in_rate else "dim"),
            Text(_human(r.out_rate), style="" if r.out_rate else "dim"),
            _fill_cell(r.fill),
            Text(_human(r.errors) + (f" +{r.new_errors}" if r.new_errors else ""), style=err_style),
            Text(_human(r.total_out)),
            Text(f"{r.size:,}/{r.capacity:,}" if r.size is not None and r.capacity else "—",
                 style="" if r.capacity else "dim"),
            Text("—" if r.connections is None else str(r.connections), style="" if r.connections else "dim"),
            Text(r.state or "—", style="bold red" if r.state == "ERROR" else "dim" if dim or not r.state else ""),
        ]
        table.add_row(*cells, style="dim" if dim else "")
    if not rows:
        table.add_row(Text("(no components in /metrics)", style="dim"))
    head = Text(title)
    if problem:
        head.append(f"  {problem}", style="bold red")
    return Group(head, table, Text(_HELP, style="dim"))


class _Watch:
    """The metrics of one agent, sampled at each ``refresh()``."""

    def __init__(self, base: str):
        self.base = base
        self.prev: dict[str, dict[str, str]] | None = None
        self.prev_t = 0.0
        self.rows: list[Row] = []
        self.problem: str | None = None
        self.status = ""
        self.agent = ""
        self.flume_only = False  # the agent has no /status.json (Apache Flume): read /metrics and /health

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=5) as resp:
            return json.loads(resp.read())

    def _status(self) -> tuple[dict[str, dict[str, str]], dict[str, str]] | None:
        """pyflume's /status.json as (counters by TYPE.name, states): every component, also those Flume's /metrics
        leaves out (netcat, logger, null); None from an agent without it (Apache Flume)."""
        if self.flume_only:
            return None
        try:
            st = self._get("/status.json")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                self.flume_only = True
                return None
            raise
        topo = st["topology"]
        comps = [("SOURCE", c) for c in topo["sources"]] + [("CHANNEL", c) for c in topo["channels"]] + \
            [("SINK", s) for g in topo["groups"] for s in g["sinks"]]
        cur = {f"{kind}.{c['name']}": c["counters"] or {"Type": kind} for kind, c in comps}
        self.status, self.agent = st.get("status", ""), st.get("agent", "")
        return cur, st.get("states", {})

    def refresh(self) -> None:
        try:
            found = self._status()
            cur = found[0] if found else self._get("/metrics")
        except (OSError, ValueError, KeyError) as exc:
            self.problem = f"cannot read {self.base}/metrics: {getattr(exc, 'reason', exc)} (retrying)"
            return
        now = time.monotonic()
        if found:
            self._update(cur, now, found[1])
            return
        states = None
        try:
            health = self._get("/health")  # pyflume only; Apache Flume answers 404
            states, self.status = health.get("components"), health.get("status", "")
            self.agent = health.get("agent", "")
        except urllib.error.HTTPError as exc:
            if exc.code == 503:  # pyflume: some component is not running
                try:
                    health = json.loads(exc.read())
                    states, self.status = health.get("components"), health.get("status", "")
                except ValueError:
                    pass
        except (OSError, ValueError):
            pass
        self._update(cur, now, states)

    def _update(self, cur: dict[str, dict[str, str]], now: float, states: dict[str, str] | None) -> None:
        self.rows = rows_of(self.prev, cur, now - self.prev_t if self.prev is not None else 0.0, states)
        self.prev, self.prev_t = cur, now
        self.problem = None

    def title(self) -> str:
        into = sum(r.out_rate for r in self.rows if r.kind == "SOURCE")
        out = sum(r.out_rate for r in self.rows if r.kind == "SINK")
        status = f" · {self.status}" if self.status else ""
        name = f"{self.agent} @ " if self.agent else ""
        return (f"{name}{self.base.removeprefix('http://')}{status} · {len(self.rows)} components · "
                f"in {_human(into)}/s · out {_human(out)}/s · {time.strftime('%H:%M:%S')}")


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--port", "-p", type=int, default=41414, help="the agent's -Dflume.monitoring.port (default 41414)")
    p.add_argument("--host", "-H", default="127.0.0.1", help="the agent's host (default 127.0.0.1)")
    p.add_argument("--interval", "-d", type=float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("--once", action="store_true", help="print one table measured over one interval, and exit")
    p.add_argument("--sort", choices=[c for c, _ in SORT_KEYS.values()], default="kind", help="initial sort column")
    return p


def main(argv: Sequence[str], prog: str = "agent top") -> int:
    args = _parser(prog).parse_args(argv)
    host = f"[{args.host}]" if ":" in args.host else args.host
    watch = _Watch(f"http://{host}:{args.port}")
    interval = max(0.2, args.interval)
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.once
    watch.refresh()
    if watch.problem and watch.prev is None and not interactive:
        print(f"agent top: {watch.problem.removesuffix(' (retrying)')}; is the agent running with "
              f"-Dflume.monitoring.type=http -Dflume.monitoring.port=N (give --port N)?", file=sys.stderr)
        return 1
    if not interactive:
        time.sleep(interval)
        watch.refresh()
        Console().print(render(watch.rows, args.sort, False, watch.title(), watch.problem))
        return 1 if watch.problem else 0
    return _interactive(watch, interval, args.sort)


def _interactive(watch: _Watch, interval: float, column: str) -> int:
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    reverse = False
    try:
        tty.setcbreak(fd)
        with Live(render(watch.rows, column, reverse, watch.title(), watch.problem), screen=True,
                  auto_refresh=False, transient=True) as live:
            next_at = time.monotonic() + interval
            while True:
                ready, _, _ = select.select([fd], [], [], max(0.0, next_at - time.monotonic()))
                if ready:
                    keys = os.read(fd, 32).decode(errors="ignore")
                    if "q" in keys or "\x03" in keys:
                        return 0
                    for k in keys:
                        if k in SORT_KEYS:
                            col = SORT_KEYS[k][0]
                            reverse = not reverse if col == column else False
                            column = col
                        elif k == "r":
                            reverse = not reverse
                if time.monotonic() >= next_at:
                    watch.refresh()
                    next_at = time.monotonic() + interval
                live.update(render(watch.rows, column, reverse, watch.title(), watch.problem), refresh=True)
    except KeyboardInterrupt:
        return 0
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
