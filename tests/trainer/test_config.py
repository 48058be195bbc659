from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from trainer.config import (
    MODEL_NAMES,
    ConfigError,
    TrainConfig,
    config_json_schema,
    describe_validation_error,
    load_config,
    validate_config,
)


def test_defaults_train_something_sensible() -> None:
    cfg = validate_config({"dataset": "data/demo"})
    assert cfg.model == "unet"
    assert cfg.monitor == "val/iou"
    assert cfg.monitor_mode == "max"
    assert cfg.num_classes is None  # inferred from the masks


def test_unknown_key_names_the_key_and_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError) as error:
        validate_config({"dataset": "d", "learning_rat": 0.1})
    message = str(error.value)
    assert "learning_rat: unknown key" in message
    assert "learning_rate" in message


def test_bad_choice_lists_allowed_values() -> None:
    with pytest.raises(ConfigError) as error:
        validate_config({"dataset": "d", "model": "resnet"})
    assert "model: got 'resnet'" in str(error.value)
    for name in MODEL_NAMES:
        assert name in str(error.value)


def test_missing_dataset_is_reported() -> None:
    with pytest.raises(ConfigError, match="dataset: this key is required"):
        validate_config({})


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"loss": "bce", "num_classes": 3}, "needs num_classes 2"),
        ({"deep_supervision": True}, "only available with model 'unet++'"),
        ({"num_classes": 3, "class_names": ["a", "b"]}, "class_names has 2 entries"),
        ({"milestones": [10, 5]}, "increasing order"),
        ({"image_size": 4}, "between 8 and 16384"),
        ({"epochs": 0}, "epochs"),
        ({"monitor": "accuracy"}, "monitor"),
    ],
)
def test_inconsistent_values_are_rejected(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        validate_config({"dataset": "d", **data})


def test_yaml_file_with_overrides_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("dataset: d\nepochs: 3\n", encoding="utf-8")
    cfg = load_config(path, ["epochs=7", "image_size=[32, 48]", "learning_rate=1e-4", "amp=bf16"])
    assert cfg.epochs == 7
    assert cfg.image_size == (32, 48)
    assert cfg.learning_rate == pytest.approx(1e-4)
    assert cfg.amp == "bf16"


def test_json_file_and_square_size(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"dataset": "d", "image_size": 64}), encoding="utf-8")
    assert load_config(path).image_size == (64, 64)


def test_malformed_files_say_what_is_wrong(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid yaml"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(listing)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(None, ["epochs"])


def test_config_is_frozen_and_round_trips_through_json() -> None:
    cfg = validate_config({"dataset": "d", "augment": [{"name": "HorizontalFlip", "p": 0.5}]})
    with pytest.raises(ValueError, match="frozen"):
        cfg.epochs = 3  # type: ignore[misc]
    assert TrainConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_schema_groups_every_field_for_the_form() -> None:
    schema = config_json_schema()
    groups = set(schema["groups"])
    for name, prop in schema["properties"].items():
        assert prop.get("group") in groups, name
        assert prop.get("description"), name


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"dice_weight": float("inf")}, "dice_weight"),
        ({"augment": [{"name": "Blur", "p": float("nan")}]}, "augment.list[AugmentStep].0.p"),
        ({"seed": 2**32}, "seed"),
        ({"warmup_epochs": 2**31}, "warmup_epochs"),
        ({"early_stopping_patience": 10**12}, "early_stopping_patience"),
        ({"milestones": [10, 2**40]}, "milestones.1"),
        ({"monitor": "val/iou/" + "x" * 200}, "monitor"),
        ({"class_names": ["a" * 201, "b"]}, "class_names.0"),
        ({"dataset": "d" * 4097}, "dataset"),
        ({"gpus": 0}, "gpus"),
        ({"gpus": 65}, "gpus"),
        ({"lr_scaling": "square"}, "lr_scaling"),
    ],
)
def test_values_beyond_what_a_run_can_use_are_refused(data: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        TrainConfig.model_validate({"dataset": "d", **data})
    assert field in [item["field"] for item in describe_validation_error(error.value)]


def test_many_problems_are_described_in_a_bounded_list() -> None:
    data = {"dataset": "d", **{f"key_{index}": index for index in range(10_000)}}
    with pytest.raises(ValidationError) as error:
        TrainConfig.model_validate(data)
    items = describe_validation_error(error.value)
    assert len(items) == 51
    assert items[-1] == {"field": "config", "message": "and 9950 more problems not listed"}
    with pytest.raises(ConfigError) as loading:
        validate_config(data)
    assert len(str(loading.value)) < 50_000


def test_long_keys_and_values_are_cut_in_descriptions() -> None:
    with pytest.raises(ValidationError) as error:
        TrainConfig.model_validate({"dataset": "d", "k" * 10_000: 1, "loss": "x" * 10_000})
    items = describe_validation_error(error.value)
    assert all(len(item["field"]) <= 200 and len(item["message"]) < 1000 for item in items)
