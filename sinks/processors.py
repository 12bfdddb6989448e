"""Sink processors: how a sink group drives its sinks (``<agent>.sinkgroups.<g>.processor.*``).

``default`` runs one sink. ``failover`` sends to the live sink with the highest priority and sets a failed sink
aside for a growing penalty. ``load_balance`` spreads batches over its sinks (round-robin or random), optionally
backing off from a failing sink.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from agent.core import EventDeliveryException, Sink, SinkProcessor, Status
from agent.spec import Conf, Prop, Spec

__all__ = ["DefaultSinkProcessor", "FailoverSinkProcessor", "LoadBalancingSinkProcessor"]

_FAILURE_PENALTY_MS = 1000


class DefaultSinkProcessor(SinkProcessor):
    """Runs exactly one sink."""

    alias = "default"
    flume_class = "org.apache.flume.sink.DefaultSinkProcessor"
    spec = Spec()

    def set_sinks(self, sinks: list[Sink]) -> None:
        if len(sinks) != 1:
            self.conf.error(f"the default processor runs exactly one sink; this group lists {len(sinks)}. "
                            f"Use processor.type = failover or load_balance for several", "type")
        super().set_sinks(sinks)

    def process(self) -> Status:
        return self.sinks[0].process()


class FailoverSinkProcessor(SinkProcessor):
    """The live sink with the highest priority gets every batch; a failed sink sits out a growing penalty."""

    alias = "failover"
    flume_class = "org.apache.flume.sink.FailoverSinkProcessor"
    spec = Spec(
        Prop("priority.", prefix=True, doc="priority.<sink> = an integer; the highest live priority is used. Sinks "
             "without one get -1, -2, … in the order the group lists them."),
        Prop("maxpenalty", "int", 30000, "The longest a failed sink is set aside (ms); the penalty doubles with "
             "each consecutive failure, from 2 s.", min=0),
    )

    def __init__(self, name: str, conf: Conf, clock: Callable[[], float] = time.monotonic):
        super().__init__(name, conf)
        self.max_penalty_ms: int = self.config.maxpenalty
        self._clock = clock

    def set_sinks(self, sinks: list[Sink]) -> None:
        super().set_sinks(sinks)
        names = {s.name for s in sinks}
        prio: dict[str, int] = {}
        for key, value in self.config.priority.items():
            if key not in names:
                self.conf.warn(f"priority given for '{key}', which is not in this group "
                               f"({', '.join(sorted(names))})", "priority." + key)
                continue
            try:
                prio[key] = int(value)
            except ValueError:
                self.conf.error(f"{value!r} is not an integer", "priority." + key)
        nxt = -1
        self._priority: dict[Sink, int] = {}
        for s in sinks:
            if s.name in prio:
                self._priority[s] = prio[s.name]
            else:
                self._priority[s] = nxt
                nxt -= 1
        seen: dict[int, str] = {}
        for s in sinks:
            p = self._priority[s]
            if p in seen:
                self.conf.error(f"sinks '{seen[p]}' and '{s.name}' have the same priority {p}; Flume would never "
                                f"use '{s.name}'. Give each sink its own priority", "priority." + s.name)
            seen[p] = s.name
        self._live: list[Sink] = sorted(sinks, key=lambda s: -self._priority[s])
        self._failed: dict[Sink, tuple[int, float]] = {}  # sink -> (consecutive failures, retry-at)

    def _penalize(self, sink: Sink, failures: int) -> None:
        delay = min(self.max_penalty_ms, (1 << min(failures, 30)) * _FAILURE_PENALTY_MS) / 1000.0
        self._failed[sink] = (failures, self._clock() + delay)

    def process(self) -> Status:
        now = self._clock()
        # Failed sinks whose penalty is over get a chance first; success puts them back in the live set.
        for sink, (failures, retry_at) in sorted(self._failed.items(), key=lambda kv: -self._priority[kv[0]]):
            if retry_at > now:
                continue
            try:
                status = sink.process()
            except Exception as exc:
                self._penalize(sink, failures + 1)
                sink.log.warning("Sink %s failed again (%d in a row): %s", sink.name, failures + 1, exc)
                continue
            del self._failed[sink]
            self._live.append(sink)
            self._live.sort(key=lambda s: -self._priority[s])
            sink.log.info("Sink %s is back in the failover group %s", sink.name, self.name)
            return status
        while self._live:
            active = self._live[0]
            try:
                return active.process()
            except Exception as exc:
                self._live.pop(0)
                self._penalize(active, 1)
                nxt = self._live[0].name if self._live else "none left"
                active.log.warning("Sink %s failed and was set aside; failing over to %s: %s", active.name, nxt, exc)
        raise EventDeliveryException(f"All sinks failed to process, nothing left to failover to (group {self.name})")


class LoadBalancingSinkProcessor(SinkProcessor):
    """Spreads batches over the group's sinks; with ``backoff`` a failing sink is skipped for a while."""

    alias = "load_balance"
    flume_class = "org.apache.flume.sink.LoadBalancingSinkProcessor"
    spec = Spec(
        Prop("backoff", "bool", False, "Skip a failed sink for a time that doubles with each consecutive failure."),
        Prop("selector", "enum", "round_robin", "How the next sink is chosen.",
             choices={"round_robin": "each batch starts at the next sink in turn",
                      "random": "each batch tries the sinks in a random order"}),
        Prop("selector.maxTimeOut", "int", 30000, "The longest a failed sink is skipped (ms).", min=0),
    )

    def __init__(self, name: str, conf: Conf, clock: Callable[[], float] = time.monotonic):
        super().__init__(name, conf)
        c = self.config
        self.backoff: bool = c.backoff
        self.random = c.selector == "random"
        self.max_timeout_ms: int = c.selector_max_time_out
        self._clock = clock
        self._next = 0
        self._failed: dict[Sink, tuple[int, float, float]] = {}  # sink -> (failures, until, last failure)

    def set_sinks(self, sinks: list[Sink]) -> None:
        if len(sinks) < 2:
            self.conf.error(f"load_balance needs at least two sinks; this group lists {len(sinks)}", "type")
        super().set_sinks(sinks)

    def _order(self) -> list[Sink]:
        sinks = self.sinks
        if self.random:
            order = list(sinks)
            random.shuffle(order)
        else:
            start = self._next % len(sinks)
            self._next = start + 1
            order = sinks[start:] + sinks[:start]
        if not self.backoff or not self._failed:
            return order
        now = self._clock()
        return [s for s in order if self._failed.get(s, (0, 0.0, 0.0))[1] <= now]

    def process(self) -> Status:
        for sink in self._order():
            try:
                status = sink.process()
            except Exception as exc:
                if self.backoff:
                    now = self._clock()
                    failures, _, last = self._failed.get(sink, (0, 0.0, 0.0))
                    if last and now - last > 3600 + self.max_timeout_ms / 1000.0:
                        failures = 0  # a sink that has been fine for an hour starts over
                    failures = min(failures + 1, 16)
                    delay = min(self.max_timeout_ms, _FAILURE_PENALTY_MS * (1 << failures)) / 1000.0
                    self._failed[sink] = (failures, now + delay, now)
                sink.log.warning("Sink %s failed; trying the next sink of group %s: %s", sink.name, self.name, exc)
                continue
            if self.backoff and sink in self._failed:
                del self._failed[sink]
            return status
        raise EventDeliveryException(f"All sinks failed to process, nothing left to failover to (group {self.name})")
