"""JSON Schema `pattern`s (ECMA 262 regular expressions, Unicode mode) translated to Python `re` with the same meaning.

JSON Schema patterns are ECMA 262 regular expressions; check-jsonschema runs them with `regress` in Unicode mode
(`u` flag), and so does this translation. Where Python's `re` reads the same text differently, the translation
rewrites it:

- `\\d`, `\\w`, `\\b` (and `\\D`, `\\W`, `\\B`) are ASCII in ECMA 262: compiled with `re.ASCII`;
- `\\s` is ECMA's WhiteSpace and LineTerminator set (it has U+FEFF and the Unicode Zs class, not U+001C-U+001F or
  U+0085 as Python's has), `\\S` its complement, also inside `[...]`;
- `.` stops at every ECMA line terminator (\\n, \\r, U+2028, U+2029), `$` matches at the very end only (Python's `$`
  also matches before a last newline), `[]` matches nothing and `[^]` anything;
- `\\cX`, `\\u{...}`, `\\0`, a surrogate pair written as two `\\u` escapes, and named groups `(?<name>...)`.

What has no faithful translation (backreferences, `\\p{...}`, lookbehinds Python cannot run) and what ECMA 262's
Unicode mode rejects itself (an unknown escape such as `\\Z`, a lone `{`, `]` or `}`, Python-only syntax such as
`(?i)` or `(?P<name>...)`) raises UntranslatablePattern when the schema is compiled, never later.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from hbsdeploy.errors import HbsError

# ECMA 262 WhiteSpace (TAB, VT, FF, ZWNBSP and the Zs class) and LineTerminator, as the body of a character class.
_WHITESPACE = ("\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff")
_DOT = "[^\\n\\r\\u2028\\u2029]"
_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
_SAME = frozenset("dDwWfnrtv")  # escapes Python reads as ECMA does (with re.ASCII)
_QUANTIFIER = re.compile(r"\*|\+|\?|\{\d+(?:,\d*)?\}")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_GROUP_NAME = re.compile(r"<([A-Za-z_$][A-Za-z0-9_$]*)>")


class UntranslatablePattern(HbsError):
    """A schema `pattern` that Python's `re` cannot run with its ECMA 262 meaning."""

    def __init__(self, pattern: str, message: str) -> None:
        super().__init__(message)
        self.pattern = pattern


def _refusal(pattern: str, position: int | None, why: str) -> UntranslatablePattern:
    where = "" if position is None else f", character {position + 1}"
    return UntranslatablePattern(pattern, f"pattern {pattern!r}{where}: {why}; JSON Schema patterns are "
                                 "ECMA 262 regular expressions, and hbsdeploy refuses one it cannot run with the same "
                                 "meaning: rewrite it with plain characters, classes and groups")


@functools.cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a JSON Schema `pattern` for `re.search` with its ECMA 262 meaning; UntranslatablePattern otherwise."""
    translated = _Translator(pattern).translate()
    try:
        return re.compile(translated, re.ASCII)
    except re.error as exc:
        raise _refusal(pattern, None, f"Python's re cannot run its translation ({exc.msg})") from None


@dataclass
class _Translator:
    """One pass over an ECMA 262 pattern, writing the Python equivalent."""

    pattern: str
    index: int = 0
    lookarounds: list[bool] = field(default_factory=list)  # per open group: whether it is a lookaround

    def fail(self, why: str, at: int | None = None) -> UntranslatablePattern:
        return _refusal(self.pattern, self.index if at is None else at, why)

    def translate(self) -> str:
        out: list[str] = []
        quantifiable = False  # whether the last thing written may take a quantifier
        while self.index < len(self.pattern):
            char = self.pattern[self.index]
            quantifier = _QUANTIFIER.match(self.pattern, self.index)
            if quantifier or char == "{":
                out.append(self._quantifier(quantifier, quantifiable))
                quantifiable = False
                continue
            piece, quantifiable = self._atom(char)
            out.append(piece)
        return "".join(out)

    def _quantifier(self, quantifier: re.Match[str] | None, quantifiable: bool) -> str:
        if quantifier is None:
            raise self.fail("a '{' that does not start a quantifier {n}, {n,} or {n,m} (escape it as \\{)")
        if not quantifiable:
            raise self.fail(f"the quantifier {quantifier.group()!r} has nothing it may repeat")
        self.index = quantifier.end()
        if self.pattern.startswith("?", self.index):  # lazy
            self.index += 1
            return quantifier.group() + "?"
        return quantifier.group()

    def _atom(self, char: str) -> tuple[str, bool]:
        """The translation of the atom or assertion at the index, and whether a quantifier may follow it."""
        start = self.index
        self.index += 1
        if char == "\\":
            return self._escape_outside()
        if char == "[":
            return self._class(), True
        if char == "(":
            return self._group_open(), False
        if char == ")" and self.lookarounds:
            return ")", not self.lookarounds.pop()  # Unicode mode does not let a lookaround take a quantifier
        if char in ")]}":
            raise self.fail(f"a lone {char!r} (escape it as \\{char})", start)
        simple = {".": (_DOT, True), "$": ("\\Z", False), "^": ("^", False), "|": ("|", False)}
        return simple.get(char, (char, True))

    def _group_open(self) -> str:
        if not self.pattern.startswith("?", self.index):
            self.lookarounds.append(False)
            return "("
        rest = self.pattern[self.index + 1:]
        for kind in (":", "=", "!", "<=", "<!"):
            if rest.startswith(kind):
                self.index += 1 + len(kind)
                self.lookarounds.append(kind != ":")
                return "(?" + kind
        name = _GROUP_NAME.match(rest)
        if name is None:
            raise self.fail("'(?' must start (?:, (?=, (?!, (?<=, (?<! or (?<name>; Python's inline flags and "
                            "(?P<name>...) are not ECMA 262", self.index - 1)
        self.index += 1 + name.end()
        self.lookarounds.append(False)
        return f"(?P<{name.group(1)}>"

    def _escape_outside(self) -> tuple[str, bool]:
        if self.index >= len(self.pattern):
            raise self.fail("the pattern ends with a lone backslash", self.index - 1)
        char = self.pattern[self.index]
        if char in "bB":
            self.index += 1
            return "\\" + char, False
        if char in "sS":
            self.index += 1
            return ("[" if char == "s" else "[^") + _WHITESPACE + "]", True
        if char == "-":
            raise self.fail("\\- outside [...] is not an ECMA 262 escape in Unicode mode", self.index - 1)
        return self._escape_common(), True

    def _escape_common(self) -> str:
        """An escape that means the same inside and outside [...]; the index is just after the backslash."""
        start = self.index - 1
        char = self.pattern[self.index]
        self.index += 1
        if char in _SAME:
            return "\\" + char
        if char in _SYNTAX:
            return "\\" + char if char != "/" else "/"
        if char == "0" and not self.pattern[self.index:self.index + 1].isdigit():
            return "\\x00"
        if char == "c" and self.pattern[self.index:self.index + 1].isascii() \
                and self.pattern[self.index:self.index + 1].isalpha():
            self.index += 1
            return f"\\x{ord(self.pattern[self.index - 1]) % 32:02x}"
        if char == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", self.pattern[self.index:self.index + 2]):
            self.index += 2
            return "\\x" + self.pattern[self.index - 2:self.index]
        if char == "u":
            return self._unicode_escape(start)
        reasons = {"k": "a named backreference has no faithful translation",
                   "p": "Unicode property escapes (\\p{...}) are not supported by Python's re",
                   "P": "Unicode property escapes (\\P{...}) are not supported by Python's re"}
        if char.isdigit():
            raise self.fail("backreferences and octal escapes have no faithful translation", start)
        raise self.fail(reasons.get(char, f"\\{char} is not an ECMA 262 escape in Unicode mode"), start)

    def _unicode_escape(self, start: int) -> str:
        braced = re.match(r"\{([0-9A-Fa-f]{1,6})\}", self.pattern[self.index:])
        if braced and int(braced.group(1), 16) <= 0x10FFFF:
            self.index += braced.end()
            return f"\\U{int(braced.group(1), 16):08x}"
        if not _HEX4.fullmatch(self.pattern[self.index:self.index + 4]):
            raise self.fail("\\u must be followed by 4 hexadecimal digits or {hex}", start)
        code = int(self.pattern[self.index:self.index + 4], 16)
        self.index += 4
        low = self.pattern[self.index + 2:self.index + 6]
        if 0xD800 <= code <= 0xDBFF and self.pattern.startswith("\\u", self.index) and _HEX4.fullmatch(low) \
                and 0xDC00 <= int(low, 16) <= 0xDFFF:  # a surrogate pair: one code point in Unicode mode
            self.index += 6
            code = 0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00)
        return f"\\U{code:08x}"

    # -- character classes ---------------------------------------------------------------------------------------

    def _class(self) -> str:
        """The class opened just before the index, up to its `]`."""
        negated = self.pattern.startswith("^", self.index)
        self.index += negated
        items: list[str] = []
        complement_whitespace = False  # \S among the items: Python's class cannot hold ECMA's \S, so it goes apart
        previous_was_class_escape = False
        first = self.index
        while True:
            if self.index >= len(self.pattern):
                raise self.fail("a '[' without its ']'")
            char = self.pattern[self.index]
            if char == "]":
                self.index += 1
                break
            if char == "-" and self.index > first and not self.pattern.startswith("]", self.index + 1) \
                    and (previous_was_class_escape or self._next_is_class_escape()):
                raise self.fail("a range in [...] between a class escape (\\d, \\s, \\w...) and a character")
            item, previous_was_class_escape = self._class_item()
            if item == "\\S":
                complement_whitespace = True
            else:
                items.append(item)
        return _class_text(items, negated, complement_whitespace)

    def _next_is_class_escape(self) -> bool:
        return self.pattern[self.index + 1:self.index + 2] == "\\" and \
            self.pattern[self.index + 2:self.index + 3] in tuple("dDsSwW")

    def _class_item(self) -> tuple[str, bool]:
        """One item of a class and whether it is a class escape (\\d, \\s, ...); \\S is returned as is."""
        char = self.pattern[self.index]
        self.index += 1
        if char != "\\":
            return ("\\" + char if char in "[&~|^\\" else char), False
        if self.index >= len(self.pattern):
            raise self.fail("a '[' without its ']'")
        escaped = self.pattern[self.index]
        if escaped in "sS":
            self.index += 1
            return (_WHITESPACE if escaped == "s" else "\\S"), True
        if escaped == "b":
            self.index += 1
            return "\\x08", False
        if escaped == "-":
            self.index += 1
            return "\\-", False
        return self._escape_common(), escaped in "dDwW"


def _class_text(items: list[str], negated: bool, complement_whitespace: bool) -> str:
    """A Python class (or group) for ECMA's [items] / [^items], with ECMA's \\S among them when asked."""
    body = "".join(items)
    if not complement_whitespace:
        if not body:  # ECMA's [] matches nothing, [^] anything; Python reads [] and [^] as the start of a longer class
            return "[\\s\\S]" if negated else "(?!)"
        return f"[{'^' if negated else ''}{body}]"
    not_whitespace = f"[^{_WHITESPACE}]"
    if not body:
        return f"[{_WHITESPACE}]" if negated else not_whitespace
    if negated:  # neither an item nor a non-whitespace: a whitespace that is not an item
        return f"(?:(?![{body}])[{_WHITESPACE}])"
    return f"(?:[{body}]|{not_whitespace})"
