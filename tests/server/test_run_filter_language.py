"""The filter language's grammar on its own: precedence, quoting, numbers, lists, field
spellings, and syntax errors that name the position and what was expected."""

from __future__ import annotations

import pytest

from server.errors import InvalidInput
from server.run.filter_language import (
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_TERMS,
    And,
    Comparison,
    Expression,
    Field,
    Membership,
    Not,
    Or,
    parse_field,
    parse_field_list,
    parse_filter,
)


def _shape(expression: Expression | None) -> str:
    """A compact rendering of the tree: terms by field text, operators as prefixes."""
    if isinstance(expression, Comparison):
        return f"{expression.field.text}{expression.op}{expression.value!r}"
    if isinstance(expression, Membership):
        word = "notin" if expression.negated else "in"
        return f"{expression.field.text} {word} {list(expression.values)!r}"
    if isinstance(expression, Not):
        return f"not({_shape(expression.operand)})"
    if isinstance(expression, And | Or):
        word = "and" if isinstance(expression, And) else "or"
        return f"{word}(" + ", ".join(_shape(operand) for operand in expression.operands) + ")"
    return "none"


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("name = 'a' or name = 'b' and name = 'c'", "or(name='a', and(name='b', name='c'))"),
        ("name = 'a' and name = 'b' or name = 'c'", "or(and(name='a', name='b'), name='c')"),
        ("(name = 'a' or name = 'b') and name = 'c'", "and(or(name='a', name='b'), name='c')"),
        ("not name = 'a' and name = 'b'", "and(not(name='a'), name='b')"),
        ("not (name = 'a' and name = 'b')", "not(and(name='a', name='b'))"),
        ("not not name = 'a'", "not(not(name='a'))"),
        ("name='a' OR name='b' AnD NOT name='c'", "or(name='a', and(name='b', not(name='c')))"),
        ("id = 1 or id = 2 or id = 3", "or(id=1, id=2, id=3)"),
        ("((id = 1))", "id=1"),
    ],
)
def test_precedence_not_over_and_over_or(text: str, shape: str) -> None:
    assert _shape(parse_filter(text)) == shape


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("name = 'plain'", "plain"),
        ('name = "double"', "double"),
        ("name = 'it\\'s'", "it's"),
        ('name = "say \\"hi\\""', 'say "hi"'),
        ("name = 'back\\\\slash'", "back\\slash"),
        ("name = 'tab\\there'", "tab\there"),
        ("name = 'mixed \"quotes\"'", 'mixed "quotes"'),
        ('name = "it\'s"', "it's"),
        ("name = 'Zürich ✓ 東京'", "Zürich ✓ 東京"),
        ("name = ''", ""),
        ("name = '; drop table runs; --'", "; drop table runs; --"),
    ],
)
def test_quoted_text(text: str, value: str) -> None:
    parsed = parse_filter(text)
    assert isinstance(parsed, Comparison) and parsed.value == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("config.x = 3", 3),
        ("config.x = -3", -3),
        ("config.x = 1e-3", 1e-3),
        ("config.x = 1E+2", 100.0),
        ("config.x = .5", 0.5),
        ("config.x = -0.25", -0.25),
        ("config.x=+2.", 2.0),
        ("config.x = true", True),
        ("config.x = FALSE", False),
    ],
)
def test_numbers_and_booleans(text: str, value: object) -> None:
    parsed = parse_filter(text)
    assert isinstance(parsed, Comparison)
    assert parsed.value == value and type(parsed.value) is type(value)


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_every_operator(op: str) -> None:
    parsed = parse_filter(f"metrics.val/iou.best {op} 0.8")
    assert isinstance(parsed, Comparison) and parsed.op == op


def test_double_equals_and_angle_brackets_are_spelled_as_the_others() -> None:
    assert _shape(parse_filter("id == 1 and id <> 2")) == "and(id=1, id!=2)"


def test_in_and_not_in() -> None:
    assert _shape(parse_filter("config.model in ('unet', \"unet++\")")) == (
        "config.model in ['unet', 'unet++']"
    )
    assert _shape(parse_filter("status not in ('failed')")) == "status notin ['failed']"
    assert _shape(parse_filter("not status in ('a', 'b') or id in (1,2)")) == (
        "or(not(status in ['a', 'b']), id in [1, 2])"
    )


@pytest.mark.parametrize(
    ("text", "source", "key", "aggregate", "canonical"),
    [
        ("config.learning_rate", "config", "learning_rate", None, "config.learning_rate"),
        ("config.extra.depth", "config", "extra.depth", None, "config.extra.depth"),
        ("params.alpha", "params", "alpha", None, "params.alpha"),
        ("metrics.val/iou.best", "metrics", "val/iou", "best", "metrics.val/iou.best"),
        ("metrics.val/iou", "metrics", "val/iou", "last", "metrics.val/iou.last"),
        ("metrics.train/loss.min", "metrics", "train/loss", "min", "metrics.train/loss.min"),
        (
            "metrics.`val/iou/road sign`.max",
            "metrics",
            "val/iou/road sign",
            "max",
            "metrics.`val/iou/road sign`.max",
        ),
        ("metrics.`best`.last", "metrics", "best", "last", "metrics.`best`.last"),
        ("config.`odd``key`", "config", "odd`key", None, "config.`odd``key`"),
        ("tag", "tag", "", None, "tag"),
        ("tags", "tag", "", None, "tag"),
        ("tag.lr", "tag_value", "lr", None, "tag.lr"),
        ("STATUS", "status", "", None, "status"),
        ("sweep", "sweep", "", None, "sweep"),
    ],
)
def test_field_spellings(
    text: str, source: str, key: str, aggregate: str | None, canonical: str
) -> None:
    field = parse_field(text, "sort")
    assert (field.source, field.key, field.aggregate, field.text) == (
        source,
        key,
        aggregate,
        canonical,
    )
    assert parse_field(field.text, "sort").text == canonical


def test_a_column_list() -> None:
    fields = parse_field_list("config.learning_rate, metrics.val/iou.best,tag.lr", "columns", 5)
    assert [field.text for field in fields] == [
        "config.learning_rate",
        "metrics.val/iou.best",
        "tag.lr",
    ]
    with pytest.raises(InvalidInput, match="at most 2 fields"):
        parse_field_list("config.a,config.b,config.c", "columns", 2)


@pytest.mark.parametrize(
    ("text", "position", "says"),
    [
        ("name = ", 8, "expected a value"),
        ("name = 'a' and", 15, "expected a field"),
        ("(name = 'a'", 12, "expected ')'"),
        ("name = 'a')", 11, "expected 'and', 'or' or the end"),
        ("name 'a'", 6, "expected an operator"),
        ("name = 'unclosed", 8, "never closed"),
        ("name = 'bad \\q escape'", 13, "unknown escape"),
        ("nonsense = 1", 1, "unknown field 'nonsense'"),
        ("config = 1", 1, "config needs a key"),
        ("config.x = 1abc", 13, "a number cannot be followed by"),
        ("config.x = 1e999", 12, "out of range"),
        ("id in 1, 2", 7, "expected '('"),
        ("id in (1 2)", 10, "expected ',' or ')'"),
        ("id not = 1", 8, "expected 'in'"),
        ("name = 'a' ; drop", 12, "unexpected character ';'"),
        ("name = bare", 8, "expected a value"),
        ("and = 1", 1, "expected a field"),
        ("config.`unclosed = 1", 8, "never closed"),
        ('config.`has"quote` = 1', 12, "may not contain"),
        ("config. = 1", 8, "expected a key after '.'"),
        ("name = 'a\x00'", 10, "NUL"),
    ],
)
def test_syntax_errors_name_the_position_and_what_was_expected(
    text: str, position: int, says: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_filter(text)
    error = raised.value
    assert says in error.message, error.message
    assert f"position {position}:" in error.message, error.message
    assert error.details == [
        {"field": "filter", "message": error.details[0]["message"], "position": str(position)}
    ]


def test_blank_text_is_no_filter() -> None:
    assert parse_filter("") is None
    assert parse_filter("   \n\t ") is None


def test_bounded_input() -> None:
    with pytest.raises(InvalidInput, match=f"longer than {MAX_FILTER_LENGTH}"):
        parse_filter("id = 1 or " * 1000)
    with pytest.raises(InvalidInput, match="nested deeper"):
        parse_filter("(" * (MAX_DEPTH + 1) + "id = 1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(InvalidInput, match="nested deeper"):
        parse_filter("not " * (MAX_DEPTH + 1) + "id = 1")
    with pytest.raises(InvalidInput, match=f"more than {MAX_TERMS} terms"):
        parse_filter(" or ".join(["id = 1"] * (MAX_TERMS + 1)))
    with pytest.raises(InvalidInput, match=f"more than {MAX_TERMS} terms"):
        parse_filter("id in (" + ",".join(["1"] * (MAX_TERMS + 1)) + ")")
    assert parse_filter("(" * MAX_DEPTH + "id = 1" + ")" * MAX_DEPTH) is not None


def test_positions_are_kept_on_fields() -> None:
    parsed = parse_filter("id = 1 or  metrics.val/iou > 0.5")
    assert isinstance(parsed, Or)
    second = parsed.operands[1]
    assert isinstance(second, Comparison)
    assert second.field == Field("metrics", ("val/iou",), "last", position=12)
