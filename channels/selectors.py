"""Channel selectors: which of a source's channels get each event (``<agent>.sources.<s>.selector.*``)."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Iterable

from agent.core import Batch, Channel, ChannelSelector, Event, _rate_limited, as_events
from agent.spec import Conf, Prop, Spec

__all__ = ["ReplicatingChannelSelector", "MultiplexingChannelSelector", "LoadBalancingChannelSelector"]

log = logging.getLogger("pyflume.selector")

Route = list[tuple[Channel, list[Event]]]


def _lookup(names: Iterable[str], by_name: dict[str, Channel], conf: Conf, prop: str) -> list[Channel]:
    out: list[Channel] = []
    for n in names:
        ch = by_name.get(n)
        if ch is None:
            conf.error(
                f"channel '{n}' is not one of this source's channels ({', '.join(by_name) or 'none'})", prop
            )
        elif ch not in out:
            out.append(ch)
    return out


class ReplicatingChannelSelector(ChannelSelector):
    """Every event goes to every channel of the source; channels listed in ``optional`` may fail quietly."""

    alias = "replicating"
    flume_class = "org.apache.flume.channel.ReplicatingChannelSelector"
    spec = Spec(
        Prop("optional", "list", [], "Channels whose failures are logged and ignored instead of failing the batch."),
    )

    def configure_channels(self, channels: list[Channel]) -> None:
        super().configure_channels(channels)
        by_name = {c.name: c for c in channels}
        optional = _lookup(self.config.optional, by_name, self.conf, "optional")
        self.required = [c for c in channels if c not in optional]
        self.optional = optional

    accepts_batch = True  # every channel gets the batch as it is

    def route(self, events: list[Event]) -> tuple[Route, Route]:
        return [(c, events) for c in self.required], [(c, events) for c in self.optional]


class MultiplexingChannelSelector(ChannelSelector):
    """Routes each event by the value of one header: ``mapping.<value>`` lists its channels, ``default`` the rest."""

    alias = "multiplexing"
    flume_class = "org.apache.flume.channel.MultiplexingChannelSelector"
    spec = Spec(
        Prop("header", "str", "flume.selector.header", "The header whose value picks the channels."),
        Prop("default", "list", [], "Channels for events whose header is missing, blank or unmapped. Without a "
             "default such events are dropped (counted and logged)."),
        Prop("mapping.", prefix=True, doc="mapping.<value> = channels required for events with that header value."),
        Prop("optional.", prefix=True, doc="optional.<value> = channels tried, failures ignored, for that value."),
    )

    def configure_channels(self, channels: list[Channel]) -> None:
        super().configure_channels(channels)
        conf, cfg = self.conf, self.config
        by_name = {c.name: c for c in channels}
        self.header = cfg.header
        self.default = _lookup(cfg.default, by_name, conf, "default")
        self.mapping: dict[str, list[Channel]] = {}
        for value, names in cfg.mapping.items():
            self.mapping[value] = _lookup(names.split(), by_name, conf, "mapping." + value)
        self.optional: dict[str, list[Channel]] = {}
        for value, names in cfg.optional.items():
            self.optional[value] = _lookup(names.split(), by_name, conf, "optional." + value)
        if not self.mapping and not self.default:
            conf.warn("no mapping.<value> and no default: every event would be dropped", None)
        self.dropped = 0
        self._plans: dict[str | None, tuple[tuple[Channel, ...], tuple[Channel, ...]]] = {}

    def _plan(self, value: str | None) -> tuple[tuple[Channel, ...], tuple[Channel, ...]]:
        key = value.strip() if value is not None else None
        required = self.mapping.get(key) if key else None
        if required is None:
            required = self.default
            exclude = self.default
        else:
            exclude = required
        optional = [c for c in self.optional.get(key, []) if c not in exclude] if key else []
        plan = (tuple(required), tuple(optional))
        if len(self._plans) < 10_000:  # header values are usually few; do not let odd traffic grow this forever
            self._plans[value] = plan
        return plan

    accepts_batch = True  # a raw Batch's events share their headers: the whole batch has one route

    def route(self, events: list[Event]) -> tuple[Route, Route]:
        header = self.header
        plans = self._plans
        if type(events) is Batch:
            if events.raw:
                value = (events.shared or {}).get(header)
                required, optional = plans.get(value) or self._plan(value)
                if not required:
                    self._dropped(len(events))
                return [(c, events) for c in required], [(c, events) for c in optional]
            events = events.events()
        req: defaultdict[Channel, list[Event]] = defaultdict(list)
        opt: defaultdict[Channel, list[Event]] = defaultdict(list)
        dropped = 0
        for e in events:
            value = e.headers.get(header)
            required, optional = plans.get(value) or self._plan(value)
            if not required:
                dropped += 1
            for c in required:
                req[c].append(e)
            for c in optional:
                opt[c].append(e)
        if dropped:
            self._dropped(dropped)
        return list(req.items()), list(opt.items())

    def _dropped(self, n: int) -> None:
        self.dropped += n
        _rate_limited(log, f"selector of source {self.name}: {self.dropped} events so far matched no mapping and "
                           f"there is no selector.default; they were dropped")


class LoadBalancingChannelSelector(ChannelSelector):
    """Each event goes to exactly one of the source's channels, taken in turn (``round_robin``) or at random.

    Flume 1.10 added this selector; Flume 1.11.0's configuration check does not know its type and drops the source,
    so there it works only when built by code. pyflume accepts it from the properties file. As in Flume the choice
    is made per event, so one batch is spread over the channels, each channel's share put in one transaction of
    its own; a channel that refuses its share fails the batch (all channels are required)."""

    alias = "load_balancing"
    flume_class = "org.apache.flume.channel.LoadBalancingChannelSelector"
    spec = Spec(
        Prop("policy", "enum", "round_robin", "How the channel of each event is chosen.",
             choices={"round_robin": "the channels in their listed order, one event each, in turn",
                      "random": "a channel picked uniformly at random for each event"}),
    )

    def configure_channels(self, channels: list[Channel]) -> None:
        super().configure_channels(channels)
        self.random = self.config.policy == "random"
        self._next = 0  # round robin: the channel of the next event; only the source's thread routes
        self._rng = random.Random()

    accepts_batch = True  # round robin slices a raw Batch as it is

    def route(self, events: list[Event]) -> tuple[Route, Route]:
        channels = self.channels
        k = len(channels)
        if k == 1:
            return [(channels[0], events)], []
        if self.random:
            events = as_events(events)
            picks = self._rng.choices(range(k), k=len(events))
            shares: list[list[Event]] = [[] for _ in channels]
            for e, i in zip(events, picks, strict=True):
                shares[i].append(e)
        else:
            start = self._next
            # event j goes to channel (start + j) % k: channel i gets every k-th event from its first one
            shares = [events[(i - start) % k::k] for i in range(k)]
            self._next = (start + len(events)) % k
        return [(c, share) for c, share in zip(channels, shares, strict=True) if share], []
