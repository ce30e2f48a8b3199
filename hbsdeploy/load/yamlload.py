"""Safe YAML loading that remembers where every key and value stands.

PyYAML's own loaders silently keep the last of two duplicate keys, read `yes` as a boolean, and build Python objects
from tags. This loader only runs the parser (libyaml's C parser where available) and builds plain data from its events
itself: strings, numbers, booleans (`true`/`false` only, as in YAML 1.2), null, lists and string-keyed mappings. Tags,
duplicate keys, non-string keys, runaway aliases and runaway nesting are errors with a file, line and column.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hbsdeploy.errors import InputError, Problem, Severity
from hbsdeploy.files import FileRefused, read_bytes
from hbsdeploy.paths import real_file_path, real_folder
from hbsdeploy.text import escape

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000  # values built, counting each alias expansion: stops an alias bomb early
MAX_DEPTH = 64
TOO_DEEP_MESSAGE = f"nests deeper than {MAX_DEPTH} levels; a partner file is a few levels deep"

JsonPath = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

_NULL_WORDS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE_WORDS = frozenset({"true", "True", "TRUE"})
_FALSE_WORDS = frozenset({"false", "False", "FALSE"})
_WORDS: dict[str, Any] = {**dict.fromkeys(_NULL_WORDS - {"", "~"}), **dict.fromkeys(_TRUE_WORDS, True),
                          **dict.fromkeys(_FALSE_WORDS, False)}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")

_ScalarEvent = yaml.ScalarEvent
_AliasEvent = yaml.AliasEvent
_SequenceStartEvent = yaml.SequenceStartEvent
_SequenceEndEvent = yaml.SequenceEndEvent
_MappingEndEvent = yaml.MappingEndEvent

# libyaml's C parser where PyYAML was built with it; the pure-Python parser otherwise. Only the parser is used.
# (`yaml.CParser` is not exported at the top level: it lives in yaml.cyaml.)
_Parser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None) or yaml.SafeLoader


def format_json_path(path: JsonPath) -> str:
    """`("service_types", "authorization", "service_url")` -> `$.service_types.authorization.service_url`."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


@dataclass
class Document:
    """Plain data loaded from one YAML file, with the 1-based line and column of every value and key."""

    path: str
    data: Any
    values: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """Where `path` stands; its nearest ancestor that exists where it does not (a missing key)."""
        if key and path in self.keys:
            return self.keys[path]
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: JsonPath, rule: str, message: str, severity: Severity = Severity.ERROR,
                *, key: bool = False) -> Problem:
        line, column = self.position(path, key=key)
        return Problem(self.path, line, column, severity, rule, message, format_json_path(path))


def display_path(path: Path) -> str:
    """The path as a user typed it where possible: relative to the working directory when below it; a file name
    holding an escape sequence or an invisible character is shown escaped."""
    if not path.is_absolute() and ".." not in path.parts:
        return escape(str(path))  # already relative to the working directory, as typed
    try:
        resolved, here = real_file_path(path), real_folder(os.getcwd())
    except (ValueError, OSError):  # a path too long or holding a NUL; the working directory gone
        return escape(str(path))
    if not resolved.startswith(here.rstrip(os.sep) + os.sep):
        return escape(str(path))  # not below the working directory
    return escape(resolved[len(here.rstrip(os.sep)) + 1:])


def read_text(path: Path, shown: str) -> str:
    """Read a UTF-8 text file of bounded size, refusing other encodings and NUL bytes with a located error."""

    def fail(rule: str, message: str, line: int = 1, column: int = 1) -> InputError:
        return InputError([Problem(shown, line, column, Severity.ERROR, rule, message)])

    try:
        raw = read_bytes(path, MAX_FILE_BYTES, what="YAML file")
    except FileRefused as exc:
        if exc.rule == "file-too-large":
            message = f"is larger than {MAX_FILE_BYTES // 1024} KiB; a partner file is a few lines"
            raise fail(exc.rule, message) from None
        if exc.rule == "not-a-file" and path.is_dir():
            raise fail(exc.rule, "is a directory; name a YAML file or pass no paths to check every partner file"
                       ) from None
        raise fail(exc.rule, str(exc)) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail("encoding", "is UTF-16 (or UTF-32); save it as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, column = _byte_position(raw, nul)
        raise fail("encoding", "contains a NUL byte; is this a binary or UTF-16 file? Save it as UTF-8 text",
                   line, column)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(raw, exc.start)
        raise fail("encoding", f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8",
                   line, column) from None


def _byte_position(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def load_yaml(path: Path, shown: str | None = None) -> Document:
    """Load one single-document YAML file into a Document, or raise InputError naming file, line and column."""
    shown = shown if shown is not None else display_path(path)
    return parse_yaml(read_text(path, shown), shown)


def parse_yaml(text: str, shown: str) -> Document:
    """Parse YAML text (already decoded) into a Document."""
    loader = _Parser(text)
    builder = _Builder(shown, loader)
    try:
        data = builder.build_single_document()
    except yaml.MarkedYAMLError as exc:
        raise InputError([_syntax_problem(shown, text, exc)]) from None
    except yaml.YAMLError as exc:  # errors without a position, e.g. a reader error
        raise InputError([Problem(shown, 1, 1, Severity.ERROR, "yaml-syntax", str(exc).replace("\n", " "))]) from None
    finally:
        loader.dispose()
    if builder.problems:
        raise InputError(builder.problems)
    return Document(shown, data, builder.values, builder.keys)


def _syntax_problem(shown: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    lines = text.splitlines()
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    what = exc.problem or exc.context or "invalid YAML"
    if "maximum nesting depth" in what:  # libyaml 0.2.5 refuses 1,000 levels while scanning, before our own check
        return Problem(shown, line, column, Severity.ERROR, "yaml-too-deep", TOO_DEEP_MESSAGE)
    hint = "; indent with spaces, not tabs" if "\t" in source_line[:column] else "; fix the YAML syntax"
    return Problem(shown, line, column, Severity.ERROR, "yaml-syntax", f"{what}{hint}")


@dataclass
class _Anchor:
    """An anchored value, kept to expand its aliases: the data, its size and depth, and its positions."""

    value: Any
    nodes: int
    depth: int
    values: list[tuple[JsonPath, tuple[int, int]]]
    keys: list[tuple[JsonPath, tuple[int, int]]]


def _mark(event: Any) -> tuple[int, int]:
    return event.start_mark.line + 1, event.start_mark.column + 1


class _Builder:
    """Builds plain data straight from the parser's events, recording positions and problems.

    Working on events rather than PyYAML's composed nodes bounds the nesting before anything recurses (libyaml's
    composer recurses in C and crashes the interpreter on a few hundred thousand `[`), and expands aliases by count
    before copying anything, so an alias bomb fails at once.
    """

    def __init__(self, shown: str, loader: Any) -> None:
        self.shown = shown
        self.next_event = loader.get_event
        self.values: dict[JsonPath, tuple[int, int]] = {}
        self.keys: dict[JsonPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.nodes_built = 0
        self.anchors: dict[str, _Anchor] = {}
        self._depth = 0  # nesting depth of the value built last, for the depth of anchored values

    def _fail(self, event: Any, rule: str, message: str, path: JsonPath = ()) -> InputError:
        line, column = _mark(event)
        return InputError([Problem(self.shown, line, column, Severity.ERROR, rule, message, format_json_path(path))])

    def _problem(self, event: Any, rule: str, message: str, path: JsonPath) -> None:
        line, column = _mark(event)
        self.problems.append(Problem(self.shown, line, column, Severity.ERROR, rule, message, format_json_path(path)))

    def build_single_document(self) -> Any:
        """The data of the stream's only document; InputError for an empty stream or a second document."""
        self.next_event()  # StreamStartEvent
        event = self.next_event()
        if isinstance(event, yaml.StreamEndEvent):  # nothing but comments and blank lines
            raise InputError([Problem(self.shown, 1, 1, Severity.ERROR, "empty-file",
                                      "is empty; write a YAML mapping (see partners/ for examples)")])
        data = self._node(self.next_event(), (), 0)
        self.next_event()  # DocumentEndEvent
        event = self.next_event()
        if not isinstance(event, yaml.StreamEndEvent):
            raise self._fail(event, "multiple-documents",
                             "holds more than one YAML document; keep one partner per file and remove the `---`")
        return data

    def _count(self, event: Any, nodes: int) -> None:
        self.nodes_built += nodes
        if self.nodes_built > MAX_NODES:
            raise self._fail(event, "yaml-too-large",
                             f"expands to more than {MAX_NODES} values (an alias bomb?); remove the aliases")

    def _node(self, event: Any, path: JsonPath, depth: int) -> Any:
        """Build the value that starts with `event` (already read) at `path`."""
        self.nodes_built += 1
        if self.nodes_built > MAX_NODES:
            self._count(event, 0)
        kind = type(event)
        if kind is _AliasEvent:
            return self._alias(event, path, depth)
        mark = event.start_mark
        self.values[path] = (mark.line + 1, mark.column + 1)
        anchor = event.anchor
        if anchor is not None:
            first_value, first_key, nodes_before = len(self.values) - 1, len(self.keys), self.nodes_built - 1
        tag = event.tag
        if kind is _ScalarEvent:
            self._depth = 0
            if tag is None:
                try:
                    value: Any = _plain(event.value) if event.implicit[0] else event.value
                except _NumberTooLong:
                    raise self._fail(event, "number-too-long", TOO_LONG_MESSAGE, path) from None
            elif tag == _STR or tag == "!":
                value = event.value
            else:
                value = self._bad_tag(event, path)
        else:
            if depth >= MAX_DEPTH:
                raise self._fail(event, "yaml-too-deep",
                                 TOO_DEEP_MESSAGE, path)
            if kind is _SequenceStartEvent:
                value = self._sequence(path, depth)
                allowed = _SEQ
            else:
                value = self._mapping(path, depth)
                allowed = _MAP
            if tag is not None and tag != "!" and tag != allowed:
                value = self._bad_tag(event, path)
        if anchor is not None:
            size = len(path)
            self.anchors[anchor] = _Anchor(
                value, self.nodes_built - nodes_before, self._depth,
                [(p[size:], pos) for p, pos in itertools.islice(self.values.items(), first_value, None)],
                [(p[size:], pos) for p, pos in itertools.islice(self.keys.items(), first_key, None)])
        return value

    def _bad_tag(self, event: Any, path: JsonPath) -> Any:
        """Record a tag we refuse; the value it stood on becomes None."""
        self._problem(event, "yaml-tag", f"YAML tag {event.tag!r} is not allowed; remove it and write a plain value",
                      path)
        return None

    def _alias(self, event: Any, path: JsonPath, depth: int) -> Any:
        anchor = self.anchors.get(event.anchor)
        if anchor is None:
            raise self._fail(event, "yaml-syntax",
                             f"found undefined alias {event.anchor!r}; an unquoted value starting with `*` is an "
                             "alias: quote IDs such as \"*A36\"", path)
        self._count(event, anchor.nodes - 1)
        if depth + anchor.depth > MAX_DEPTH:
            raise self._fail(event, "yaml-too-deep",
                             TOO_DEEP_MESSAGE, path)
        for relative, position in anchor.values:
            self.values[path + relative] = position
        for relative, position in anchor.keys:
            self.keys[path + relative] = position
        self.values[path] = _mark(event)  # the alias itself; what it expands to points at the anchored lines
        self._depth = anchor.depth
        return anchor.value

    def _sequence(self, path: JsonPath, depth: int) -> list[Any]:
        """The list whose items start with the next event; sets self._depth to its nesting depth."""
        result: list[Any] = []
        deepest = 0
        event = self.next_event()
        while type(event) is not _SequenceEndEvent:
            result.append(self._node(event, (*path, len(result)), depth + 1))
            deepest = max(deepest, self._depth)
            event = self.next_event()
        self._depth = deepest + 1
        return result

    def _mapping(self, path: JsonPath, depth: int) -> dict[str, Any]:
        """The mapping whose keys start with the next event; sets self._depth to its nesting depth."""
        result: dict[str, Any] = {}
        deepest = 0
        event = self.next_event()
        while type(event) is not _MappingEndEvent:
            text = event.value if type(event) is _ScalarEvent and event.tag is None else None
            if text is not None and text[:1].isalpha() and text not in _WORDS:  # a plain name: the usual key
                key: str | None = text
            else:
                key = self._key(event, path, depth)
            value_event = self.next_event()
            if key is None:
                self._skip(value_event, depth + 1)
            else:
                child = (*path, key)
                if key in result:
                    self._problem(event, "duplicate-key",
                                  f"duplicate key {key!r} (first on line {self.keys[child][0]}); keep one", child)
                    self._skip(value_event, depth + 1)
                else:
                    mark = event.start_mark
                    self.keys[child] = (mark.line + 1, mark.column + 1)
                    result[key] = self._node(value_event, child, depth + 1)
                    if self._depth > deepest:
                        deepest = self._depth
            event = self.next_event()
        self._depth = deepest + 1
        return result

    def _key(self, event: Any, path: JsonPath, depth: int) -> str | None:
        """The key that starts with `event`, or None (after recording why) when it is not a plain string."""
        if not isinstance(event, yaml.ScalarEvent):
            self._problem(event, "non-string-key", "keys must be plain strings", path)
            self._skip(event, depth + 1)
            return None
        text: str = event.value
        if event.tag is None and event.implicit[0]:
            try:
                plain = _plain(text)
            except _NumberTooLong:
                plain = 0
            if not isinstance(plain, str):
                self._problem(event, "non-string-key",
                              f"key {text!r} is not a string; keys are names such as service_url", path)
                return None
            if text == "<<":
                self._problem(event, "yaml-merge-key", "merge keys (<<) are not supported; write the keys out", path)
                return None
        elif event.tag not in (None, "!", _STR):
            self._problem(event, "non-string-key", "keys must be plain strings", path)
            return None
        return text

    def _skip(self, event: Any, depth: int) -> None:
        """Read past the value that starts with `event` without building it (it is already reported)."""
        level = 0
        while True:
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                level += 1
                if depth + level > MAX_DEPTH:
                    raise self._fail(event, "yaml-too-deep",
                                     TOO_DEEP_MESSAGE)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                level -= 1
            if level == 0:
                return
            event = self.next_event()


MAX_INT_DIGITS = 4300  # Python's int-from-text limit (sys.int_info.default_max_str_digits)
TOO_LONG_MESSAGE = f"a number of more than {MAX_INT_DIGITS:,} digits; write a plain value (quote it if it is text)"


class _NumberTooLong(ValueError):
    """A plain scalar that is an integer too long to convert."""


def _plain(text: str) -> Any:
    """YAML 1.2 core schema for plain scalars: `yes`, `on`, `0o7`, `1:20` stay strings."""
    if text[:1].isalpha():  # names, words and URLs: text, but for true, false and null
        return _WORDS.get(text, text)
    if text in _NULL_WORDS:
        return None
    if text in _TRUE_WORDS:
        return True
    if text in _FALSE_WORDS:
        return False
    if _INT.match(text):
        if len(text) > MAX_INT_DIGITS:
            raise _NumberTooLong(text)
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text
