"""``agent tap``: watch a sample of the events passing points of a running agent.

    agent tap [POINT ...] [--port N] [--rate N] [--header KEY[=GLOB]] [--body text|hex] [--max-body N]
              [--count N] [--duration S] [--json]

A POINT is ``source:r1`` (what the source hands its channels, after its interceptors), ``channel:c1`` (the
batches put into the channel), ``sink:k1`` (the batches the sink took, before it delivers them), or a bare name
when only one component has it; wildcards work (``sink:*``). Without points, every source is tapped. The agent
must run with ``-Dflume.monitoring.type=http -Dflume.monitoring.port=N`` (the tap is served there, to loopback
clients only unless the agent allows more with ``-Dpyflume.tap.allow=CIDR``).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["main", "format_event", "printable"]

_READ_TIMEOUT = 15.0  # the agent sends stats every second, so silence this long means it is gone


def printable(data: bytes) -> str:
    """``data`` as UTF-8 text with every control or undecodable byte escaped (``\\n``, ``\\t``, ``\\x00``)."""
    text = data.decode("utf-8", errors="backslashreplace")
    out = []
    for ch in text:
        if ch == "\\" or ch.isprintable():
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)


def _body(sample: dict[str, Any], mode: str, max_body: int) -> str:
    data = base64.b64decode(sample.get("body", ""))[:max_body]
    size = int(sample.get("size", len(data)))
    text = data.hex(" ") if mode == "hex" else printable(data)
    return text + (f" … ({size:,} bytes)" if size > len(data) else "")


def format_event(sample: dict[str, Any], mode: str = "text", max_body: int = 200) -> str:
    """One line: time, point, headers as Flume prints them (``{k=v, …}``), then the body."""
    stamp = time.strftime("%H:%M:%S", time.localtime(sample["time"])) + f".{int(sample['time'] * 1000) % 1000:03d}"
    headers = "{" + ", ".join(f"{k}={printable(v.encode())}" for k, v in sample.get("headers", {}).items()) + "}"
    return f"{stamp} {sample['point']} {headers} {_body(sample, mode, max_body)}"


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Watch a sample of the events passing points of a running "
                                "agent.", epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("points", nargs="*", metavar="POINT", help="source:NAME, channel:NAME, sink:NAME or NAME "
                   "(wildcards allowed); default: every source")
    p.add_argument("--port", "-p", type=int, default=41414, help="the agent's -Dflume.monitoring.port (default 41414)")
    p.add_argument("--host", "-H", default="127.0.0.1", help="the agent's host (default 127.0.0.1)")
    p.add_argument("--rate", type=float, default=10.0, help="events per second at most, over all points (default 10)")
    p.add_argument("--header", action="append", default=[], metavar="KEY[=GLOB]",
                   help="only events with this header (matching GLOB); repeat: all must hold")
    p.add_argument("--body", choices=("text", "hex"), default="text",
                   help="text: UTF-8 with control bytes escaped (default); hex: the bytes in hex")
    p.add_argument("--max-body", type=int, default=200, metavar="BYTES",
                   help="show at most this many bytes of each body (default 200)")
    p.add_argument("--count", "-n", type=int, metavar="N", help="stop after N events")
    p.add_argument("--duration", type=float, metavar="SEC", help="stop after SEC seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per event (headers, body as --body shows "
                   "it, size, point, time)")
    return p


def _url(args: argparse.Namespace) -> str:
    query = [("point", p) for p in args.points] + [("header", h) for h in args.header]
    query += [("rate", repr(args.rate)), ("max_body", str(max(0, args.max_body)))]
    host = f"[{args.host}]" if ":" in args.host else args.host
    return f"http://{host}:{args.port}/tap?{urllib.parse.urlencode(query)}"


def _open(url: str, err: TextIO) -> Any:
    try:
        return urllib.request.urlopen(url, timeout=_READ_TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            err.write(f"agent tap: {url.split('/tap')[0]} serves no /tap: this agent does not offer taps "
                      f"(Apache Flume, or a pyflume agent without -Dflume.monitoring.type=http?)\n")
            return None
        try:
            message = json.loads(exc.read()).get("error", "")
        except ValueError:
            message = exc.reason
        err.write(f"agent tap: {message}\n")
        return None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        err.write(f"agent tap: cannot reach the agent at {url.split('/tap')[0]} ({reason}); is it running with "
                  f"-Dflume.monitoring.type=http -Dflume.monitoring.port=N (give --port N)?\n")
        return None


def main(argv: Sequence[str], prog: str = "agent tap", out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser(prog).parse_args(argv)
    resp = _open(_url(args), err)
    if resp is None:
        return 1
    deadline = time.monotonic() + args.duration if args.duration else None
    shown, stats, points, ended = 0, {}, [], None
    try:
        while args.count is None or shown < args.count:
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                line = resp.readline()
            except TimeoutError:  # the agent writes stats every second, so --duration is checked that often
                ended = "no word from the agent for 15 s"
                break
            if not line:
                ended = ended or "the connection to the agent was lost"
                break
            msg = json.loads(line)
            kind = msg.get("type")
            if kind == "tap":
                points = msg["points"]
                err.write(f"agent tap: watching {', '.join(points)} (at most {msg['rate']:g}/s); "
                          f"Ctrl-C stops\n")
            elif kind == "stats":
                stats = msg
            elif kind == "end":
                stats, ended = msg, msg.get("reason", "the agent ended the tap")
                break
            else:
                shown += 1
                if args.json:
                    msg["body"] = _body(msg, args.body, args.max_body)
                    out.write(json.dumps(msg) + "\n")
                else:
                    out.write(format_event(msg, args.body, args.max_body) + "\n")
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        resp.close()
    summary = f"agent tap: {shown:,} events shown"
    if stats:
        summary += f"; {stats['seen']:,} passed {', '.join(points)}"
        if stats.get("matched") != stats.get("seen"):
            summary += f", {stats['matched']:,} matched the header filter"
        if stats.get("dropped"):
            summary += f", {stats['dropped']:,} dropped (this terminal was too slow)"
    err.write(summary + (f" ({ended})" if ended and ended.startswith("the agent") else "") + "\n")
    if ended and not ended.startswith("the agent"):
        err.write(f"agent tap: {ended}\n")
        return 1
    return 0
