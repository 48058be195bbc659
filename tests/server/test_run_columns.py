"""Chosen columns of the runs list, sorting by them and grouping by a key, on PostgreSQL and
SQLite: each row's values, nulls last either way, cursor walks that return every run once in
the order of the whole list, groups with counts, and 422s for keys no run has."""

from __future__ import annotations

import base64
import itertools
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.server.helpers import ApiClient
from tests.server.run_table_data import SWEEP, RunsTable


def _page(client: ApiClient, query: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/runs?{query}")
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def _walk(client: ApiClient, query: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        page = _page(client, f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def test_columns_add_each_rows_values(table: RunsTable) -> None:
    client, _ = table
    columns = "config.learning_rate,metrics.val/iou.best,tag.lr,metrics.val/iou,config.extra.depth"
    page = _page(client, f"columns={quote(columns + ',config.learning_rate')}&sort=name")
    assert page["columns"] == [
        "config.learning_rate",
        "metrics.val/iou.best",
        "tag.lr",
        "metrics.val/iou.last",
        "config.extra.depth",
    ]
    rows = {item["name"]: item["columns"] for item in page["items"]}
    assert rows["alpha"] == {
        "config.learning_rate": 0.001,
        "metrics.val/iou.best": 0.8,
        "tag.lr": "1e-3",
        "metrics.val/iou.last": 0.7,
        "config.extra.depth": None,
    }
    assert rows["delta"]["config.learning_rate"] == "1e-3"
    assert rows["o'brien"]["config.extra.depth"] == 3
    assert rows["script"] == {
        "config.learning_rate": None,
        "metrics.val/iou.best": 0.2,
        "tag.lr": None,
        "metrics.val/iou.last": 0.2,
        "config.extra.depth": None,
    }
    assert rows["gamma"]["metrics.val/iou.best"] is None
    losses = _page(client, "columns=" + quote("metrics.train/loss.best,params.note"))
    by_name = {item["name"]: item["columns"] for item in losses["items"]}
    assert by_name["alpha"]["metrics.train/loss.best"] == 0.2, "best of a loss is its minimum"
    assert by_name["script"]["params.note"] == "it's"
    assert _page(client, "")["items"][0]["columns"] == {}


def _values(items: list[dict[str, Any]], column: str) -> list[Any]:
    return [item["columns"].get(column) for item in items]


@pytest.mark.parametrize(
    ("sort", "column"),
    [
        ("config.batch_size", "config.batch_size"),
        ("-config.batch_size", "config.batch_size"),
        ("-metrics.val/iou.best", "metrics.val/iou.best"),
        ("metrics.val/iou.best", "metrics.val/iou.best"),
        ("metrics.train/loss.best", "metrics.train/loss.best"),
        ("params.alpha", "params.alpha"),
    ],
)
def test_sort_by_a_column_nulls_last_and_cursor_walks(
    table: RunsTable, sort: str, column: str
) -> None:
    client, _ = table
    query = f"sort={quote(sort)}&columns={quote(column)}"
    whole = _page(client, f"{query}&limit=500")["items"]
    values = _values(whole, column)
    present = [value for value in values if value is not None]
    assert values[: len(present)] == present, "runs without the value come last"
    assert present == sorted(present, reverse=sort.startswith("-"))
    for limit in (1, 2, 4):
        walked = _walk(client, query, limit)
        assert [item["id"] for item in walked] == [item["id"] for item in whole]
    # Ties are broken by id in the sort's direction.
    for first, second in itertools.pairwise(whole):
        if first["columns"][column] == second["columns"][column]:
            assert (first["id"] > second["id"]) == sort.startswith("-")


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("tag.lr", ["3e-4", "1e-3", "0.01", "high", None, None]),
        ("-tag.lr", ["0.01", "1e-3", "3e-4", "high", None, None]),
    ],
)
def test_sort_by_a_key_value_tag_numbers_first_and_cursor_walks(
    table: RunsTable, sort: str, expected: list[str | None]
) -> None:
    """A tag's values sort as numbers where they are numbers (not as text: 3e-4 < 1e-3),
    then text, then the runs without the tag, on both databases; a cursor walk agrees."""
    client, _ = table
    query = f"sort={quote(sort)}&columns=tag.lr"
    whole = _page(client, f"{query}&limit=500")["items"]
    assert _values(whole, "tag.lr") == expected
    for limit in (1, 2, 4):
        walked = _walk(client, query, limit)
        assert [item["id"] for item in walked] == [item["id"] for item in whole]


@pytest.mark.parametrize("sort", ["config.learning_rate", "-config.learning_rate"])
def test_a_key_with_numbers_and_text_still_walks_once(table: RunsTable, sort: str) -> None:
    client, _ = table
    whole = _page(client, f"sort={sort}&limit=500")["items"]
    walked = _walk(client, f"sort={sort}", 2)
    assert [item["id"] for item in walked] == [item["id"] for item in whole]
    assert whole[-1]["name"] == "script", "the run without a config comes last"


def test_filter_columns_and_sort_together(table: RunsTable) -> None:
    client, _ = table
    query = (
        "filter=" + quote("config.model = 'unet' or config.model = 'unet++'")
        + "&columns=" + quote("config.learning_rate,config.batch_size,config.model")
        + "&sort=" + quote("-config.batch_size")
    )  # fmt: skip
    walked = _walk(client, query, 1)
    assert [item["name"] for item in walked][:2] == ["o'brien", "beta"]
    assert {item["name"] for item in walked} == {"alpha", "beta", "o'brien", "delta"}
    assert _values(walked, "config.batch_size") == [32, 16, 8, 8]


def test_group_by_a_config_key(table: RunsTable) -> None:
    client, _ = table
    query = "group_by=config.model&sort=" + quote("-metrics.val/iou.best")
    page = _page(client, f"{query}&limit=500")
    assert page["group_by"] == "config.model"
    assert page["columns"] == ["config.model"]
    assert page["groups"] == [
        {"value": "unet", "count": 2},
        {"value": "unet++", "count": 2},
        {"value": "vgg16-unet", "count": 1},
        {"value": None, "count": 1},
    ]
    names = [item["name"] for item in page["items"]]
    assert names == ["o'brien", "alpha", "delta", "beta", "gamma", "script"]
    assert _values(page["items"], "config.model") == [
        "unet",
        "unet",
        "unet++",
        "unet++",
        "vgg16-unet",
        None,
    ]
    walked = _walk(client, query, 1)
    assert [item["name"] for item in walked] == names
    second = _page(client, f"{query}&limit=2")
    assert second["groups"] is not None
    after = _page(client, f"{query}&limit=2&cursor={second['next_cursor']}")
    assert after["groups"] is None, "groups come with the first page only"


@pytest.mark.parametrize(
    ("group_by", "first"),
    [("status", "failed"), ("model", "unet"), ("dataset", "shapes"), ("sweep", SWEEP)],
)
def test_group_by_a_field_of_the_row(table: RunsTable, group_by: str, first: Any) -> None:
    client, ids = table
    first = ids[first] if first == SWEEP else first
    page = _page(client, f"group_by={group_by}&sort=name&limit=500")
    assert page["columns"] == [group_by]
    values = _values(page["items"], group_by)
    present = [value for value in values if value is not None]
    assert values[: len(present)] == present and present == sorted(present)
    assert values[0] == first
    if group_by != "sweep":
        field = {"dataset": "dataset_name"}.get(group_by, group_by)
        assert values == [item[field] for item in page["items"]]
    counts = [group["count"] for group in page["groups"]]
    assert sum(counts) == 6
    walked = _walk(client, f"group_by={group_by}&sort=name", 2)
    assert [item["id"] for item in walked] == [item["id"] for item in page["items"]]


@pytest.mark.parametrize(
    ("query", "parameter", "says"),
    [
        ("columns=config.nope", "columns", "config keys there are: "),
        ("columns=metrics.val/iuo", "columns", "metric keys there are: "),
        ("columns=tag.nope", "columns", "key:value tag keys there are: lr"),
        ("columns=status", "columns", "allowed: config.<key>"),
        ("columns=config.a%20config.b", "columns", "expected ',' or the end"),
        ("sort=tag.lr.x%20y", "sort", "expected"),
        ("sort=tag.nope", "sort", "key:value tag keys there are: lr"),
        ("sort=config.nope", "sort", "no run has config.nope"),
        ("sort=bogus", "sort", "sort by one of created_at"),
        ("group_by=name", "group_by", "allowed: config.<key>"),
        ("group_by=metrics.nope.best", "group_by", "no run has metrics.nope.best"),
    ],
)
def test_unknown_or_refused_columns_are_422(
    table: RunsTable, query: str, parameter: str, says: str
) -> None:
    client, _ = table
    response = client.get(f"/api/v1/runs?{query}")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert says in error["message"], error
    assert error["details"][0]["field"] == parameter


def _cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


NOW = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("query", "data"),
    [
        ("sort=config.batch_size", {"s": "config.batch_size", "v": "a\u0000", "id": 1, "now": NOW}),
        ("sort=config.batch_size", {"s": "config.batch_size", "v": 1, "id": "1", "now": NOW}),
        ("sort=config.batch_size", {"s": "-config.batch_size", "v": 1, "id": 1, "now": NOW}),
        ("sort=metrics.val/iou.best", {"s": "metrics.val/iou.best", "v": "x", "id": 1, "now": NOW}),
        ("group_by=config.model", {"s": "config.model|-created_at", "v": NOW, "id": 1, "now": NOW}),
        ("group_by=status", {"s": "status|-created_at", "v": NOW, "g": 5, "id": 1, "now": NOW}),
        ("group_by=sweep", {"s": "sweep|-created_at", "v": NOW, "g": "x", "id": 1, "now": NOW}),
        ("sort=config.batch_size", {"s": "config.batch_size", "v": [1], "id": 1, "now": NOW}),
        ("sort=tag.lr", {"s": "tag.lr", "v": "1e-3", "id": 1, "now": NOW}),
        ("sort=tag.lr", {"s": "tag.lr", "v": [1, 2], "id": 1, "now": NOW}),
        ("sort=tag.lr", {"s": "tag.lr", "v": ["x", "y"], "id": 1, "now": NOW}),
        ("sort=tag.lr", {"s": "tag.lr", "v": [None, "a\u0000"], "id": 1, "now": NOW}),
        ("sort=tag.lr", {"s": "tag.lr", "v": [1e-3, "1e-3", 1], "id": 1, "now": NOW}),
        ("sort=tag.lr", {"s": "tag.lr", "v": [1e-3, "1e-3"], "id": 1, "now": NOW}),
    ],
)
def test_forged_cursors_of_column_sorts_are_422_or_harmless(
    table: RunsTable, query: str, data: Any
) -> None:
    client, _ = table
    response = client.get(f"/api/v1/runs?{query}&cursor={_cursor(data)}")
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["error"]["details"][0]["field"] == "cursor"
