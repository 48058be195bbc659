"""Resource caps on submitted configs: refused with the value, the cap and the setting that
raises it; the admin's settings move the caps; `segtrack train`'s own validation has none."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.errors import InvalidInput
from server.run.config_caps import check_config_caps, max_num_workers, step_pixels
from server.settings import Settings
from tests.server.helpers import ApiClient, valid_config
from trainer.config import AugmentStep, TrainConfig

# Small caps, so that the 32 x 32 test images can be over them.
CAPS = {
    "max_image_pixels": 64 * 64,
    "max_batch_pixels": 4 * 64 * 64,
    "max_batch_size": 16,
    "max_num_workers": 1,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=CAPS)


def _refusal(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    messages = [item["message"] for item in response.json()["error"]["details"]]
    fields = [item["field"] for item in response.json()["error"]["details"]]
    assert field in fields, response.text
    return str(messages[fields.index(field)])


def _change_caps(client: ApiClient, **caps: int) -> None:
    """What an admin's new settings do (the app reads its settings at every request)."""
    client.app.state.settings = client.app.state.settings.model_copy(update=caps)


def _submit(client: ApiClient, **change: Any) -> httpx.Response:
    return client.post(
        "/api/v1/runs", json={"config": valid_config(**{"num_workers": 0, **change})}
    )


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (
            {"image_size": [64, 65]},
            "config.image_size",
            ["4160 pixels", "4096", "SEGTRACK_MAX_IMAGE_PIXELS"],
        ),
        ({"batch_size": 17}, "config.batch_size", ["17", "16", "SEGTRACK_MAX_BATCH_SIZE"]),
        ({"num_workers": 2}, "config.num_workers", ["2", "1", "SEGTRACK_MAX_NUM_WORKERS"]),
        (
            {"image_size": 64, "batch_size": 5},
            "config.batch_size",
            ["20480 pixels", "16384", "SEGTRACK_MAX_BATCH_PIXELS"],
        ),
        (
            {"augment": [{"name": "Resize", "params": {"height": 100_000, "width": 100_000}}]},
            "config.augment.0.params",
            ["Resize", "10000000000 pixels", "4096", "SEGTRACK_MAX_IMAGE_PIXELS"],
        ),
        (
            {"augment": [{"name": "RandomResizedCrop", "params": {"size": [128, 64]}}]},
            "config.augment.0.params",
            ["8192 pixels", "SEGTRACK_MAX_IMAGE_PIXELS"],
        ),
    ],
)
def test_configs_over_a_cap_are_refused_saying_which_setting_raises_it(
    client: ApiClient, shapes_dataset: Path, change: dict[str, Any], field: str, says: list[str]
) -> None:
    message = _refusal(_submit(client, **change), field)
    for part in says:
        assert part in message, message


def test_native_image_sizes_count_when_image_size_is_omitted(
    client: ApiClient, shapes_dataset: Path
) -> None:
    # 32 x 32 images: 16 of them are 16384 pixels, the batch cap; 17 are over the batch size cap.
    assert _submit(client, batch_size=16).status_code == 201
    _change_caps(client, max_image_pixels=32 * 32 - 1)
    message = _refusal(_submit(client), "config.image_size")
    assert "1024 pixels" in message and "native size" in message


def test_the_native_size_times_scale_is_what_counts(
    client: ApiClient, shapes_dataset: Path
) -> None:
    _change_caps(client, max_batch_pixels=2 * 32 * 32)
    _refusal(_submit(client, batch_size=4), "config.batch_size")
    assert _submit(client, batch_size=4, scale=0.5).status_code == 201


def test_configs_within_the_caps_are_queued(client: ApiClient, shapes_dataset: Path) -> None:
    response = _submit(
        client,
        image_size=64,
        batch_size=4,
        num_workers=1,
        augment=[{"name": "RandomCrop", "params": {"height": 48, "width": 48}}],
    )
    assert response.status_code == 201, response.text


def test_clones_are_held_to_the_caps_too(client: ApiClient, shapes_dataset: Path) -> None:
    run = _submit(client).json()
    response = client.post(
        f"/api/v1/runs/{run['id']}/clone", json={"overrides": {"batch_size": 64}}
    )
    _refusal(response, "config.batch_size")


# --- the rules themselves, with the default caps --------------------------------------------------


def _config(**change: Any) -> TrainConfig:
    return TrainConfig.model_validate({"dataset": "d", **change})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image_size": 16384}, "config.image_size"),
        ({"batch_size": 4096}, "config.batch_size"),
        ({"num_workers": 64}, "config.num_workers"),
        (
            {"augment": [{"name": "Resize", "params": {"height": 100_000, "width": 100_000}}]},
            "config.augment.0.params",
        ),
        ({"image_size": 2048, "batch_size": 32}, "config.batch_size"),
    ],
)
def test_the_default_caps_refuse_what_would_exhaust_a_worker(
    change: dict[str, Any], field: str
) -> None:
    if "num_workers" in change and (os.cpu_count() or 1) >= change["num_workers"]:
        pytest.skip("this host has that many cores")
    with pytest.raises(InvalidInput) as refused:
        check_config_caps(_config(**change), Settings())
    assert field in [item["field"] for item in refused.value.details]


def test_the_default_caps_accept_the_default_config() -> None:
    check_config_caps(_config(), Settings())
    check_config_caps(_config(image_size=1024, batch_size=16, augment="strong"), Settings())


def test_the_worker_cap_is_the_cores_but_never_below_the_default() -> None:
    assert max_num_workers(Settings()) == max(os.cpu_count() or 1, 2)
    assert max_num_workers(Settings(max_num_workers=0)) == 0


@pytest.mark.parametrize(
    ("name", "params", "pixels"),
    [
        ("Resize", {"height": 100, "width": 50}, 5000),
        ("PadIfNeeded", {"min_height": 10, "min_width": 20}, 200),
        ("RandomResizedCrop", {"size": [30, 40]}, 1200),
        ("LongestMaxSize", {"max_size": 100}, 10000),
        ("LongestMaxSize", {"max_size": [64, 128]}, 8192),
        ("RandomSizedCrop", {"min_max_height": [10, 90], "size": [20, 20]}, 8100),
        ("HorizontalFlip", {}, None),
        ("Resize", {"height": "big", "width": True}, None),
    ],
)
def test_augment_output_sizes(name: str, params: dict[str, Any], pixels: int | None) -> None:
    assert step_pixels(AugmentStep(name=name, params=params)) == pixels
