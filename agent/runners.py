"""Running a built topology: runner threads with Flume's backoff, a supervisor that restarts what crashed, and an
orderly start and stop.

Start order is channels → sinks → sources, so nothing is produced before it can be consumed. Stop is the
reverse: sources stop first, sinks get a short time to drain what is queued and finish their current batch, then
sinks close their files and connections, then channels stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.config import Topology
from agent.core import Channel, EventDrivenSource, PollableSource, SinkProcessor, Source, Status, _rate_limited
from agent.metrics import MetricsServer, counters_of

__all__ = ["Agent", "SinkRunner", "PollingRunner"]

log = logging.getLogger("pyflume.agent")

_SINK_BACKOFF_STEP = 1.0
_SINK_BACKOFF_MAX = 5.0
_SINK_ERROR_SLEEP = 5.0
_IDLE_POLL = 0.05  # while backing off on an empty channel, look this often for new events


class _Runner:
    """A thread that calls ``step()`` until stopped; sleeps are cut short by ``stop()``."""

    def __init__(self, name: str):
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "IDLE"

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.state = "START"
        self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        if not alive:
            self.state = "STOP"
        return not alive

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        raise NotImplementedError


class SinkRunner(_Runner):
    """Calls the group's processor in a loop. BACKOFF sleeps min(k s, 5 s) (k = consecutive backoffs) but wakes
    early when the channel has events again; an exception sleeps 5 s, as in Flume."""

    def __init__(self, processor: SinkProcessor):
        super().__init__(f"SinkRunner-{processor.name}")
        self.processor = processor
        self.channels = [s.channel for s in processor.sinks if s.channel is not None]

    def _has_events(self) -> bool:
        return any(c.size() > 0 for c in self.channels)

    def _sleep(self, seconds: float, wake_on_events: bool) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if wake_on_events and self._has_events():
                return
            self._stop.wait(min(left, _IDLE_POLL))

    def _run(self) -> None:
        backoffs = 0
        proc = self.processor
        while not self._stop.is_set():
            try:
                status = proc.process()
            except Exception as exc:
                _rate_limited(log, f"Unable to deliver event from sink group {proc.name}: {exc}")
                self._sleep(_SINK_ERROR_SLEEP, wake_on_events=False)
                continue
            if status is Status.BACKOFF:
                backoffs += 1
                self._sleep(min(backoffs * _SINK_BACKOFF_STEP, _SINK_BACKOFF_MAX), wake_on_events=True)
            else:
                backoffs = 0


class PollingRunner(_Runner):
    """Calls a pollable source's ``process()`` in a loop with its backoffSleepIncrement / maxBackoffSleep."""

    def __init__(self, source: PollableSource):
        super().__init__(f"PollableSourceRunner-{source.name}")
        self.source = source

    def _run(self) -> None:
        src = self.source
        backoffs = 0
        step = src.backoff_increment_ms() / 1000.0
        cap = src.max_backoff_ms() / 1000.0
        # A source may offer ``wakeup`` (a threading.Event it sets when input arrives, e.g. from filesystem
        # notifications): the backoff sleep then ends as soon as there is something to read.
        wake: threading.Event | None = getattr(src, "wakeup", None)
        while not self._stop.is_set():
            try:
                status = src.process()
            except Exception as exc:
                _rate_limited(log, f"Source {src.name} failed to process: {exc}")
                status = Status.BACKOFF
            if status is Status.BACKOFF:
                backoffs += 1
                delay = min(backoffs * step, cap)
                if wake is None:
                    self._stop.wait(delay)
                elif wake.wait(delay):
                    wake.clear()
                    backoffs = 0
            else:
                backoffs = 0

    def signal_stop(self) -> None:
        super().signal_stop()
        wake = getattr(self.source, "wakeup", None)
        if wake is not None:
            wake.set()


class Agent:
    """A running agent: starts a topology, supervises it, stops it in order, and swaps in a reloaded one."""

    def __init__(self, topo: Topology, *, drain_seconds: float = 5.0):
        self.topo = topo
        self.drain_seconds = drain_seconds
        self.sink_runners: dict[str, SinkRunner] = {}
        self.source_runners: dict[str, PollingRunner] = {}
        self.states: dict[str, str] = {}
        self._pending: dict[str, tuple[Callable[[], None], float, float]] = {}  # name -> (start fn, retry at, delay)
        self._stopping = threading.Event()
        self._lock = threading.RLock()  # the supervisor and a reload never act on the topology at the same time
        self._supervisor: threading.Thread | None = None
        self.metrics_server: MetricsServer | None = None

    # Lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        topo = self.topo
        with self._lock:
            for ch in topo.channels.values():
                self._start_component(f"channel {ch.name}", ch.start)
            for gname, proc in topo.groups.items():
                self._start_group(gname, proc)
            for src in topo.sources.values():
                self._start_component(f"source {src.name}", lambda src=src: self._start_source(src))
        mon = topo.sysprops.get("flume.monitoring.type", "").lower()
        if mon in ("http", "prometheus"):
            port = int(topo.sysprops.get("flume.monitoring.port", "41414"))
            host = topo.sysprops.get("flume.monitoring.bind", "0.0.0.0")
            self.metrics_server = MetricsServer(self.snapshot, self.health, host, port)
            from agent.live import routes as live_routes  # agent tap and the status page (agent/live.py)

            self.metrics_server.routes.update(live_routes(self))
            self.metrics_server.start()
        elif mon:
            log.warning("flume.monitoring.type=%s is not supported; use http or prometheus", mon)
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor.start()
        log.info("Agent %s started: %d sources, %d channels, %d sinks", topo.name, len(topo.sources),
                 len(topo.channels), len(topo.sinks))

    def _start_group(self, gname: str, proc: SinkProcessor) -> None:
        runner = SinkRunner(proc)
        self.sink_runners[gname] = runner

        def start_group() -> None:
            proc.start()
            for s in proc.sinks:
                s.counter.started()
            runner.start()

        self._start_component(f"sink group {gname}", start_group)

    def _start_source(self, src: Source) -> None:
        src.start()
        src.counter.started()
        if isinstance(src, PollableSource):
            runner = PollingRunner(src)
            self.source_runners[src.name] = runner
            runner.start()

    def _start_component(self, label: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:
            log.error("Could not start %s: %s; retrying in 1 s", label, exc)
            self.states[label] = "ERROR"
            self._pending[label] = (fn, time.monotonic() + 1.0, 1.0)
            return
        self.states[label] = "START"
        log.debug("Started %s", label)

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                if not self._stopping.is_set():
                    self._supervise_once()

    def _supervise_once(self) -> None:
        now = time.monotonic()
        for label, (fn, at, delay) in list(self._pending.items()):
            if at > now:
                continue
            try:
                fn()
            except Exception as exc:
                delay = min(delay * 2, 30.0)
                log.error("Could not start %s: %s; retrying in %.0f s", label, exc, delay)
                self._pending[label] = (fn, now + delay, delay)
                continue
            del self._pending[label]
            self.states[label] = "START"
            log.info("Started %s after retrying", label)
        for src in self.topo.sources.values():
            label = f"source {src.name}"
            supervised = isinstance(src, EventDrivenSource) and label not in self._pending
            if supervised and self.states.get(label) == "START":
                reason = src.failed()
                if reason:
                    log.error("Source %s failed (%s); restarting it", src.name, reason)
                    try:
                        src.stop()
                    except Exception:
                        log.exception("Source %s failed to stop cleanly", src.name)
                    self.states[label] = "ERROR"
                    self._pending[label] = (lambda src=src: self._start_source(src), now + 1.0, 1.0)

    def _stop_sources(self, sources: list[Source]) -> None:
        runners = [self.source_runners.pop(s.name) for s in sources if s.name in self.source_runners]
        for runner in runners:
            runner.signal_stop()
        for src in sources:
            label = f"source {src.name}"
            self._pending.pop(label, None)
            if self.states.get(label) == "START":
                try:
                    src.stop()
                except Exception:
                    log.exception("Source %s failed to stop cleanly", src.name)
                src.counter.stopped()
            self.states[label] = "STOP"
        for runner in runners:
            runner.join(2.0)

    def _stop_groups(self, groups: dict[str, SinkProcessor]) -> None:
        """Let each group finish its current batch, then close its sinks."""
        runners = {g: self.sink_runners.pop(g) for g in groups if g in self.sink_runners}
        for runner in runners.values():
            runner.signal_stop()
        for gname, runner in runners.items():
            if not runner.join(3.0):
                log.warning("Sink group %s did not finish its batch within 3 s", gname)
        for gname, proc in groups.items():
            label = f"sink group {gname}"
            self._pending.pop(label, None)
            if self.states.get(label) == "START":
                try:
                    proc.stop()
                except Exception:
                    log.exception("Sink group %s failed to stop cleanly", gname)
                for s in proc.sinks:
                    s.counter.stopped()
            self.states[label] = "STOP"

    def _stop_channels(self, channels: list[Channel]) -> None:
        for ch in channels:
            label = f"channel {ch.name}"
            self._pending.pop(label, None)
            try:
                ch.stop()
            except Exception:
                log.exception("Channel %s failed to stop cleanly", ch.name)
            self.states[label] = "STOP"

    def stop(self) -> None:
        """Stop sources, let sinks drain briefly and finish their batch, close sinks, stop channels."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        topo = self.topo
        log.info("Stopping agent %s", topo.name)
        with self._lock:
            self._stop_sources(list(topo.sources.values()))
            deadline = time.monotonic() + self.drain_seconds
            while time.monotonic() < deadline and any(c.size() > 0 for c in topo.channels.values()) and any(
                r.alive() for r in self.sink_runners.values()
            ):
                time.sleep(0.05)
            self._stop_groups(topo.groups)
            self._stop_channels(list(topo.channels.values()))
        if self.metrics_server is not None:
            self.metrics_server.stop()
        log.info("Agent %s stopped", topo.name)

    def reload(self, new: Topology) -> dict[str, list[str]]:
        """Swap in ``new`` (built with ``build(plan, reuse=self.topo)``): components it took over as the same
        objects keep running untouched; the rest stop (sources first, then sink groups after their current batch,
        then channels) and their replacements start (channels, then sink groups, then sources).

        A channel that is replaced keeps its events: a durable one (file channel) is stopped and its replacement
        replays its directories; the committed events left in any other are moved into the replacement of the
        same name before anything can write to it. Returns the labels of what was stopped, started and kept.
        """
        with self._lock:
            old = self.topo
            if self._stopping.is_set():
                raise RuntimeError("agent is stopping")

            def gone(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
                return {n: c for n, c in before.items() if after.get(n) is not c}

            old_sources, old_groups = gone(old.sources, new.sources), gone(old.groups, new.groups)
            old_channels = gone(old.channels, new.channels)
            new_channels, new_groups = gone(new.channels, old.channels), gone(new.groups, old.groups)
            new_sources = gone(new.sources, old.sources)
            report = {
                "stopped": [f"source {n}" for n in old_sources] + [f"sink group {n}" for n in old_groups]
                + [f"channel {n}" for n in old_channels],
                "started": [f"channel {n}" for n in new_channels] + [f"sink group {n}" for n in new_groups]
                + [f"source {n}" for n in new_sources],
                "kept": [f"channel {n}" for n in new.channels if n not in new_channels]
                + [f"sink group {n}" for n in new.groups if n not in new_groups]
                + [f"source {n}" for n in new.sources if n not in new_sources],
            }
            self._stop_sources(list(old_sources.values()))
            self._stop_groups(old_groups)
            running = {n for n in old_channels if self.states.get(f"channel {n}") == "START"}
            self._stop_channels(list(old_channels.values()))
            leftovers = {n: _drain(ch) for n, ch in old_channels.items()  # a stopped channel's takes never wait
                         if n in running and not getattr(ch, "durable", False)}
            for label in [k for k in self.states if k.split(" ")[-1] not in _names(new, k)]:
                del self.states[label]
            self.topo = new
            for name, ch in new_channels.items():
                self._start_component(f"channel {name}", ch.start)
            for gname, proc in new_groups.items():
                self._start_group(gname, proc)
            for name, events in leftovers.items():  # sinks already run, so a smaller replacement can drain
                _refill(name, events, new.channels.get(name), self.states.get(f"channel {name}") == "START",
                        self.drain_seconds * 6)
            for name, src in new_sources.items():
                self._start_component(f"source {name}", lambda src=src: self._start_source(src))
        log.info("Configuration reloaded: stopped %s; started %s; kept %s", ", ".join(report["stopped"]) or "nothing",
                 ", ".join(report["started"]) or "nothing", ", ".join(report["kept"]) or "nothing")
        return report

    # Observability ------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, str]]:
        return counters_of(self.topo.components())

    def health(self) -> dict:
        comps = dict(sorted(self.states.items()))
        status = "UP" if all(v == "START" for v in comps.values()) else "DEGRADED"
        if self._stopping.is_set():
            status = "STOPPING"
        return {"status": status, "agent": self.topo.name, "components": comps}


def _names(topo: Topology, label: str) -> dict[str, Any]:
    kind = label.rsplit(" ", 1)[0]
    return {"source": topo.sources, "channel": topo.channels, "sink group": topo.groups}.get(kind, {})


def _drain(ch: Channel) -> list[Any]:
    """Take every committed event out of a stopped channel nothing else uses any more."""
    out: list[Any] = []
    step = ch.transaction_capacity or 10_000
    while True:
        with ch.transaction() as tx:
            batch = tx.take_batch(step)
            tx.commit()
        if not batch:
            return out
        out.extend(batch)


def _refill(name: str, events: list[Any], ch: Channel | None, started: bool, patience: float) -> None:
    if not events:
        return
    if ch is None or not started:
        why = "no channel of that name remains" if ch is None else "its replacement did not start"
        log.error("Channel %s: %d queued events are lost on reload: %s", name, len(events), why)
        return
    step = ch.transaction_capacity or 10_000
    moved = 0
    deadline = time.monotonic() + patience
    while moved < len(events):
        chunk = events[moved:moved + step]
        try:
            with ch.transaction() as tx:
                tx.put_batch(chunk)
                tx.commit()
        except Exception as exc:  # full: the sinks are running, so wait for room a while
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            log.error("Channel %s: %d of %d queued events could not move into its replacement and are lost: %s",
                      name, len(events) - moved, len(events), exc)
            return
        moved += len(chunk)
    log.info("Channel %s: moved %d queued events into its replacement", name, moved)
