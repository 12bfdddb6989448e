"""A test sink that holds every batch while a gate file exists: makes a channel fill up for real."""

from __future__ import annotations

import os
import time

from agent.core import BatchSink, Event
from agent.spec import Conf, Prop, Spec


class GateSink(BatchSink):
    """Delivers to a file like file_roll, but waits while ``gate`` exists (the batch stays in the channel)."""

    batch_size_prop = "batchSize"
    spec = Spec(
        Prop("gate", "str", required=True, doc="While this file exists, deliveries wait."),
        Prop("path", "str", required=True, doc="File the bodies are appended to, one per line."),
        Prop("batchSize", "int", 100, "Events per transaction.", min=1),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.gate = conf["gate"]
        self.path = conf["path"]

    def deliver(self, events: list[Event]) -> None:
        while os.path.exists(self.gate):
            time.sleep(0.02)
        with open(self.path, "ab") as f:
            f.write(b"".join(e.body + b"\n" for e in events))
