"""Safe YAML loading that remembers where every key and value stands.

PyYAML's own loaders silently keep the last of two duplicate keys, read `yes` as a boolean, and build Python objects
from tags. This loader only composes the node graph (with libyaml's C parser where available), then builds plain data
itself: strings, numbers, booleans (`true`/`false` only, as in YAML 1.2), null, lists and string-keyed mappings. Tags,
duplicate keys, non-string keys, runaway aliases and runaway nesting are errors with a file, line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hbsdeploy.errors import InputError, Problem, Severity

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000  # values built, counting each alias expansion: stops an alias bomb early
MAX_DEPTH = 64

JsonPath = tuple[str | int, ...]

_PLAIN = "!hbsdeploy/plain"
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_ALLOWED_TAGS = frozenset({_PLAIN, _STR, _MAP, _SEQ})

_NULL_WORDS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE_WORDS = frozenset({"true", "True", "TRUE"})
_FALSE_WORDS = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ComposeOnlyLoader(_Base):  # type: ignore[misc]
    """Tags each plain scalar `_PLAIN` so that we, not PyYAML's YAML 1.1 resolver, decide what it means."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


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
    """The path as a user typed it where possible: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_text(path: Path, shown: str) -> str:
    """Read a UTF-8 text file of bounded size, refusing other encodings and NUL bytes with a located error."""

    def fail(rule: str, message: str, line: int = 1, column: int = 1) -> InputError:
        return InputError([Problem(shown, line, column, Severity.ERROR, rule, message)])

    try:
        if path.is_dir():
            raise fail("not-a-file", "is a directory; name a YAML file or pass no paths to check every partner file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise fail("file-not-found", "no such file; check the path") from None
    except PermissionError:
        raise fail("file-unreadable", "permission denied; make the file readable") from None
    except OSError as exc:
        raise fail("file-unreadable", f"cannot be read ({exc.strerror}); check the path") from None
    if len(raw) > MAX_FILE_BYTES:
        raise fail("file-too-large", f"is larger than {MAX_FILE_BYTES // 1024} KiB; a partner file is a few lines")
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
    loader = _ComposeOnlyLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise InputError([_syntax_problem(shown, text, exc)]) from None
    except yaml.YAMLError as exc:  # errors without a position, e.g. a reader error
        raise InputError([Problem(shown, 1, 1, Severity.ERROR, "yaml-syntax", str(exc).replace("\n", " "))]) from None
    finally:
        loader.dispose()
    if node is None:
        raise InputError([Problem(shown, 1, 1, Severity.ERROR, "empty-file",
                                  "is empty; write a YAML mapping (see partners/ for examples)")])
    builder = _Builder(shown)
    data = builder.build(node)
    if builder.problems:
        raise InputError(builder.problems)
    return Document(shown, data, builder.values, builder.keys)


def _syntax_problem(shown: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    source_line = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
    what = exc.problem or exc.context or "invalid YAML"
    if "expected a single document" in str(exc.context) or "but found another document" in str(what):
        return Problem(shown, line, column, Severity.ERROR, "multiple-documents",
                       "holds more than one YAML document; keep one partner per file and remove the `---`")
    hint = ""
    if "\t" in source_line[: column]:
        hint = "; indent with spaces, not tabs"
    elif "found undefined alias" in what or "found undefined anchor" in what or "found unknown anchor" in what:
        hint = "; an unquoted value starting with `*` is an alias: quote IDs such as \"*A36\""
    else:
        hint = "; fix the YAML syntax"
    return Problem(shown, line, column, Severity.ERROR, "yaml-syntax", f"{what}{hint}")


class _Builder:
    """Turns a composed node graph into plain data, recording positions and problems."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.values: dict[JsonPath, tuple[int, int]] = {}
        self.keys: dict[JsonPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.nodes_built = 0

    def _problem(self, node: yaml.Node, rule: str, message: str, path: JsonPath) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.shown, mark.line + 1, mark.column + 1, Severity.ERROR, rule, message,
                                     format_json_path(path)))

    def build(self, root: yaml.Node) -> Any:
        # MAX_DEPTH keeps the recursion far below Python's limit: deep nesting ends in an error, not a RecursionError.
        return self._build(root, (), 0)

    def _build(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        self.nodes_built += 1
        if self.nodes_built > MAX_NODES:
            raise InputError([Problem(self.shown, node.start_mark.line + 1, node.start_mark.column + 1,
                                      Severity.ERROR, "yaml-too-large",
                                      f"expands to more than {MAX_NODES} values (an alias bomb?); remove the aliases")])
        if depth > MAX_DEPTH:
            raise InputError([Problem(self.shown, node.start_mark.line + 1, node.start_mark.column + 1,
                                      Severity.ERROR, "yaml-too-deep",
                                      f"nests deeper than {MAX_DEPTH} levels; a partner file is a few levels deep")])
        self.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if node.tag not in _ALLOWED_TAGS:
            self._problem(node, "yaml-tag", f"YAML tag {node.tag!r} is not allowed; remove it and write a plain value",
                          path)
            return None
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node) if node.tag == _PLAIN else node.value
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, (*path, index), depth + 1) for index, item in enumerate(node.value)]
        return self._mapping(node, path, depth)

    def _mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            if key in result:
                first_line = self.keys[child][0]
                self._problem(key_node, "duplicate-key",
                              f"duplicate key {key!r} (first on line {first_line}); keep one", child)
                continue
            self.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self._build(value_node, child, depth + 1)
        return result

    def _key(self, key_node: yaml.Node, path: JsonPath) -> str | None:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in (_PLAIN, _STR):
            self._problem(key_node, "non-string-key", "keys must be plain strings", path)
            return None
        if key_node.tag == _PLAIN and not isinstance(_scalar(key_node), str):
            self._problem(key_node, "non-string-key",
                          f"key {key_node.value!r} is not a string; keys are names such as service_url", path)
            return None
        if key_node.value == "<<":
            self._problem(key_node, "yaml-merge-key", "merge keys (<<) are not supported; write the keys out", path)
            return None
        return str(key_node.value)


def _scalar(node: yaml.ScalarNode) -> Any:
    """YAML 1.2 core schema for plain scalars: `yes`, `on`, `0o7`, `1:20` stay strings."""
    text = node.value
    if text in _NULL_WORDS:
        return None
    if text in _TRUE_WORDS:
        return True
    if text in _FALSE_WORDS:
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text
