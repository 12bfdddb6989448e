"""Regular-expression interceptors: search_replace, regex_filter and regex_extractor.

Flume's patterns are Java regular expressions; pyflume compiles them with Python's ``re``, which agrees with Java
on the constructs configuration files use (classes, groups, quantifiers, anchors, ``(?i)``). A pattern ``re``
cannot compile is reported at ``--check`` with its property and line.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from agent.core import Event, Interceptor, _rate_limited
from agent.java import java_regex, java_replacement
from agent.spec import Conf, Prop, Spec

__all__ = ["SearchAndReplaceInterceptor", "RegexFilteringInterceptor", "RegexExtractorInterceptor",
           "joda_to_strptime"]


def _compile(conf: Conf, prop: str) -> re.Pattern[str] | None:
    text = conf.get(prop)
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
        self.pattern = _compile(conf, "searchPattern")
        self.replacement = java_replacement(conf["replaceString"])
        self.charset = conf["charset"]
        try:
            "".encode(self.charset)
        except LookupError:
            conf.error(f"unknown character set {self.charset!r}", "charset")
            self.charset = "utf-8"
        if self.pattern is not None:
            try:
                self.pattern.sub(self.replacement, "")
            except (re.error, IndexError) as exc:
                conf.error(f"invalid replacement {conf['replaceString']!r}: {exc}", "replaceString")

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
        self.pattern = _compile(conf, "regex")
        self.exclude = conf["excludeEvents"]

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


_DEFAULT_SERIALIZERS = {"DEFAULT", "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer"}
_MILLIS = "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer"


class RegexExtractorInterceptor(Interceptor):
    """Copies the groups of the first match in the body into headers, one serializer per group."""

    alias = "regex_extractor"
    flume_class = "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder"
    spec = Spec(
        Prop("regex", "str", required=True, doc="Regular expression searched for in the body."),
        Prop("serializers", "list", required=True, doc="Names of the serializers, one per group, in group order."),
        Prop("serializers.", prefix=True,
             doc="serializers.<s>.name = header name (required); serializers.<s>.type = DEFAULT (the group's text; "
                 "Flume's user guide writes 'default', which Flume itself cannot load, pyflume accepts both) or "
                 "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer with "
                 "serializers.<s>.pattern = a Joda-Time date pattern (the group parsed in local time, as epoch ms)."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.pattern = _compile(conf, "regex")
        sub = conf.sub_text("serializers.")
        self.targets: list[tuple[str, str | None]] = []  # (header, strptime format or None)
        for s in conf["serializers"]:
            header = sub.get(f"{s}.name")
            if not header:
                conf.error(f"serializer '{s}' has no serializers.{s}.name (the header it fills)", "serializers")
                continue
            stype = sub.get(f"{s}.type", "DEFAULT")
            if stype.upper() == "DEFAULT" or stype in _DEFAULT_SERIALIZERS:
                self.targets.append((header, None))
            elif stype == _MILLIS:
                pat = sub.get(f"{s}.pattern")
                if not pat:
                    conf.error(f"the millis serializer '{s}' needs serializers.{s}.pattern", "serializers")
                    continue
                self.targets.append((header, joda_to_strptime(pat)))
            else:
                conf.error(f"serializers.{s}.type = {stype!r} is not valid; expected DEFAULT or {_MILLIS}",
                           "serializers")

    def intercept(self, events: list[Event]) -> list[Event]:
        search = self.pattern.search  # type: ignore[union-attr]
        targets = self.targets
        for e in events:
            m = search(e.body.decode("utf-8", "replace"))
            if m is None:
                continue
            groups = m.groups()
            for (header, fmt), value in zip(targets, groups, strict=False):  # extra groups are ignored, as in Flume
                if value is None:
                    continue
                if fmt is None:
                    e.headers[header] = value
                    continue
                try:
                    e.headers[header] = str(int(time.mktime(datetime.strptime(value, fmt).timetuple()) * 1000
                                                + datetime.strptime(value, fmt).microsecond // 1000))
                except ValueError:
                    _rate_limited(self.log, f"interceptor {self.name}: {value!r} does not match the date pattern "
                                            f"of header {header}; header not set")
        return events
