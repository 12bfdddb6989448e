"""File channel replay time: fill a channel with N events, then time a restart (``python -m bench.replay``).

Two restarts are timed: after a crash (no checkpoint since the events were written, so the whole log is replayed)
and after a clean stop (the checkpoint is loaded and nothing is replayed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from agent.core import Event
from agent.spec import Conf
from channels.file import FileChannel


def channel(root: Path, **extra: str) -> FileChannel:
    raw = {"checkpointDir": str(root / "cp"), "dataDirs": str(root / "data"), "checkpointInterval": "3600000",
           "transactionCapacity": "1000", "minimumRequiredSpace": "1048576", **extra}
    return FileChannel("c1", Conf.from_dict(FileChannel.spec, **{k.replace("-", "_"): v for k, v in raw.items()}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        ch = channel(root, checkpointOnClose="false")
        ch.start()
        filler = b"x" * (args.size - 11)
        t0 = time.monotonic()
        for start in range(0, args.events, 1000):
            with ch.transaction() as tx:
                tx.put_batch([Event(b"%010d%s" % (i, filler)) for i in range(start, min(args.events, start + 1000))])
                tx.commit()
        fill = time.monotonic() - t0
        ch.stop()
        crash = channel(root)
        t0 = time.monotonic()
        crash.start()
        replay = time.monotonic() - t0
        assert crash.size() == args.events, crash.size()
        crash.stop()  # writes a checkpoint
        clean = channel(root)
        t0 = time.monotonic()
        clean.start()
        load = time.monotonic() - t0
        assert clean.size() == args.events
        t0 = time.monotonic()
        n = 0
        while True:
            with clean.transaction() as tx:
                got = tx.take_batch(1000)
                tx.commit()
            if not got:
                break
            n += len(got)
        drain = time.monotonic() - t0
        clean.stop()
        assert n == args.events
        print(f"{args.events:,} events of {args.size} bytes: filled in {fill:.2f} s ({args.events / fill:,.0f}/s, "
              f"fsync per commit); replay after a crash {replay:.2f} s; start from a checkpoint {load:.2f} s; "
              f"drained from disk in {drain:.2f} s ({args.events / drain:,.0f}/s)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
