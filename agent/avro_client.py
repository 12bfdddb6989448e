"""``flume-ng avro-client`` / ``agent avro-client``: send the lines of a file (or stdin) to an Avro source.

Like Flume's AvroCLIClient: one event per line (the newline dropped), headers for every event from a properties
file given with ``-R``, batches of ``--batch-size`` lines, and a non-zero exit status when the source did not
accept everything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from agent.core import Event
from agent.properties import load_properties
from agent.rpc import RpcClient, RpcError


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
    p.add_argument("-H", "--host", required=True, help="host of the Avro source")
    p.add_argument("-p", "--port", required=True, type=int, help="port of the Avro source")
    p.add_argument("-F", "--filename", type=Path, help="file to send (default: stdin)")
    p.add_argument("--dirname", type=Path, help="send every file of this directory")
    p.add_argument("-R", "--headerFile", type=Path, help="properties file of headers added to every event")
    p.add_argument("-c", "--conf", help="ignored (Flume's configuration directory)")
    p.add_argument("--batch-size", type=int, default=100, help="events per appendBatch call (default 100)")
    p.add_argument("--compression-type", choices=["none", "deflate"], default="none")
    args = p.parse_args(list(argv))
    headers: dict[str, str] = {}
    if args.headerFile:
        headers = {e.key: e.value for e in load_properties(args.headerFile)}
    paths = [args.filename] if args.filename else []
    if args.dirname:
        paths += sorted(x for x in args.dirname.iterdir() if x.is_file())
    client = RpcClient(args.host, args.port, deflate=args.compression_type == "deflate")
    sent = 0
    batch: list[Event] = []
    try:
        for line in _lines(paths):
            batch.append(Event(line, dict(headers)))
            if len(batch) >= args.batch_size:
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
    print(f"Sent {sent} events to {args.host}:{args.port}", file=sys.stderr)
    return 0
