"""``flume-ng avro-client`` / ``agent avro-client``: send the lines of a file (or stdin) to an Avro source.

Like Flume's AvroCLIClient: one event per line (the newline dropped), headers for every event from a properties
file given with ``-R``, batches of ``--batch-size`` lines, and a non-zero exit status when the source did not
accept everything. ``-P/--rpcProps FILE`` replaces ``-H``/``-p`` with Flume's RPC client properties (several
hosts, failover or load balance, batch size, timeouts, compression, TLS; see :mod:`agent.rpc_client_props`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from agent.core import Event
from agent.properties import PropertiesError, load_properties
from agent.rpc import RpcClient, RpcError
from agent.rpc_client_props import Sender, build_sender, load_rpc_props
from agent.spec import Problem


def _lines(paths: list[Path]) -> Iterator[bytes]:
    if not paths:
        for line in sys.stdin.buffer:
            yield line.rstrip(b"\n").rstrip(b"\r")
        return
    for p in paths:
        with open(p, "rb") as f:
            for line in f:
                yield line.rstrip(b"\n").rstrip(b"\r")


def main(argv: Sequence[str], prog: str = "avro-client") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Send each line of a file (or stdin) as an event to an "
                                "Avro source.")
    p.add_argument("-H", "--host", help="host of the Avro source")
    p.add_argument("-p", "--port", type=int, help="port of the Avro source")
    p.add_argument("-P", "--rpcProps", type=Path, help="Flume's RPC client properties file (hosts, client.type "
                   "default_failover or default_loadbalance, batch-size, timeouts, compression, ssl) instead of "
                   "--host and --port")
    p.add_argument("-F", "--filename", type=Path, help="file to send (default: stdin)")
    p.add_argument("--dirname", type=Path, help="send every file of this directory")
    p.add_argument("-R", "--headerFile", type=Path, help="properties file of headers added to every event")
    p.add_argument("-c", "--conf", help="ignored (Flume's configuration directory)")
    p.add_argument("--batch-size", type=int, help="events per appendBatch call (default 100; with --rpcProps, "
                   "its batch-size)")
    p.add_argument("--compression-type", choices=["none", "deflate"],
                   help="default none; with --rpcProps, its compression-type")
    args = p.parse_args(list(argv))
    if args.rpcProps is None and (args.host is None or args.port is None):
        p.error("Either --rpcProps or both --host and --port must be specified.")
    headers: dict[str, str] = {}
    if args.headerFile:
        headers = {e.key: e.value for e in load_properties(args.headerFile)}
    paths = [args.filename] if args.filename else []
    if args.dirname:
        paths += sorted(x for x in args.dirname.iterdir() if x.is_file())
    if args.rpcProps is not None:
        made = _from_rpc_props(args.rpcProps, args, prog)
        if made is None:
            return 1
        client, batch_size, target = made
    else:
        client = RpcClient(args.host, args.port, deflate=args.compression_type == "deflate")
        batch_size, target = args.batch_size or 100, f"{args.host}:{args.port}"
    sent = 0
    batch: list[Event] = []
    try:
        for line in _lines(paths):
            batch.append(Event(line, dict(headers)))
            if len(batch) >= batch_size:
                client.append_batch(batch)
                sent += len(batch)
                batch = []
        if batch:
            client.append_batch(batch)
            sent += len(batch)
    except RpcError as exc:
        print(f"{prog}: {exc} ({sent} events sent before)", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"Sent {sent} events to {target}", file=sys.stderr)
    return 0


def _from_rpc_props(path: Path, args: argparse.Namespace, prog: str) -> tuple[Sender, int, str] | None:
    """The client an RPC client properties file describes; None (after printing why) when it is unusable."""
    if args.batch_size is not None or args.compression_type is not None:
        print(f"{prog}: with --rpcProps, set batch-size and compression-type in {path}", file=sys.stderr)
        return None
    if not path.is_file():
        print(f"{prog}: RPC client properties file {path} does not exist!", file=sys.stderr)
        return None
    problems: list[Problem] = []
    try:
        props = load_rpc_props(path, problems)
    except (OSError, PropertiesError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
    for problem in problems:
        print(problem, file=sys.stderr)
    if any(p.severity == "error" for p in problems):
        return None
    known = len(problems)
    client, batch_size = build_sender(props)
    if problems[known:]:  # the trust store could not be loaded
        for problem in problems[known:]:
            print(problem, file=sys.stderr)
        return None
    kind = props.conf.typed.client_type
    hosts = props.hosts if kind != "default" else props.hosts[:1]
    return client, batch_size, ", ".join(map(str, hosts)) + (f" ({kind})" if kind != "default" else "")
