"""``python -m bench.tap_cost [--tap] [--batches N]``: what the tap points cost the hot path, in this process.

Batches of 100 events go through a source's channel processor (one static interceptor) into a memory channel and
out through a null sink, on one thread; the best CPU time per batch of seven repetitions is printed. Without
``--tap`` the three tap points (``source:r1``, ``channel:c1``, ``sink:k1``) are untapped, as in production: run it
on two checkouts, alternately, to compare a change of the hot path. With ``--tap`` one tap (10 events/s) watches
all three.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from agent import config
from agent.core import Event

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = i1
a1.sources.r1.interceptors.i1.type = static
a1.sources.r1.interceptors.i1.key = k
a1.sources.r1.interceptors.i1.value = v
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 100
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tap_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--tap", action="store_true", help="attach one tap to all three points")
    parser.add_argument("--batches", type=int, default=3000, help="batches per repetition (default 3000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.conf"
        path.write_text(CONF)
        topo, problems = config.check([str(path)], "a1")
    assert topo is not None, [str(p) for p in problems]
    ch, sink, cp = topo.channels["c1"], topo.sinks["k1"], topo.sources["r1"].channel_processor
    ch.start()
    sink.start()
    cp.start()
    if args.tap:
        from agent import tap  # only here: without --tap it runs on checkouts from before agent tap too

        hub = tap.TapHub(lambda: topo)
        hub.attach(tap.Tap(hub.resolve(["source:r1", "channel:c1", "sink:k1"]), rate=10))
    bodies = [b"%010d abcdefghijklmnopqrstuvwxyz" % i for i in range(100)]
    best = float("inf")
    for _ in range(7):
        t = time.process_time()
        for _ in range(args.batches):
            cp.process_batch([Event(b) for b in bodies])
            sink.process()
        best = min(best, (time.process_time() - t) / args.batches)
    print(f"{best * 1e6:.2f} us CPU per 100-event batch ({'tapped' if args.tap else 'untapped'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
