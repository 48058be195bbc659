"""GET /api/v1/runs/keys: the keys the runs table offers as columns (config, params, metrics,
key:value tags), read from the runs there are."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tests.server.helpers import ApiClient
from tests.server.run_table_data import fill
from trainer.config import TrainConfig


def test_keys_list_config_params_metrics_and_tag_keys(
    client: ApiClient, session_factory: sessionmaker[Session]
) -> None:
    fill(session_factory)
    response = client.get("/api/v1/runs/keys")
    assert response.status_code == 200, response.text
    keys = response.json()
    assert set(TrainConfig.model_fields) <= set(keys["config"])
    assert {"deterministic", "extra"} <= set(keys["config"]), "keys only some runs have"
    assert keys["config"] == sorted(keys["config"])
    assert keys["params"] == ["alpha", "note"]
    assert keys["metrics"] == ["train/loss", "val/iou", "val/iou/road sign"]
    assert keys["tags"] == ["lr"]
