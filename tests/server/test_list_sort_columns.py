"""Sorting the runs list by model and dataset (columns of the runs page), nulls last, with a
cursor walk that returns every run once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.helpers import ApiClient, create_external, valid_config


@pytest.mark.parametrize("sort", ["model", "-model", "dataset_name", "-dataset_name"])
def test_sort_by_model_and_dataset(client: ApiClient, shapes_dataset: Path, sort: str) -> None:
    for index in range(3):
        create_external(client, name=f"script-{index}")
    for model in ("unet++", "unet", "vgg16-unet", "unet"):
        response = client.post("/api/v1/runs", json={"config": valid_config(model=model)})
        assert response.status_code == 201, response.text
    whole = client.get(f"/api/v1/runs?sort={sort}&limit=500").json()["items"]
    field = sort.lstrip("-")
    values = [run[field] for run in whole]
    present = [value for value in values if value is not None]
    assert len(present) == 4 and values[:4] == present, "external runs (no model/dataset) last"
    assert present == sorted(present, reverse=sort.startswith("-"))
    walked, cursor = [], None
    while True:
        query = f"sort={sort}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/runs?{query}").json()
        walked += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [run["id"] for run in walked] == [run["id"] for run in whole]
