"""The runs list's `filter=` parameter through the API, on PostgreSQL and on SQLite: each term,
precedence, typed JSON comparisons, 422s for unknown keys (listing the keys there are) and for
syntax errors (naming the position), and injection attempts that stay harmless."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

import pytest

from tests.server.helpers import ApiClient
from tests.server.run_table_data import RUNS, SWEEP, RunsTable

ALL = {spec["name"] for spec in RUNS}


def _get(client: ApiClient, query: str) -> Any:
    return client.get(f"/api/v1/runs?limit=500&{query}")


def _names(client: ApiClient, expression: str, extra: str = "") -> set[str]:
    response = _get(client, f"filter={quote(expression)}{extra}")
    assert response.status_code == 200, response.text
    return {item["name"] for item in response.json()["items"]}


def _error(client: ApiClient, expression: str) -> dict[str, Any]:
    response = _get(client, f"filter={quote(expression)}")
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


CASES = [
    # config: typed comparisons (delta's learning_rate is the text '1e-3')
    ("config.learning_rate = 1e-3", {"alpha"}),
    ("config.learning_rate = 0.001", {"alpha"}),
    ("config.learning_rate = '1e-3'", {"delta"}),
    ("config.learning_rate <= 3e-4", {"gamma", "o'brien"}),
    ("config.learning_rate > 1e-4 and config.batch_size = 8", {"alpha"}),
    ("config.batch_size >= 16", {"beta", "o'brien"}),
    # precedence through SQL
    (
        "config.model = 'unet' or config.model = 'unet++' and config.batch_size = 16",
        {"alpha", "o'brien", "beta"},
    ),
    ("(config.model = 'unet' or config.model = 'unet++') and config.batch_size = 16", {"beta"}),
    ("not config.model = 'unet' and config.amp = 'off'", {"gamma", "delta"}),
    # in, not in, !=, not: runs without the key match `not` only
    ("config.model in ('unet++', 'vgg16-unet')", {"beta", "gamma", "delta"}),
    ("config.model not in ('unet++', 'vgg16-unet')", {"alpha", "o'brien"}),
    ("not config.model in ('unet++', 'vgg16-unet')", {"alpha", "o'brien", "script"}),
    ("config.model != 'unet'", {"beta", "gamma", "delta"}),
    ("not config.model = 'unet'", {"beta", "gamma", "delta", "script"}),
    ("config.learning_rate in (1e-3, '1e-3')", {"alpha", "delta"}),
    ("config.deterministic = true", {"o'brien"}),
    ("config.deterministic != false", {"o'brien"}),
    ("config.extra.depth >= 3", {"o'brien"}),
    ("config.extra.depth = 3", {"o'brien"}),
    ("config.batch_size = 8.0", {"alpha", "gamma", "delta"}),
    ("config.batch_size in (16, 32.0)", {"beta", "o'brien"}),
    ("config.batch_size < 123456789012345678901234567890", ALL - {"script"}),
    ("config.batch_size = 123456789012345678901234567890", set()),
    ("metrics.val/iou.best < 99999999999999999999999", ALL - {"gamma"}),
    ("tag.lr < 123456789012345678901234567890", {"alpha", "beta", "o'brien"}),
    ("config.amp > 'c'", {"alpha", "gamma", "o'brien", "delta"}),
    # params of external runs
    ("params.alpha = 0.5", {"script"}),
    ("params.note = 'it\\'s'", {"script"}),
    ('params.note = "it\'s"', {"script"}),
    # metrics: best is max for scores, min for losses
    ("metrics.val/iou.best > 0.8", {"o'brien", "delta"}),
    ("metrics.val/iou > 0.7", {"o'brien", "delta"}),
    ("metrics.val/iou.last >= 0.7", {"alpha", "o'brien", "delta"}),
    ("metrics.val/iou.min <= 0.1", {"alpha", "beta"}),
    ("metrics.val/iou.max in (0.6, 0.9)", {"beta", "o'brien"}),
    ("metrics.train/loss.best < 0.5", {"alpha"}),
    ("metrics.`val/iou/road sign`.max = 0.5", {"o'brien"}),
    ("metrics.val/iou.last != 0.7", {"beta", "o'brien", "script", "delta"}),
    ("not metrics.val/iou.best > 0.8", {"alpha", "beta", "gamma", "script"}),
    # status, tags, key:value tags, names, datasets, models, sweeps
    ("status = 'running'", {"o'brien", "script"}),
    ("status in ('failed', 'queued')", {"beta", "gamma"}),
    ("status != 'running'", {"alpha", "beta", "gamma", "delta"}),
    ("tag = 'baseline'", {"alpha", "gamma"}),
    ("tags = 'odd tag'", {"o'brien"}),
    ("tag != 'baseline'", {"beta", "o'brien", "script", "delta"}),
    ("tag not in ('baseline')", {"beta", "o'brien", "script", "delta"}),
    ("tag in ('baseline', 'lr=0.01')", {"alpha", "beta", "gamma"}),
    ("tag.lr = 1e-3", {"alpha"}),
    ("tag.lr = 0.001", {"alpha"}),
    ("tag.lr >= 3e-4", {"alpha", "beta", "o'brien"}),
    ("tag.lr = 'high'", {"delta"}),
    ("tag.lr != 1e-3", {"beta", "o'brien", "delta"}),
    ("not tag.lr = 1e-3", ALL - {"alpha"}),
    ("name = 'o\\'brien'", {"o'brien"}),
    ('name = "o\'brien"', {"o'brien"}),
    ("name in ('alpha', 'beta') or name >= 's'", {"alpha", "beta", "script"}),
    ("dataset = 'shapes'", ALL - {"script"}),
    ("model = 'unet++'", {"beta", "delta"}),
    ("sweep = 'lr-search'", {"delta"}),
    ("sweep != 'lr-search'", set()),
    ("not sweep = 'lr-search'", ALL - {"delta"}),
]


@pytest.mark.parametrize(("expression", "expected"), CASES)
def test_filter_terms(table: RunsTable, expression: str, expected: set[str]) -> None:
    client, _ = table
    assert _names(client, expression) == expected


def test_ids_sweep_ids_and_the_other_parameters(table: RunsTable) -> None:
    client, ids = table
    assert _names(client, f"id in ({ids['alpha']}, {ids['gamma']})") == {"alpha", "gamma"}
    middle = ids["o'brien"]
    assert _names(client, f"id > {middle}") == {"script", "delta"}
    assert _names(client, f"sweep = {ids[SWEEP]}") == {"delta"}
    assert _names(client, f"sweep in ({ids[SWEEP]}, 'nope')") == {"delta"}
    # The older parameters still work, AND-ed with the filter.
    assert _names(client, "config.batch_size = 8", "&status=succeeded") == {"alpha", "delta"}
    assert _names(client, "config.batch_size = 8", "&tag=baseline") == {"alpha", "gamma"}
    assert _names(client, "metrics.val/iou.best > 0", "&metric=val/iou>0.6") == {
        "alpha",
        "o'brien",
        "delta",
    }
    assert _names(client, "   ") == ALL


def test_the_csv_export_takes_the_filter(table: RunsTable) -> None:
    client, _ = table
    response = client.get(f"/api/v1/runs.csv?filter={quote('tag = ' + repr('baseline'))}")
    assert response.status_code == 200, response.text
    lines = response.text.strip().splitlines()
    assert len(lines) == 3 and "alpha" in response.text and "gamma" in response.text


@pytest.mark.parametrize(
    ("expression", "says", "lists"),
    [
        ("config.lerning_rate = 1", "no run has config.lerning_rate", ["learning_rate", "extra"]),
        ("config.extra.nope = 1", "no run has config.extra.nope", ["extra", "batch_size"]),
        ("params.beta = 1", "no run has params.beta", ["alpha", "note"]),
        ("metrics.val/iuo.best > 0", "no run has metrics.val/iuo.best", ["val/iou", "train/loss"]),
        ("tag.nope = 1", "no run has tag.nope", ["lr"]),
        (
            "config.model = 'unet' or metrics.`val/iou/road` > 1",
            "position 26",
            ["val/iou/road sign"],
        ),
    ],
)
def test_unknown_keys_are_422_listing_the_keys_there_are(
    table: RunsTable, expression: str, says: str, lists: list[str]
) -> None:
    client, _ = table
    error = _error(client, expression)
    assert says in error["message"], error
    keys = error["message"].split("there are: ", 1)[1]
    assert all(key in keys for key in lists), error
    assert error["details"][0]["field"] == "filter"


def test_a_train_config_key_no_run_set_is_no_error(
    table: RunsTable,
) -> None:
    client, _ = table
    assert _names(client, "config.monitor = 'val/iou'") == set()


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("metrics.val/iou > 'high'", "metrics.val/iou.last is a number"),
        ("status = 'bogus'", "status is one of queued"),
        ("status > 'a'", "takes = != in and not in"),
        ("tag = 5", "tag is text; quote the value"),
        ("id = 'x'", "id is a whole number"),
        ("id = 99999999999", "id is a whole number"),
        ("config.deterministic > true", "takes = != in and not in"),
        ("name = 'a' or", "expected a field"),
        ("name = 'x' or 1=1", "expected a field"),
    ],
)
def test_values_of_the_wrong_type_and_syntax_errors_are_422(
    table: RunsTable, expression: str, says: str
) -> None:
    client, _ = table
    error = _error(client, expression)
    assert says in error["message"], error
    assert "position" in error["message"]


INJECTIONS = [
    "name = '\\' or 1=1 --'",
    "name = \"' or '1'='1\"",
    "name = '; DROP TABLE runs; --'",
    "name = 'x'); DELETE FROM runs; --'",
    "name = '\u02bc or \u02bc1\u02bc=\u02bc1'",  # modifier-letter apostrophes
    "name = 'Robert\\\"); DROP TABLE runs;--'",
    "config.model = '\\\\'' ",
    "dataset = '%' or model = '_'",
    "tag.`lr' or '1'='1` = 1",
    "config.`x'); DROP TABLE runs; --` = 1",
    "metrics.`val/iou' --`.max > 0",
    "params.`$.note` = 'x'",
    "config.`a\\b` = 1",
    "config.`[0]` = 1",
    "config.`$` = 1",
    "config.`*` = 'x'",
    "config.`a.b`.`c'd` = 1",
    "config.`ключ` = 1",
    "config.`\U0001f600` = 1",
    "config.model.`0` = 'u'",
    "name = 'x' ; DROP TABLE runs",
    "name = 'x' -- comment",
    "name = 'x' /* comment */",
    "name = 'x' union select 1",
    "name = 'é́́́' or name = '\U0001f600'",
    "name = '" + "x" * 3900 + "'",
    "id in (" + ",".join(str(index) for index in range(-150, 0)) + ")",
]


@pytest.mark.parametrize("expression", INJECTIONS)
def test_injection_attempts_are_harmless(table: RunsTable, expression: str) -> None:
    client, _ = table
    response = _get(client, f"filter={quote(expression)}")
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["items"] == [], "no injected condition matched anything"
    survivors = _get(client, "").json()["items"]
    assert {item["name"] for item in survivors} == ALL


def test_huge_filters_are_refused_before_parsing(table: RunsTable) -> None:
    client, _ = table
    response = _get(client, f"filter={quote('id = 1 or ' * 600)}")
    assert response.status_code == 422
    assert len(response.content) < 5000


FIELDS = [
    "config.learning_rate", "config.model", "config.extra.depth", "config.deterministic",
    "params.alpha", "metrics.val/iou.best", "metrics.train/loss", "tag", "tag.lr", "status",
    "name", "id", "sweep", "dataset", "model",
]  # fmt: skip
VALUES = ["'unet'", "'running'", '"o\'brien"', "1e-3", "3", "-1", "true", "0.8", "'x'"]
JUNK = ["(", ")", ",", "'", "`", "\\", "and", "or", "not", "in", "=", ";", "--", "1=1"]


def _expression(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth < 3 and roll < 0.3:
        word = rng.choice(["and", "or"])
        return f"{_expression(rng, depth + 1)} {word} {_expression(rng, depth + 1)}"
    if depth < 3 and roll < 0.4:
        return f"not ({_expression(rng, depth + 1)})"
    field = rng.choice(FIELDS)
    if roll < 0.55:
        values = ", ".join(rng.choice(VALUES) for _ in range(rng.randint(1, 3)))
        return f"{field} {rng.choice(['in', 'not in'])} ({values})"
    return f"{field} {rng.choice(['=', '!=', '<', '<=', '>', '>='])} {rng.choice(VALUES)}"


def test_random_filters_never_fail_the_server(table: RunsTable) -> None:
    """Generated filters, and the same with a token inserted or dropped, answer 200 or a 422
    (a wrong type, an unknown status, a syntax error), never a server error."""
    client, _ = table
    rng = random.Random(12)
    answered = {200: 0, 422: 0}
    for _ in range(150):
        words = _expression(rng).split(" ")
        if rng.random() < 0.4:
            spot = rng.randrange(len(words) + 1)
            if rng.random() < 0.5 and spot < len(words):
                del words[spot]
            else:
                words.insert(spot, rng.choice(JUNK))
        expression = " ".join(words)
        response = _get(client, f"filter={quote(expression)}")
        assert response.status_code in answered, (expression, response.text)
        answered[response.status_code] += 1
    assert answered[200] > 10 and answered[422] > 10, answered
