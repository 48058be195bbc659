"""Tokens of the runs table's filter language (`server.run.filter_language`): names (fields,
keywords), quoted text, numbers, operators, parentheses and commas, each with its 1-based
position in the text. Pure."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from server.errors import InvalidInput

Value = str | int | float | bool
"""A value a comparison compares with."""
BARE_SEGMENT = re.compile(r"[A-Za-z0-9_/-]+", re.ASCII)
"""A key segment that needs no backticks."""
_NAME_START = re.compile(r"[A-Za-z_]", re.ASCII)
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_OPERATOR = re.compile(r"==|!=|<=|>=|<>|=|<|>")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
_LARGEST_INTEGER = 2**63 - 1

TokenKind = Literal["name", "string", "number", "op", "(", ")", ",", "end"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    position: int
    """1-based character position in the filter text."""
    segments: tuple[str, ...] = ()
    """For names: the dot-separated segments, backtick quotes removed."""
    value: Value | None = None


def syntax_error(parameter: str, position: int, message: str) -> InvalidInput:
    """A 422 naming the parameter, the 1-based position and what was wrong or expected."""
    text = f"{parameter} at position {position}: {message}"
    return InvalidInput(text, [{"field": parameter, "message": message, "position": str(position)}])


class _Tokenizer:
    def __init__(self, text: str, parameter: str) -> None:
        self.text = text
        self.parameter = parameter
        self.index = 0

    def error(self, message: str, index: int | None = None) -> InvalidInput:
        return syntax_error(self.parameter, (self.index if index is None else index) + 1, message)

    def tokens(self) -> list[Token]:
        tokens: list[Token] = []
        while True:
            while self.index < len(self.text) and self.text[self.index].isspace():
                self.index += 1
            if self.index >= len(self.text):
                tokens.append(Token("end", "", self.index + 1))
                return tokens
            tokens.append(self._next())

    def _next(self) -> Token:
        start = self.index
        char = self.text[start]
        if char in "(),":
            self.index += 1
            kind: TokenKind = "(" if char == "(" else ")" if char == ")" else ","
            return Token(kind, char, start + 1)
        operator = _OPERATOR.match(self.text, start)
        if operator is not None:
            self.index = operator.end()
            op = {"==": "=", "<>": "!="}.get(operator.group(), operator.group())
            return Token("op", op, start + 1)
        if char in "'\"":
            return self._string(char)
        number = _NUMBER.match(self.text, start)
        if number is not None:
            return self._number(number)
        if _NAME_START.match(char) or char == "`":
            return self._name()
        raise self.error(
            f"unexpected character {char!r}; expected a field, a value (quoted text, a "
            "number), an operator (= != < <= > >=), a parenthesis or a comma"
        )

    def _string(self, quote: str) -> Token:
        start = self.index
        self.index += 1
        chars: list[str] = []
        while self.index < len(self.text):
            char = self.text[self.index]
            if char == quote:
                self.index += 1
                return Token(
                    "string", self.text[start : self.index], start + 1, value="".join(chars)
                )
            if char == "\\":
                escaped = self.text[self.index + 1 : self.index + 2]
                if escaped not in _ESCAPES:
                    raise self.error(f"unknown escape \\{escaped}; allowed: \\\\ \\' \\\" \\n \\t")
                chars.append(_ESCAPES[escaped])
                self.index += 2
                continue
            if char == "\x00":
                raise self.error("text must not contain NUL characters (\\x00)")
            chars.append(char)
            self.index += 1
        raise self.error(f"text opened with {quote} is never closed", start)

    def _number(self, match: re.Match[str]) -> Token:
        start = self.index
        self.index = match.end()
        follow = self.text[self.index : self.index + 1]
        if follow and (follow.isalnum() or follow in "_./`"):
            raise self.error(f"a number cannot be followed by {follow!r}", self.index)
        raw = match.group()
        value: int | float
        if re.fullmatch(r"[+-]?[0-9]+", raw) and abs(int(raw)) <= _LARGEST_INTEGER:
            value = int(raw)
        else:  # a whole number beyond int64 compares as the float it is closest to
            value = float(raw)
            if not math.isfinite(value):
                raise self.error(f"number {raw} is out of range", start)
        return Token("number", raw, start + 1, value=value)

    def _name(self) -> Token:
        start = self.index
        segments: list[str] = []
        while True:
            if self.text.startswith("`", self.index):
                segments.append(self._quoted_segment())
            else:
                segment = BARE_SEGMENT.match(self.text, self.index)
                if segment is None:
                    raise self.error("expected a key after '.' (bare, or quoted in backticks)")
                segments.append(segment.group())
                self.index = segment.end()
            if not self.text.startswith(".", self.index):
                break
            self.index += 1
        return Token("name", self.text[start : self.index], start + 1, segments=tuple(segments))

    def _quoted_segment(self) -> str:
        start = self.index
        self.index += 1
        chars: list[str] = []
        while self.index < len(self.text):
            char = self.text[self.index]
            if char == "`":
                if self.text.startswith("``", self.index):
                    chars.append("`")
                    self.index += 2
                    continue
                self.index += 1
                if not chars:
                    raise self.error("an empty key ``", start)
                return "".join(chars)
            if char in '"\x00' or not char.isprintable():
                raise self.error(f"a key may not contain {char!r}")
            chars.append(char)
            self.index += 1
        raise self.error("key opened with ` is never closed", start)


def tokenize(text: str, parameter: str) -> list[Token]:
    """The tokens of `text`, ending with an `end` token; InvalidInput naming the position of
    the first character that starts no token."""
    return _Tokenizer(text, parameter).tokens()
