"""The runs table's filter language: text -> an expression tree. Pure: no SQL, no database.

    filter  := or
    or      := and ("or" and)*
    and     := not ("and" not)*             "and" binds tighter than "or"
    not     := "not" not | "(" or ")" | term     "not" binds tighter than "and"
    term    := field op value | field ["not"] "in" "(" value ("," value)* ")"
    op      := = | == | != | <> | < | <= | > | >=
    value   := 'text' | "text" | number | true | false

Keywords are case-insensitive. Text takes the escapes \\\\ \\' \\" \\n \\t. Numbers are ASCII:
`3`, `-0.5`, `1e-3`.

Fields (`FIELD_HELP`): `config.<key>` and `params.<key>` (nested keys joined by dots),
`metrics.<key>[.best|.last|.min|.max]` (`last` when left out; `best` is the minimum of keys ending
in `loss` and the maximum of others, as the trainer judges `monitor`), `status`, `tag` (or `tags`:
the run carries the tag), `tag.<key>` (the value of a key:value tag `key=value`), `dataset`,
`model`, `name`, `id`, `sweep` (its id or name). A key segment is bare (ASCII letters, digits,
`_`, `-`, `/`: `metrics.val/iou.best` needs no quoting) or quoted in backticks for anything else:
`` metrics.`val/iou/road sign`.max ``, `` config.`odd.key` ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from server.errors import InvalidInput
from server.run.filter_tokens import (
    BARE_SEGMENT,
    Token,
    TokenKind,
    Value,
    syntax_error,
    tokenize,
)

MAX_FILTER_LENGTH = 4000
"""Characters of filter text; longer filters are refused before parsing."""
MAX_TERMS = 200
"""Comparisons in one filter (and values in all its `in` lists together)."""
MAX_DEPTH = 50
"""Parentheses and `not`s nested inside each other."""

Aggregate = Literal["best", "last", "min", "max"]
AGGREGATES: tuple[Aggregate, ...] = ("best", "last", "min", "max")
Operator = Literal["=", "!=", "<", "<=", ">", ">="]
Source = Literal[
    "config", "params", "metrics", "tag", "tag_value", "status", "dataset", "model", "name", "id",
    "sweep",
]  # fmt: skip
PLAIN_FIELDS: tuple[Source, ...] = ("status", "dataset", "model", "name", "id", "sweep")
KEYED_FIELDS: tuple[str, ...] = ("config", "params", "metrics", "tag")
FIELD_HELP = (
    "config.<key>, params.<key>, metrics.<key>[.best|.last|.min|.max], status, tag, tag.<key>, "
    "dataset, model, name, id, sweep"
)

_KEYWORDS = {"and", "or", "not", "in", "true", "false"}


@dataclass(frozen=True)
class Field:
    """What a term compares: `source` and, for keyed sources, the key's `path`.

    `text` is the field as written canonically (the aggregate spelled out), which is also its
    name as a column.
    """

    source: Source
    path: tuple[str, ...] = ()
    aggregate: Aggregate | None = None
    position: int = 1

    @property
    def key(self) -> str:
        """The metric key, tag key, or dotted config/params path."""
        return ".".join(self.path)

    @property
    def summary(self) -> Literal["last", "min", "max"]:
        """The stored summary a metric field reads: `best` is the minimum of keys ending in
        `loss` and the maximum of the others, as the trainer judges `monitor`."""
        if self.aggregate == "best":
            return "min" if self.key.endswith("loss") else "max"
        return "last" if self.aggregate is None else self.aggregate

    @property
    def text(self) -> str:
        if self.source in (*PLAIN_FIELDS, "tag"):
            return self.source
        prefix = "tag" if self.source == "tag_value" else self.source
        parts = [prefix, *(_segment_text(segment) for segment in self.path)]
        if self.aggregate is not None:
            parts.append(self.aggregate)
        return ".".join(parts)


def _segment_text(segment: str) -> str:
    if BARE_SEGMENT.fullmatch(segment) and segment not in AGGREGATES:
        return segment
    return "`" + segment.replace("`", "``") + "`"


@dataclass(frozen=True)
class Comparison:
    """`field op value`."""

    field: Field
    op: Operator
    value: Value


@dataclass(frozen=True)
class Membership:
    """`field in (values)`, or `field not in (values)` when `negated`."""

    field: Field
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Not:
    operand: Expression


@dataclass(frozen=True)
class And:
    operands: tuple[Expression, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expression, ...]


Expression = Comparison | Membership | Not | And | Or


def fields_of(expression: Expression) -> list[Field]:
    """Every field the expression compares, in the order written."""
    if isinstance(expression, Comparison | Membership):
        return [expression.field]
    if isinstance(expression, Not):
        return fields_of(expression.operand)
    return [field for operand in expression.operands for field in fields_of(operand)]


# --- fields ---------------------------------------------------------------------------------------


def field_of(token: Token, parameter: str) -> Field:
    """The field a name token spells, or a 422 saying which fields there are."""
    head, *rest = token.segments
    name = head.lower()
    position = token.position
    if name in PLAIN_FIELDS and not rest:
        return Field(source=name, position=position)
    if name in ("tag", "tags"):
        if not rest:
            return Field(source="tag", position=position)
        return Field(source="tag_value", path=(".".join(rest),), position=position)
    if name in ("config", "params") and rest:
        return Field(source=name, path=tuple(rest), position=position)  # type: ignore[arg-type]
    if name in ("metrics", "metric") and rest:
        aggregate: Aggregate = "last"
        if len(rest) > 1 and rest[-1] in AGGREGATES:
            aggregate = rest.pop()  # type: ignore[assignment]
        return Field(
            source="metrics", path=(".".join(rest),), aggregate=aggregate, position=position
        )
    if name in KEYED_FIELDS or name == "metric":
        raise syntax_error(parameter, position, f"{name} needs a key: {name}.<key>")
    raise syntax_error(parameter, position, f"unknown field {token.text!r}; fields: {FIELD_HELP}")


def parse_field(text: str, parameter: str) -> Field:
    """One field on its own (a column, a sort or a group), e.g. `metrics.val/iou.best`."""
    tokens = tokenize(text.strip(), parameter)
    if tokens[0].kind != "name" or tokens[0].text.lower() in _KEYWORDS:
        raise syntax_error(parameter, tokens[0].position, f"expected a field ({FIELD_HELP})")
    if tokens[1].kind != "end":
        raise syntax_error(parameter, tokens[1].position, "expected the end after the field")
    return field_of(tokens[0], parameter)


def parse_field_list(text: str, parameter: str, limit: int) -> list[Field]:
    """Comma-separated fields (`config.learning_rate,metrics.val/iou.best`), at most `limit`."""
    tokens = tokenize(text, parameter)
    fields: list[Field] = []
    index = 0
    while tokens[index].kind != "end":
        token = tokens[index]
        if token.kind != "name" or token.text.lower() in _KEYWORDS:
            raise syntax_error(parameter, token.position, f"expected a field ({FIELD_HELP})")
        fields.append(field_of(token, parameter))
        index += 1
        if tokens[index].kind == ",":
            index += 1
        elif tokens[index].kind != "end":
            raise syntax_error(parameter, tokens[index].position, "expected ',' or the end")
        if len(fields) > limit:
            raise syntax_error(parameter, token.position, f"at most {limit} fields")
    return fields


# --- parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token], parameter: str) -> None:
        self.tokens = tokens
        self.parameter = parameter
        self.index = 0
        self.depth = 0
        self.terms = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def at(self, kind: TokenKind) -> bool:
        return self.tokens[self.index].kind == kind

    def keyword(self, word: str) -> bool:
        token = self.token
        return token.kind == "name" and len(token.segments) == 1 and token.text.lower() == word

    def expected(self, what: str) -> InvalidInput:
        found = "the end" if self.at("end") else repr(self.token.text)
        return syntax_error(self.parameter, self.token.position, f"expected {what}, found {found}")

    def parse(self) -> Expression:
        expression = self.or_()
        if not self.at("end"):
            raise self.expected("'and', 'or' or the end")
        return expression

    def or_(self) -> Expression:
        operands = [self.and_()]
        while self.keyword("or"):
            self.index += 1
            operands.append(self.and_())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_(self) -> Expression:
        operands = [self.not_()]
        while self.keyword("and"):
            self.index += 1
            operands.append(self.not_())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_(self) -> Expression:
        if not (self.keyword("not") or self.at("(")):
            return self.term()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise syntax_error(
                self.parameter, self.token.position, f"nested deeper than {MAX_DEPTH} levels"
            )
        try:
            if self.keyword("not"):
                self.index += 1
                return Not(self.not_())
            self.index += 1
            inner = self.or_()
            if not self.at(")"):
                raise self.expected("')', 'and' or 'or'")
            self.index += 1
            return inner
        finally:
            self.depth -= 1

    def term(self) -> Expression:
        token = self.token
        if token.kind != "name" or token.text.lower() in _KEYWORDS:
            raise self.expected(f"a field ({FIELD_HELP}), 'not' or '('")
        field = field_of(token, self.parameter)
        self.index += 1
        self.count_terms(1)
        if self.at("op"):
            op = self.token.text
            self.index += 1
            return Comparison(field, op, self.value())  # type: ignore[arg-type]
        negated = self.keyword("not")
        if negated:
            self.index += 1
        if not self.keyword("in"):
            raise self.expected("'in'" if negated else "an operator (= != < <= > >=) or 'in'")
        self.index += 1
        if not self.at("("):
            raise self.expected("'(' to open the list of values")
        self.index += 1
        values = [self.value()]
        while self.at(","):
            self.index += 1
            values.append(self.value())
            self.count_terms(1)
        if not self.at(")"):
            raise self.expected("',' or ')'")
        self.index += 1
        return Membership(field, tuple(values), negated=negated)

    def count_terms(self, count: int) -> None:
        self.terms += count
        if self.terms > MAX_TERMS:
            raise syntax_error(
                self.parameter, self.token.position, f"more than {MAX_TERMS} terms and values"
            )

    def value(self) -> Value:
        token = self.token
        if token.kind in ("string", "number") and token.value is not None:
            self.index += 1
            return token.value
        if self.keyword("true") or self.keyword("false"):
            self.index += 1
            return token.text.lower() == "true"
        raise self.expected("a value: quoted text ('unet'), a number (1e-3), true or false")


def parse_filter(text: str, parameter: str = "filter") -> Expression | None:
    """The expression of filter text; None for blank text.

    Raises:
        InvalidInput: the text is too long, nested too deep, or not in the grammar; the message
            names the 1-based position and what was expected there.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidInput(
            f"{parameter}: longer than {MAX_FILTER_LENGTH} characters",
            [{"field": parameter, "message": f"at most {MAX_FILTER_LENGTH} characters"}],
        )
    tokens = tokenize(text, parameter)
    if tokens[0].kind == "end":
        return None
    return _Parser(tokens, parameter).parse()
