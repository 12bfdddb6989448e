"""Regular-expression interceptors: search_replace, regex_filter and regex_extractor.

Flume's patterns are Java regular expressions; pyflume compiles them with Python's ``re``, which agrees with Java
on the constructs configuration files use (classes, groups, quantifiers, anchors, ``(?i)``). A pattern ``re``
cannot compile is reported at ``--check`` with its property and line.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from agent import registry
from agent.core import Event, Interceptor, _rate_limited
from agent.java import java_regex, java_replacement
from agent.spec import Conf, ConfigError, Prop, Spec

__all__ = ["SearchAndReplaceInterceptor", "RegexFilteringInterceptor", "RegexExtractorInterceptor",
           "RegexExtractorSerializer", "PassThroughSerializer", "MillisSerializer", "joda_to_strptime"]


def _compile(conf: Conf, prop: str, text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(java_regex(text))
    except re.error as exc:
        conf.error(f"invalid regular expression {text!r}: {exc}", prop)
        return None


class SearchAndReplaceInterceptor(Interceptor):
    """Replaces every match of a regular expression in the body (Java's replaceAll, ``$1`` group references)."""

    alias = "search_replace"
    flume_class = "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder"
    spec = Spec(
        Prop("searchPattern", "str", required=True, doc="Regular expression to search the body for."),
        Prop("replaceString", "str", "", "Replacement text; $1, ${name} refer to groups. Empty removes matches."),
        Prop("charset", "str", "UTF-8", "Character set of the body."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.pattern = _compile(conf, "searchPattern", c.search_pattern)
        self.replacement = java_replacement(c.replace_string)
        self.charset = c.charset
        try:
            "".encode(self.charset)
        except LookupError:
            conf.error(f"unknown character set {self.charset!r}", "charset")
            self.charset = "utf-8"
        if self.pattern is not None:
            try:
                self.pattern.sub(self.replacement, "")
            except (re.error, IndexError) as exc:
                conf.error(f"invalid replacement {c.replace_string!r}: {exc}", "replaceString")

    def intercept(self, events: list[Event]) -> list[Event]:
        sub, repl, cs = self.pattern.sub, self.replacement, self.charset  # type: ignore[union-attr]
        for e in events:
            e.body = sub(repl, e.body.decode(cs, "replace")).encode(cs)
        return events


class RegexFilteringInterceptor(Interceptor):
    """Keeps only events whose body contains a match (or, with excludeEvents, drops them)."""

    alias = "regex_filter"
    flume_class = "org.apache.flume.interceptor.RegexFilteringInterceptor$Builder"
    spec = Spec(
        Prop("regex", "str", ".*", "Regular expression searched for anywhere in the body."),
        Prop("excludeEvents", "bool", False, "Drop the matching events instead of keeping them."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.pattern = _compile(conf, "regex", self.config.regex)
        self.exclude = self.config.exclude_events

    def intercept(self, events: list[Event]) -> list[Event]:
        search = self.pattern.search  # type: ignore[union-attr]
        if self.exclude:
            return [e for e in events if not search(e.body.decode("utf-8", "replace"))]
        return [e for e in events if search(e.body.decode("utf-8", "replace"))]


_JODA = [
    ("yyyy", "%Y"), ("yy", "%y"), ("MMMM", "%B"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"),
    ("hh", "%I"), ("mm", "%M"), ("ss", "%S"), ("SSS", "%f"), ("EEEE", "%A"), ("EEE", "%a"), ("a", "%p"),
    ("ZZ", "%z"), ("Z", "%z"), ("M", "%m"), ("d", "%d"), ("H", "%H"), ("h", "%I"), ("m", "%M"), ("s", "%S"),
]


def joda_to_strptime(pattern: str) -> str:
    """Translate a Joda-Time pattern (``yyyy-MM-dd HH:mm:ss.SSS``) to ``strptime`` directives."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "'":
            end = pattern.find("'", i + 1)
            end = n if end < 0 else end
            out.append(pattern[i + 1:end].replace("%", "%%") or "'")
            i = end + 1
            continue
        for joda, py in _JODA:
            if pattern.startswith(joda, i):
                out.append(py)
                i += len(joda)
                break
        else:
            out.append("%%" if pattern[i] == "%" else pattern[i])
            i += 1
    return "".join(out)


class RegexExtractorSerializer:
    """Turns the text of one regex group into a header value (``serializers.<s>.type``).

    Subclass it for your own and name it by dotted path. Its options are the ``serializers.<s>.*`` keys other
    than ``name`` and ``type``, validated against ``spec``; ``self.config`` holds them typed. ``serialize`` raises
    ValueError when the text cannot be turned into a value (the header is then not set).
    """

    spec = Spec()

    def __init__(self, name: str, conf: Conf):
        self.name = name
        self.config = conf.typed

    def serialize(self, value: str) -> str:
        return value


class PassThroughSerializer(RegexExtractorSerializer):
    """The group's text as it is. Flume's user guide writes `default`, which Flume itself cannot load; pyflume
    accepts it, and `DEFAULT`."""


class MillisSerializer(RegexExtractorSerializer):
    """The group parsed with a Joda-Time date pattern, in local time, as epoch milliseconds."""

    spec = Spec(Prop("pattern", "str", required=True, doc="Joda-Time pattern of the group (yyyy-MM-dd HH:mm)."))

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.format = joda_to_strptime(self.config.pattern or "")

    def serialize(self, value: str) -> str:
        t = datetime.strptime(value, self.format)
        return str(int(time.mktime(t.timetuple()) * 1000 + t.microsecond // 1000))


class RegexExtractorInterceptor(Interceptor):
    """Copies the groups of the first match in the body into headers, one serializer per group."""

    alias = "regex_extractor"
    flume_class = "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder"
    spec = Spec(
        Prop("regex", "str", required=True, doc="Regular expression searched for in the body."),
        Prop("serializers", "list", required=True, doc="Names of the serializers, one per group, in group order."),
        Prop("serializers.", prefix=True,
             doc="serializers.<s>.name = header name (required); serializers.<s>.type = a regex extractor "
                 "serializer (default: DEFAULT, the group's text), whose options follow as serializers.<s>.*."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.pattern = _compile(conf, "regex", self.config.regex)
        self.targets: list[tuple[str, RegexExtractorSerializer]] = []  # (header, serializer) per group
        for s in self.config.serializers or []:
            target = self._serializer(conf, s)
            if target is not None:
                self.targets.append(target)

    @staticmethod
    def _serializer(conf: Conf, s: str) -> tuple[str, RegexExtractorSerializer] | None:
        raw = conf.sub(f"serializers.{s}.")
        header = raw["name"].value if "name" in raw else ""
        if not header:
            conf.error(f"serializer '{s}' has no serializers.{s}.name (the header it fills)", "serializers")
            return None
        stype = raw["type"].value if "type" in raw else "DEFAULT"
        try:
            cls = registry.resolve("extractor_serializer", stype)
        except ConfigError as exc:
            conf.error(exc.message, f"serializers.{s}.type" if "type" in raw else "serializers")
            return None
        bound = cls.spec.bind(raw, problems=conf.problems, component=conf.component, decl=conf.decl,
                              ignore=("name", "type"), key_prefix=f"{conf.key_prefix}serializers.{s}.")
        return header, cls(s, bound)

    def intercept(self, events: list[Event]) -> list[Event]:
        search = self.pattern.search  # type: ignore[union-attr]
        targets = self.targets
        for e in events:
            m = search(e.body.decode("utf-8", "replace"))
            if m is None:
                continue
            groups = m.groups()
            for (header, serializer), value in zip(targets, groups, strict=False):  # extra groups: ignored, as Flume
                if value is None:
                    continue
                try:
                    e.headers[header] = serializer.serialize(value)
                except ValueError:
                    _rate_limited(self.log, f"interceptor {self.name}: {value!r} does not match the date pattern "
                                            f"of header {header}; header not set")
        return events
