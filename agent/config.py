"""From properties files to a validated, built topology — with every problem reported at once.

Phases (``agent --check`` prints one result per phase):

1. **parse**: Java ``.properties`` files into keys with file and line (:mod:`agent.properties`); values trimmed,
   empty values dropped, ``${env:X}`` / ``${sys:X}`` / ``${KEY}`` substituted, config filters applied.
2. **components**: Flume's grammar (``<agent>.sources|channels|sinks|sinkgroups``), each component's ``type``
   resolved through the registry and its properties checked against its spec, then the component built (no
   side effects: building opens nothing).
3. **graph**: sources' channels, sinks' channel, sink groups, batch sizes against transactionCapacity, unused
   channels.

Unlike Flume, a bad component is never silently dropped while the rest runs: every error is reported with
``FILE:LINE: component: property: message`` and the agent refuses to start.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import credstore, kerberos, registry, tls
from agent.core import Channel, ChannelProcessor, ChannelSelector, Interceptor, Sink, SinkProcessor, Source
from agent.keystores import StoreError
from agent.properties import Entry, PropertiesError, load_properties
from agent.spec import ConfigError, Problem, Raw, Spec

__all__ = ["ConfigFile", "AgentPlan", "Topology", "load", "plan", "build", "check"]

_LISTS = ("sources", "channels", "sinks", "sinkgroups", "configfilters")
_KIND = {"sources": "source", "channels": "channel", "sinks": "sink", "sinkgroups": "sinkgroup",
         "configfilters": "configfilter"}


@dataclass
class ConfigFile:
    """All keys of the loaded files (later files override earlier ones), with where each was set."""

    keys: dict[str, Raw]
    paths: list[str]
    problems: list[Problem] = field(default_factory=list)

    def agents(self) -> list[str]:
        names: list[str] = []
        for key in self.keys:
            agent, dot, rest = key.partition(".")
            if dot and rest in _LISTS and agent not in names:
                names.append(agent)
        return names


_SUBST = re.compile(r"\$(\$?)\{([^}]*)\}")
_FILTER_REF = re.compile(r"\$\{(\w+)\[(?:'([-\w]+)'|\"([-\w]+)\"|([-\w]+))\]\}")


def load(paths: Iterable[str | os.PathLike], sysprops: Mapping[str, str] | None = None,
         environ: Mapping[str, str] | None = None) -> ConfigFile:
    """Phase 1: read and merge the files, trim values, drop empty ones, substitute ``${...}``."""
    sysprops = dict(sysprops or {})
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    keys: dict[str, Raw] = {}
    path_list = [str(p) for p in paths]
    for path in path_list:
        try:
            entries: list[Entry] = load_properties(path)
        except FileNotFoundError:
            problems.append(Problem(path, 0, "", None, "configuration file not found"))
            continue
        except IsADirectoryError:
            problems.append(Problem(path, 0, "", None, "is a directory, not a configuration file"))
            continue
        except PropertiesError as exc:
            problems.append(Problem(path, getattr(exc, "line", 0), "", None, str(exc)))
            continue
        except OSError as exc:
            problems.append(Problem(path, 0, "", None, f"cannot read: {exc.strerror or exc}"))
            continue
        for e in entries:
            key = e.key.strip()
            value = e.value.strip()
            if not key:
                continue
            if not value:
                # Flume drops keys with empty values (PROPERTY_VALUE_NULL): `replaceString =` acts as if absent.
                keys.pop(key, None)
                continue
            keys[key] = Raw(value, e.line, e.path)
    legacy_env = sysprops.get("propertiesImplementation", "").endswith("EnvVarResolverProperties")
    top = {k: r.value for k, r in keys.items()}

    def substitute(raw: Raw) -> Raw:
        if "${" not in raw.value:
            return raw

        def repl(m: re.Match[str]) -> str:
            if m.group(1):  # $${x} is the literal ${x}
                return "${" + m.group(2) + "}"
            expr = m.group(2)
            name, _, default = expr.partition(":-")
            if name.startswith("env:"):
                v = environ.get(name[4:])
            elif name.startswith("sys:"):
                v = sysprops.get(name[4:])
            elif re.fullmatch(r"\w+\[.*\]", name):
                return m.group(0)  # a config filter reference, resolved later
            else:
                v = top.get(name)
                if v is None and legacy_env:
                    v = environ.get(name)
            if v is None:
                if _ == ":-":
                    return default
                problems.append(Problem(raw.path, raw.line, "", None,
                                        f"'${{{expr}}}' is not set; it stays as written (use ${{env:{name}}} for an "
                                        f"environment variable or ${{sys:{name}}} for a -D property)", "warning"))
                return m.group(0)
            return v

        return Raw(_SUBST.sub(repl, raw.value), raw.line, raw.path)

    keys = {k: substitute(r) for k, r in keys.items()}
    return ConfigFile(keys, path_list, problems)


@dataclass
class ComponentPlan:
    """One declared component: its kind, name, type and raw properties (before building)."""

    kind: str  # source, channel, sink, sinkgroup
    name: str
    agent: str
    decl: Raw  # where it was declared (the list line), or its first key
    props: dict[str, Raw]

    @property
    def label(self) -> str:
        t = self.props.get("type")
        suffix = f" ({t.value})" if t else ""
        return f"{self.agent}.{self.kind}s.{self.name}{suffix}"


@dataclass
class AgentPlan:
    name: str
    sources: dict[str, ComponentPlan]
    channels: dict[str, ComponentPlan]
    sinks: dict[str, ComponentPlan]
    sinkgroups: dict[str, ComponentPlan]
    sysprops: dict[str, str]
    problems: list[Problem]


def _listed(cf: ConfigFile, agent: str, problems: list[Problem]) -> tuple[dict[str, list[str]],
                                                                         dict[tuple[str, str], Raw]]:
    """The component names each ``<agent>.sources`` (channels, sinks, sinkgroups …) line lists, once each, and
    the line that declared each of them."""
    lists: dict[str, list[str]] = {}
    decls: dict[tuple[str, str], Raw] = {}
    for lst in _LISTS:
        raw = cf.keys.get(f"{agent}.{lst}")
        names = raw.value.split() if raw else []
        seen: list[str] = []
        for n in names:
            if "." in n:
                problems.append(Problem(raw.path, raw.line, f"{agent}.{lst}", None,  # type: ignore[union-attr]
                                        f"component name '{n}' contains a dot; Flume component names cannot"))
            if n not in seen:
                seen.append(n)
                decls[(lst, n)] = raw  # type: ignore[assignment]
        lists[lst] = seen
    return lists, decls


def plan(cf: ConfigFile, agent: str, sysprops: Mapping[str, str] | None = None) -> AgentPlan:
    """Phase 2a: Flume's grammar for one agent; unknown keys are warned about, never silently lost."""
    problems = list(cf.problems)
    path0 = cf.paths[0] if cf.paths else ""
    defined = cf.agents()
    if agent not in defined:
        listed = ", ".join(defined) if defined else "none (no '<agent>.sources', '.channels' or '.sinks' keys)"
        problems.append(Problem(path0, 0, "", None, f"agent '{agent}' is not defined in this file; "
                                                    f"agents defined: {listed}"))
    lists, decls = _listed(cf, agent, problems)
    comps: dict[str, dict[str, ComponentPlan]] = {lst: {} for lst in _LISTS}
    for lst in _LISTS:
        for n in lists[lst]:
            comps[lst][n] = ComponentPlan(_KIND[lst], n, agent, decls[(lst, n)], {})
    prefix = agent + "."
    for key, raw in cf.keys.items():
        if "." not in key:
            problems.append(Problem(raw.path, raw.line, "", None,
                                    f"key '{key}' has no agent prefix (expected <agent>.<...>); ignored", "warning"))
            continue
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if rest in _LISTS:
            continue
        lst, dot, tail = rest.partition(".")
        cname, dot2, prop = tail.partition(".")
        if lst not in _LISTS or not dot or not dot2 or not prop:
            near = f"; expected {agent}.<sources|channels|sinks|sinkgroups>.<name>.<property>"
            problems.append(Problem(raw.path, raw.line, "", None, f"invalid property '{key}'{near}; ignored",
                                    "warning"))
            continue
        comp = comps[lst].get(cname)
        if comp is None:
            listed = " ".join(lists[lst]) or "(empty)"
            problems.append(Problem(raw.path, raw.line, f"{agent}.{lst}.{cname}", None,
                                    f"'{cname}' is not listed in {agent}.{lst} = {listed}; its properties are "
                                    f"ignored", "warning"))
            continue
        comp.props[prop] = raw
    if agent in defined and not lists["channels"]:
        problems.append(Problem(path0, 0, agent, None, f"no channels: '{agent}.channels' must list at least one"))
    if agent in defined and not lists["sources"] and not lists["sinks"]:
        problems.append(Problem(path0, 0, agent, None, f"no sources and no sinks: '{agent}.sources' or "
                                                        f"'{agent}.sinks' must list at least one"))
    for lst in ("sources", "channels", "sinks", "sinkgroups"):
        for comp in comps[lst].values():
            # Problems about the component as a whole point at its 'type' line (where its block starts).
            comp.decl = comp.props.get("type") or comp.props.get("sinks") or comp.decl
            if not comp.props:
                problems.append(Problem(comp.decl.path, comp.decl.line, comp.label, None,
                                        "is listed but has no properties (at least 'type' is needed)"))
    ap = AgentPlan(agent, comps["sources"], comps["channels"], comps["sinks"], comps["sinkgroups"],
                   dict(sysprops or {}), problems)
    _apply_config_filters(ap, comps["configfilters"], problems)
    return ap


def _apply_config_filters(ap: AgentPlan, filters: dict[str, ComponentPlan], problems: list[Problem]) -> None:
    """Flume's config filters: ``${f1['key']}`` in a component value, resolved by filter ``f1``."""
    resolvers: dict[str, Any] = {}
    for name, fp in filters.items():
        t = fp.props.get("type")
        kind = t.value.lower() if t else ""
        if kind == "env":
            resolvers[name] = lambda key: os.environ.get(key)
        elif kind == "external":
            cmd = fp.props.get("command")
            if cmd is None:
                problems.append(Problem(fp.decl.path, fp.decl.line, fp.label, "command",
                                        "required property is missing"))
                continue
            charset = fp.props.get("charset")
            argv = cmd.value.split()
            enc = charset.value if charset else "utf-8"

            def run(key: str, argv: list[str] = argv, enc: str = enc) -> str | None:
                try:
                    out = subprocess.run(argv + [key], capture_output=True, timeout=30, check=False)
                except (OSError, subprocess.TimeoutExpired):
                    return None
                if out.returncode != 0:
                    return None
                text = out.stdout.decode(enc, "replace").splitlines()
                return text[0] if text else ""

            resolvers[name] = run
        elif kind in ("hadoop", credstore.FILTER_CLASS.lower()):
            resolver = _hadoop_filter(fp, problems)
            if resolver is not None:
                resolvers[name] = resolver
        else:
            where = t or fp.decl
            problems.append(Problem(where.path, where.line, fp.label, "type",
                                    f"config filter type '{t.value if t else ''}' is not supported; expected env, "
                                    "external or hadoop"))
    if not resolvers:
        return
    for group in (ap.sources, ap.channels, ap.sinks, ap.sinkgroups):
        for comp in group.values():
            for k, raw in list(comp.props.items()):
                if "${" not in raw.value:
                    continue

                def repl(m: re.Match[str], raw: Raw = raw, label: str = comp.label, k: str = k) -> str:
                    fn = resolvers.get(m.group(1))
                    if fn is None:
                        return m.group(0)
                    try:
                        v = fn(m.group(2) or m.group(3) or m.group(4))
                    except (LookupError, ValueError) as exc:  # a store that has no such key says so
                        problems.append(Problem(raw.path, raw.line, label, k, f"{m.group(0)}: {exc.args[0]}"))
                        return m.group(0)
                    return m.group(0) if v is None else v

                comp.props[k] = Raw(_FILTER_REF.sub(repl, raw.value), raw.line, raw.path)


def _hadoop_filter(fp: ComponentPlan, problems: list[Problem]) -> Any:
    """Flume's ``hadoop`` filter (agent/credstore.py): its stores opened now, so a wrong password, a corrupt or
    missing store is reported at --check on the filter's own line."""
    path = fp.props.get(credstore.PROVIDER_PATH)
    if path is None:
        problems.append(Problem(fp.decl.path, fp.decl.line, fp.label, credstore.PROVIDER_PATH,
                                "required property is missing (jceks://file/<path to the credential store>)"))
        return None
    password_file = fp.props.get(credstore.PASSWORD_FILE)
    try:
        stores = credstore.open_credential_stores(path.value, password_file.value if password_file else None,
                                                  Path(path.path).parent if path.path else Path.cwd())
    except StoreError as exc:
        prop = getattr(exc, "prop", credstore.PROVIDER_PATH)
        where = password_file if prop == credstore.PASSWORD_FILE and password_file else path
        problems.append(Problem(where.path, where.line, fp.label, prop, str(exc),
                                "warning" if isinstance(exc, credstore.MissingStore) else "error"))
        return None
    return stores.get


@dataclass
class Topology:
    """The built agent: components wired together, nothing started."""

    name: str
    channels: dict[str, Channel]
    sources: dict[str, Source]
    sinks: dict[str, Sink]
    groups: dict[str, SinkProcessor]  # every sink runs under exactly one processor (solo sinks get a default one)
    unused_channels: list[str]
    sysprops: dict[str, str]
    plan: AgentPlan | None = None  # what it was built from (hot reload compares the next plan with it)

    def components(self) -> list[Any]:
        return [*self.channels.values(), *self.sources.values(), *self.sinks.values()]


_SOURCE_COMMON = ("type", "channels")
_SOURCE_COMMON_PREFIX = ("selector.", "interceptors.")
_SINK_COMMON = ("type", "channel")


def _type_of(comp: ComponentPlan, family: str, problems: list[Problem]) -> type | None:
    t = comp.props.get("type")
    if t is None:
        if comp.props:
            problems.append(Problem(comp.decl.path, comp.decl.line, comp.label, "type", "required property is missing"))
        return None
    try:
        return registry.resolve(family, t.value)
    except ConfigError as exc:
        problems.append(Problem(t.path, t.line, comp.label, "type", exc.message))
        return None


def _instantiate(cls: type, name: str, label: str, props: dict[str, Raw], decl: Raw, problems: list[Problem],
                 ignore: Iterable[str] = (), ignore_prefixes: Iterable[str] = ()) -> Any | None:
    spec: Spec = cls.spec
    conf = spec.bind(props, problems=problems, component=label, decl=decl, ignore=ignore,
                     ignore_prefixes=ignore_prefixes)
    try:
        obj = cls(name, conf)
    except ConfigError as exc:
        conf.error(exc.message, exc.prop)
        return None
    except Exception as exc:  # a component's own bug: report it like a config problem, never a traceback
        conf.error(f"could not be built: {type(exc).__name__}: {exc}")
        return None
    return obj


def _same(old: dict[str, ComponentPlan], new: ComponentPlan) -> bool:
    """Whether a component's configuration is unchanged (values only: moving a line does not count)."""
    before = old.get(new.name)
    return before is not None and {k: r.value for k, r in before.props.items()} == {
        k: r.value for k, r in new.props.items()}


def build(ap: AgentPlan, reuse: Topology | None = None) -> tuple[Topology | None, list[Problem]]:
    """Phase 2b and 3: build each component and wire the graph. Returns (topology or None, problems).

    With ``reuse`` (the running topology, on a hot reload) every component whose configuration is unchanged, and
    whose channels are all reused, is taken over as the same object instead of being built again: the running
    agent then restarts only what differs (see ``Agent.reload``).
    """
    tls.use_system_properties(ap.sysprops)  # Flume's global SSL settings (-Djavax.net.ssl.* …) for TLS components
    kerberos.use_system_properties(ap.sysprops)  # -Djava.security.krb5.conf
    b = _Builder(ap, reuse)
    b.channels()
    b.sources()
    b.sinks()
    b.groups()
    b.solo_groups()
    unused = b.unused_channels()
    kerberos.check_one_principal([*b.built_channels.values(), *b.built_sources.values(), *b.built_sinks.values()],
                                 ap.problems)
    topo = Topology(ap.name, {k: v for k, v in b.built_channels.items() if k not in unused}, b.built_sources,
                    b.built_sinks, b.built_groups, unused, ap.sysprops, ap)
    if any(p.severity == "error" for p in ap.problems):
        return None, ap.problems
    return topo, ap.problems


class _Builder:
    """One build of an agent plan: each family in turn, reusing unchanged components of ``reuse``."""

    def __init__(self, ap: AgentPlan, reuse: Topology | None):
        self.ap = ap
        self.problems = ap.problems
        self.reuse = reuse
        self.old = reuse.plan if reuse is not None else None
        self.built_channels: dict[str, Channel] = {}
        self.built_sources: dict[str, Source] = {}
        self.built_sinks: dict[str, Sink] = {}
        self.built_groups: dict[str, SinkProcessor] = {}
        self.used: set[str] = set()  # channels some source or sink names
        self.owner: dict[str, str] = {}  # sink -> its group

    def _reusable(self, family: str, cp: ComponentPlan) -> Any | None:
        """The running component of that name when its properties are unchanged (hot reload), else None."""
        if self.reuse is None or self.old is None:
            return None
        running = getattr(self.reuse, family).get(cp.name)
        return running if running is not None and _same(getattr(self.old, _PLAN_FIELD[family]), cp) else None

    def _undefined(self, raw: Raw, label: str, prop: str, what: str, name: str, defined: Iterable[str]) -> None:
        self.problems.append(Problem(raw.path, raw.line, label, prop, f"{what} '{name}' is not defined; "
                                     f"{self.ap.name}.{what}s lists {' '.join(defined) or 'none'}"))

    def channels(self) -> None:
        for name, cp in self.ap.channels.items():
            kept = self._reusable("channels", cp)
            if kept is not None:
                self.built_channels[name] = kept
                continue
            cls = _type_of(cp, "channel", self.problems)
            if cls is not None:
                ch = _instantiate(cls, name, cp.label, cp.props, cp.decl, self.problems, ignore=("type",))
                if ch is not None:
                    self.built_channels[name] = ch

    def _source_channels(self, cp: ComponentPlan) -> list[Channel]:
        chan_raw = cp.props.get("channels")
        out: list[Channel] = []
        if chan_raw is None:
            self._no_link(cp, "channels", "channel", "sources use 'channels' (plural, space-separated), not 'channel'",
                          "the channels this source puts events into")
            return out
        for cname in chan_raw.value.split():
            if cname in self.built_channels:
                if self.built_channels[cname] not in out:
                    out.append(self.built_channels[cname])
                self.used.add(cname)
            elif cname in self.ap.channels:
                self.used.add(cname)  # the channel itself failed to build; its own error says why
            else:
                self._undefined(chan_raw, cp.label, "channels", "channel", cname, self.ap.channels)
        return out

    def _no_link(self, cp: ComponentPlan, prop: str, mistaken: str, mistake: str, meaning: str) -> None:
        """``prop`` (a source's channels, a sink's channel) is missing: say so, or that ``mistaken`` was written."""
        if mistaken in cp.props:
            r = cp.props[mistaken]
            self.problems.append(Problem(r.path, r.line, cp.label, mistaken, mistake))
        elif cp.props:
            self.problems.append(Problem(cp.decl.path, cp.decl.line, cp.label, prop,
                                         f"required property is missing ({meaning})"))

    def _channels_reused(self, names: Iterable[str]) -> bool:
        assert self.reuse is not None
        return all(c in self.built_channels and self.built_channels[c] is self.reuse.channels.get(c) for c in names)

    def sources(self) -> None:
        for name, cp in self.ap.sources.items():
            cls = _type_of(cp, "source", self.problems)
            src_channels = self._source_channels(cp)
            kept = self._reusable("sources", cp)
            chan_raw = cp.props.get("channels")
            if kept is not None and chan_raw is not None and self._channels_reused(chan_raw.value.split()):
                self.built_sources[name] = kept
                continue
            if cls is None:
                continue
            src = _instantiate(cls, name, cp.label, cp.props, cp.decl, self.problems, ignore=_SOURCE_COMMON,
                               ignore_prefixes=_SOURCE_COMMON_PREFIX + ("interceptors",))
            if src is None:
                continue
            selector = _build_selector(cp, src_channels, self.problems)
            interceptors = _build_interceptors(cp, self.problems)
            if selector is not None and interceptors is not None:
                src.channel_processor = ChannelProcessor(selector, interceptors)
            _check_batch(cp, src, src_channels, self.problems)
            self.built_sources[name] = src

    def _sink_channel(self, cp: ComponentPlan) -> Channel | None:
        chan_raw = cp.props.get("channel")
        if chan_raw is None:
            self._no_link(cp, "channel", "channels", "sinks use 'channel' (singular), not 'channels'",
                          "the channel this sink takes events from")
            return None
        if chan_raw.value in self.ap.channels:
            self.used.add(chan_raw.value)
        else:
            self._undefined(chan_raw, cp.label, "channel", "channel", chan_raw.value, self.ap.channels)
        return self.built_channels.get(chan_raw.value)

    def sinks(self) -> None:
        for name, cp in self.ap.sinks.items():
            cls = _type_of(cp, "sink", self.problems)
            channel = self._sink_channel(cp)
            kept = self._reusable("sinks", cp)
            if kept is not None and channel is not None and self._channels_reused([cp.props["channel"].value]):
                self.built_sinks[name] = kept
                continue
            if cls is None:
                continue
            sink = _instantiate(cls, name, cp.label, cp.props, cp.decl, self.problems, ignore=_SINK_COMMON)
            if sink is None:
                continue
            sink.channel = channel
            if channel is not None:
                _check_batch(cp, sink, [channel], self.problems)
            self.built_sinks[name] = sink

    def _members(self, gname: str, gp: ComponentPlan, sraw: Raw) -> list[Sink]:
        members: list[Sink] = []
        for sname in sraw.value.split():
            if sname in self.owner:
                self.problems.append(Problem(sraw.path, sraw.line, gp.label, "sinks", f"sink '{sname}' is already "
                                             f"in sink group '{self.owner[sname]}'; a sink may belong to one group "
                                             "only"))
                continue
            if sname not in self.ap.sinks:
                self._undefined(sraw, gp.label, "sinks", "sink", sname, self.ap.sinks)
                continue
            self.owner[sname] = gname
            if sname in self.built_sinks:
                members.append(self.built_sinks[sname])
        return members

    def groups(self) -> None:
        for gname, gp in self.ap.sinkgroups.items():
            sraw = gp.props.get("sinks")
            if sraw is None:
                if gp.props:
                    self.problems.append(Problem(gp.decl.path, gp.decl.line, gp.label, "sinks",
                                                 "required property is missing (the sinks of this group)"))
                continue
            members = self._members(gname, gp, sraw)
            kept = self._reusable("groups", gp)
            if kept is not None and [s.name for s in kept.sinks] == [s.name for s in members] and all(
                    s is self.reuse.sinks.get(s.name) for s in members):  # type: ignore[union-attr]
                self.built_groups[gname] = kept
                continue
            proc = self._processor(gname, gp)
            if proc is not None:
                proc.set_sinks(members)
                self.built_groups[gname] = proc

    def _processor(self, gname: str, gp: ComponentPlan) -> SinkProcessor | None:
        ptype = gp.props.get("processor.type")
        if ptype is None:
            self.problems.append(Problem(gp.decl.path, gp.decl.line, gp.label, "processor.type",
                                         "required property is missing; expected default, failover or load_balance "
                                         "(Flume 1.11 refuses to run a group without it)"))
            return None
        try:
            pcls = registry.resolve("processor", ptype.value)
        except ConfigError as exc:
            self.problems.append(Problem(ptype.path, ptype.line, gp.label, "processor.type", exc.message))
            return None
        pprops = {k[len("processor."):]: r for k, r in gp.props.items() if k.startswith("processor.")}
        for k, r in gp.props.items():
            if not k.startswith("processor.") and k != "sinks":
                self.problems.append(Problem(r.path, r.line, gp.label, None, f"unknown property '{k}'; sink groups "
                                             "take 'sinks' and 'processor.*'", "warning"))
        label = f"{self.ap.name}.sinkgroups.{gname} ({ptype.value})"
        return _instantiate(pcls, gname, label, pprops, gp.decl, self.problems, ignore=("type",))

    def solo_groups(self) -> None:
        """Every sink outside a group runs under a default processor of its own (kept across reloads)."""
        from sinks.processors import DefaultSinkProcessor

        for sname, sink in self.built_sinks.items():
            if sname in self.owner:
                continue
            prev = self.reuse.groups.get(sname) if self.reuse is not None else None
            if isinstance(prev, DefaultSinkProcessor) and prev.sinks == [sink]:
                self.built_groups[sname] = prev
                continue
            proc = DefaultSinkProcessor(sname, DefaultSinkProcessor.spec.bind({}, problems=self.problems,
                                                                              component=sname))
            proc.set_sinks([sink])
            self.built_groups[sname] = proc

    def unused_channels(self) -> list[str]:
        unused = [c for c in self.ap.channels if c not in self.used]
        for c in unused:
            cp = self.ap.channels[c]
            self.problems.append(Problem(cp.decl.path, cp.decl.line, cp.label, None,
                                         "no source or sink uses this channel; it will not be started", "warning"))
        return unused


_PLAN_FIELD = {"channels": "channels", "sources": "sources", "sinks": "sinks", "groups": "sinkgroups"}


def _build_selector(cp: ComponentPlan, channels: list[Channel], problems: list[Problem]) -> ChannelSelector | None:
    sel_props = {k[len("selector."):]: r for k, r in cp.props.items() if k.startswith("selector.")}
    traw = sel_props.get("type")
    try:
        cls = registry.resolve("selector", traw.value if traw else "replicating")
    except ConfigError as exc:
        problems.append(Problem(traw.path, traw.line, cp.label, "selector.type", exc.message))  # type: ignore[union-attr]
        return None
    label = cp.label
    conf = cls.spec.bind(sel_props, problems=problems, component=label, decl=cp.decl, ignore=("type",),
                         key_prefix="selector.")
    try:
        sel = cls(cp.name, conf)
        sel.configure_channels(channels)
    except ConfigError as exc:
        conf.error(exc.message, exc.prop)
        return None
    return sel


def _build_interceptors(cp: ComponentPlan, problems: list[Problem]) -> list[Interceptor] | None:
    lst = cp.props.get("interceptors")
    if lst is None:
        return []
    out: list[Interceptor] = []
    ok = True
    for iname in lst.value.split():
        pre = f"interceptors.{iname}."
        props = {k[len(pre):]: r for k, r in cp.props.items() if k.startswith(pre)}
        traw = props.get("type")
        if traw is None:
            problems.append(Problem(lst.path, lst.line, cp.label, pre + "type",
                                    f"interceptor '{iname}' has no type; expected one of "
                                    f"{', '.join(registry.aliases('interceptor'))} or a class name"))
            ok = False
            continue
        try:
            cls = registry.resolve("interceptor", traw.value)
        except ConfigError as exc:
            problems.append(Problem(traw.path, traw.line, cp.label, pre + "type", exc.message))
            ok = False
            continue
        conf = cls.spec.bind(props, problems=problems, component=cp.label, decl=traw, ignore=("type",),
                             key_prefix=pre)
        try:
            out.append(cls(iname, conf))
        except ConfigError as exc:
            conf.error(exc.message, exc.prop)
            ok = False
    listed = set(lst.value.split())
    for k, r in cp.props.items():
        if k.startswith("interceptors.") and k.split(".")[1] not in listed:
            problems.append(Problem(r.path, r.line, cp.label, k, f"interceptor '{k.split('.')[1]}' is not in "
                                                                  f"'interceptors = {lst.value}'; ignored", "warning"))
    return out if ok else None


def _check_batch(cp: ComponentPlan, comp: Source | Sink, channels: list[Channel], problems: list[Problem]) -> None:
    size = comp.batch_size()
    prop = comp.batch_size_prop
    if not size or not prop:
        return
    for ch in channels:
        cap = ch.transaction_capacity
        if cap and size > cap:
            r = cp.props.get(prop) or cp.decl
            problems.append(Problem(r.path, r.line, cp.label, prop,
                                    f"{size} is larger than the transactionCapacity ({cap}) of channel "
                                    f"'{ch.name}'; lower {prop} or raise the channel's transactionCapacity"))


def check(paths: list[str], agent: str, sysprops: Mapping[str, str] | None = None,
          reuse: Topology | None = None) -> tuple[Topology | None, list[Problem]]:
    """Run all phases; the topology is returned only when there is no error."""
    cf = load(paths, sysprops)
    ap = plan(cf, agent, sysprops)
    if any(p.severity == "error" for p in ap.problems) and agent not in cf.agents():
        return None, ap.problems
    return build(ap, reuse)
