"""Typed property specs: each component declares its properties once.

A component class carries ``spec = Spec(Prop(...), ...)``. The spec is the single source of the component's
validation, defaults and generated reference docs (``docs/components.md``). Property names and defaults are
exactly Flume's.

Values arrive as text from the properties file, each with the line that set it. ``Spec.bind`` turns them into a
:class:`Conf` of typed values and records every problem it finds (it never stops at the first), each tied to the
line that caused it. ``Conf.typed`` is the component's configuration as a frozen dataclass made from the spec:
one attribute per property, named from Flume's key (``hdfs.rollInterval`` → ``hdfs_roll_interval``,
``batch-size`` → ``batch_size``), and a ``dict[str, str]`` per prefix family (``kafka.producer.*`` →
``kafka_producer``). Constructors read attributes, and reload compares two configurations by value.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import keyword
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

__all__ = [
    "ConfigError",
    "Problem",
    "Raw",
    "Prop",
    "Spec",
    "Conf",
    "REQUIRED",
    "attr_name",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class ConfigError(Exception):
    """A component found its configuration unusable; ``prop`` names the property at fault, if one is."""

    def __init__(self, message: str, prop: str | None = None):
        super().__init__(message)
        self.message = message
        self.prop = prop


@dataclass(slots=True)
class Problem:
    """One configuration problem, printed as ``FILE:LINE: component: property: message``."""

    path: str
    line: int
    component: str
    prop: str | None
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        parts = [f"{self.path}:{self.line}" if self.line else self.path]
        if self.component:
            parts.append(self.component)
        if self.prop:
            parts.append(self.prop)
        parts.append(("warning: " if self.severity != "error" else "") + self.message)
        return ": ".join(parts)


@dataclass(frozen=True, slots=True)
class Raw:
    """A property's text as the file gave it (trimmed), and where."""

    value: str
    line: int
    path: str = ""


_KINDS = ("str", "int", "float", "bool", "enum", "list", "class")


@dataclass(frozen=True)
class Prop:
    """One property: Flume's exact name, its type, Flume's default, and a one-line doc.

    kind: ``str``, ``int`` (Java int or long), ``float``, ``bool`` (``true``/``false``, any case), ``enum``
    (``choices`` maps each allowed value to its doc; matched case-insensitively unless ``case=True``), ``list``
    (whitespace-separated unless ``sep`` is given), ``class`` (an alias or a class name, resolved later).
    ``prefix=True`` declares a family of open-ended keys (``kafka.producer.*``); they reach the component raw.
    ``aliases`` are older names Flume still reads; each must say why in ``doc``.
    """

    name: str
    kind: str = "str"
    default: Any = None
    doc: str = ""
    required: bool = False
    choices: Mapping[str, str] | None = None
    min: float | None = None
    max: float | None = None
    sep: str | None = None
    case: bool = False
    prefix: bool = False
    aliases: tuple[str, ...] = ()
    hidden: bool = False  # accepted and read, but kept out of the docs (e.g. Flume's undocumented deprecations)
    attr: str = ""  # the attribute of the typed config; derived from the name unless given

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown property kind {self.kind!r} for {self.name}")
        if self.kind == "enum" and not self.choices:
            raise ValueError(f"enum property {self.name} needs choices")
        if not self.attr:
            object.__setattr__(self, "attr", attr_name(self.name))

    @property
    def key_prefix(self) -> str:
        """For a prefix family, what its keys start with: the name and a dot (``kafka.producer.``), so that
        ``kafka.producerr.acks`` is not taken for one of them. An empty name takes every key."""
        return self.name if not self.name or self.name.endswith(".") else self.name + "."

    def parse(self, text: str) -> Any:
        """Turn the text of the property into its typed value; raise ValueError with a message for people."""
        kind = self.kind
        if kind in ("str", "class"):
            return text
        if kind == "int":
            try:
                value: Any = int(text, 10)
            except ValueError:
                raise ValueError(f"{text!r} is not an integer{_trailing_comment_hint(text)}") from None
            self._check_range(value, text)
            return value
        if kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a number{_trailing_comment_hint(text)}") from None
            self._check_range(value, text)
            return value
        if kind == "bool":
            low = text.lower()
            if low == "true":
                return True
            if low == "false":
                return False
            raise ValueError(f"{text!r} is not a boolean; expected true or false{_trailing_comment_hint(text)}")
        if kind == "enum":
            assert self.choices is not None
            for choice in self.choices:
                if choice == text or (not self.case and choice.lower() == text.lower()):
                    return choice
            raise ValueError(f"{text!r} is not valid; expected one of {', '.join(self.choices)}")
        if kind == "list":
            if self.sep is None:
                return text.split()
            return [part.strip() for part in text.split(self.sep) if part.strip()]
        raise AssertionError(kind)

    def _check_range(self, value: float, text: str) -> None:
        if self.min is not None and value < self.min:
            raise ValueError(f"{text} is too small; the minimum is {_num(self.min)}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{text} is too large; the maximum is {_num(self.max)}")

    def default_text(self) -> str:
        """The default as the reference docs show it."""
        if self.required:
            return "(required)"
        if self.default is None:
            return "–"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, list):
            return " ".join(self.default) or '""'
        if self.default == "":
            return '""'
        return str(self.default)


@functools.cache
def attr_name(prop_name: str) -> str:
    """The Python attribute for a Flume property name: ``hdfs.rollInterval`` → ``hdfs_roll_interval``,
    ``keystore-type`` → ``keystore_type``, ``maxIOWorkers`` → ``max_io_workers``, ``serializer.`` → ``serializer``."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", prop_name.strip("."))
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower() or "options"
    if s[0].isdigit() or keyword.iskeyword(s):
        s += "_"
    return s


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _trailing_comment_hint(text: str) -> str:
    if "#" in text:
        return " (a '#' after a value is part of the value in Java properties; put comments on their own line)"
    return ""


class Spec:
    """The ordered properties of one component type."""

    def __init__(self, *props: Prop, extends: "Spec | None" = None):
        merged: dict[str, Prop] = dict(extends._props) if extends else {}
        for p in props:
            merged[p.name] = p
        plain = {p.attr for p in merged.values() if not p.prefix}
        for name, p in merged.items():  # `deserializer` and its options `deserializer.*`: deserializer_options
            if p.prefix and p.attr in plain:
                merged[name] = dataclasses.replace(p, attr=p.attr + "_options")
        self._props = merged
        self._alias = {a: p.name for p in merged.values() for a in p.aliases}
        self._prefixes = tuple(p.key_prefix for p in merged.values() if p.prefix)
        by_attr: dict[str, str] = {}
        for p in merged.values():
            if p.attr in by_attr:
                raise ValueError(f"properties {by_attr[p.attr]!r} and {p.name!r} map to the same attribute "
                                 f"{p.attr!r}; give one of them attr=...")
            by_attr[p.attr] = p.name

    @cached_property
    def config_type(self) -> type:
        """The frozen dataclass of this spec's typed values (see the module docstring)."""
        fields = [(p.attr, dict if p.prefix else Any) for p in self._props.values()]
        return dataclasses.make_dataclass("Config", fields, frozen=True, slots=True)

    def __iter__(self) -> Iterator[Prop]:
        return iter(self._props.values())

    def __contains__(self, name: str) -> bool:
        return name in self._props

    def __getitem__(self, name: str) -> Prop:
        return self._props[name]

    def names(self) -> list[str]:
        return [p.name for p in self._props.values() if not p.prefix]

    def prefix_props(self) -> list[Prop]:
        return [p for p in self._props.values() if p.prefix]

    def bind(
        self,
        raw: Mapping[str, Raw],
        *,
        problems: list[Problem],
        component: str,
        decl: Raw | None = None,
        ignore: Iterable[str] = (),
        ignore_prefixes: Iterable[str] = (),
        key_prefix: str = "",
    ) -> "Conf":
        """Validate ``raw`` against this spec; append each problem to ``problems``; return the typed values.

        ``decl`` is where the component was declared (used for missing required properties). ``ignore`` and
        ``ignore_prefixes`` are keys handled elsewhere (``type``, ``channels``, ``selector.*`` ...).
        ``key_prefix`` is prepended to names in messages (for nested specs such as ``sink.serializer.``).
        """
        ignore = set(ignore)
        ignore_prefixes = tuple(ignore_prefixes)
        values: dict[str, Any] = {}
        lines: dict[str, Raw] = {}
        path = decl.path if decl else ""
        decl_line = decl.line if decl else 0
        seen: set[str] = set()
        for key, r in raw.items():
            if key in ignore or key.startswith(ignore_prefixes):
                continue
            name = self._alias.get(key, key)
            prop = self._props.get(name)
            if prop is None or prop.prefix:
                if any(key.startswith(pfx) for pfx in self._prefixes):
                    continue
                near = difflib.get_close_matches(key, self.names(), n=1, cutoff=0.75)
                hint = f"; did you mean '{key_prefix}{near[0]}'?" if near else ""
                problems.append(
                    Problem(r.path or path, r.line, component, None,
                            f"unknown property '{key_prefix}{key}'{hint}", "warning")
                )
                continue
            if name in seen and name != key:
                # Both the current name and an older alias were given: the current one wins, as in Flume.
                continue
            seen.add(name)
            try:
                values[name] = prop.parse(r.value)
                lines[name] = r
            except ValueError as exc:
                problems.append(Problem(r.path or path, r.line, component, key_prefix + key, str(exc)))
        for prop in self._props.values():
            if prop.prefix or prop.name in values:
                continue
            if prop.required:
                problems.append(
                    Problem(path, decl_line, component, key_prefix + prop.name,
                            f"required property is missing{_doc_hint(prop)}")
                )
            values[prop.name] = list(prop.default) if isinstance(prop.default, list) else prop.default
        prefixed = {k: r for k, r in raw.items() if k not in ignore and any(k.startswith(p) for p in self._prefixes)}
        return Conf(values, lines, prefixed, problems=problems, component=component, decl=decl, key_prefix=key_prefix,
                    spec=self)


def _doc_hint(prop: Prop) -> str:
    return f" ({prop.doc.rstrip('.')})" if prop.doc else ""


@dataclass
class Conf:
    """Typed values of one component, plus the raw prefixed keys and where each came from."""

    values: dict[str, Any]
    lines: dict[str, Raw]
    prefixed: dict[str, Raw] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    component: str = ""
    decl: Raw | None = None
    key_prefix: str = ""
    spec: Spec | None = None

    @cached_property
    def typed(self) -> Any:
        """The typed, frozen configuration: one attribute per property of the spec (see the module docstring)."""
        assert self.spec is not None, "a Conf made by Spec.bind has its spec"
        args = {p.attr: self.sub_text(p.key_prefix) if p.prefix else self.values.get(p.name) for p in self.spec}
        return self.spec.config_type(**args)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        v = self.values.get(name)
        return default if v is None else v

    def is_set(self, name: str) -> bool:
        return name in self.lines

    def sub(self, prefix: str) -> dict[str, Raw]:
        """Raw keys under ``prefix`` with the prefix removed (``kafka.producer.`` → ``acks``)."""
        n = len(prefix)
        return {k[n:]: r for k, r in self.prefixed.items() if k.startswith(prefix)}

    def sub_text(self, prefix: str) -> dict[str, str]:
        return {k: r.value for k, r in self.sub(prefix).items()}

    def nested(self, prefix: str, spec: Spec) -> "Conf":
        """Validate the keys under ``prefix`` against a nested component's spec (a serializer, a path manager)."""
        return spec.bind(
            self.sub(prefix), problems=self.problems, component=self.component, decl=self.decl,
            key_prefix=self.key_prefix + prefix,
        )

    def error(self, message: str, prop: str | None = None) -> None:
        """Record a problem found by the component itself (cross-property checks)."""
        r = (self.lines.get(prop) or self.prefixed.get(prop)) if prop else None
        path = (r.path if r else "") or (self.decl.path if self.decl else "")
        line = r.line if r else (self.decl.line if self.decl else 0)
        name = self.key_prefix + prop if prop else None
        self.problems.append(Problem(path, line, self.component, name, message))

    def warn(self, message: str, prop: str | None = None) -> None:
        self.error(message, prop)
        self.problems[-1].severity = "warning"

    @classmethod
    def from_dict(cls, spec: Spec, values: Mapping[str, Any] | None = None, **raw_text: str) -> "Conf":
        """Build a Conf in code (tests, embedding): typed ``values`` and/or raw text keyword arguments."""
        raw = {k.replace("__", "."): Raw(str(v), 0) for k, v in raw_text.items()}
        problems: list[Problem] = []
        conf = spec.bind(raw, problems=problems, component="test")
        if values:
            conf.values.update(values)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise ConfigError("; ".join(str(p) for p in errors))
        return conf
