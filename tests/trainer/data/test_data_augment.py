"""Augmentation presets keep image and mask aligned; explicit steps fail early and helpfully."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from trainer.config import IGNORE_INDEX, AugmentStep
from trainer.data.augment import AugmentError, augmentation_notes, build_augmentation

SIZE = 48


def _pattern(channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """An image whose bright pixels are exactly the mask's class-1 pixels (asymmetric blob)."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[6:20, 4:30] = 1
    mask[20:40, 4:12] = 1
    image = np.repeat((mask * 255)[:, :, None], channels, axis=2)
    return image, mask


def _names(pipeline: A.Compose | None) -> list[str]:
    assert pipeline is not None
    return [type(step).__name__ for step in pipeline.transforms]


def test_presets() -> None:
    assert build_augmentation("none", channels=3) is None
    assert build_augmentation([], channels=3) is None
    light = _names(build_augmentation("light", channels=3))
    medium = _names(build_augmentation("medium", channels=3))
    strong = _names(build_augmentation("strong", channels=3))
    assert light == ["HorizontalFlip", "VerticalFlip", "RandomRotate90"]
    assert set(light) < set(medium)
    assert {"Affine", "RandomBrightnessContrast", "HueSaturationValue"} <= set(medium)
    assert set(medium) < set(strong)
    assert {"ElasticTransform", "GaussNoise", "GaussianBlur"} <= set(strong)
    with pytest.raises(AugmentError, match="allowed: none, light, medium, strong"):
        build_augmentation("extreme", channels=3)  # type: ignore[arg-type]


def test_light_preset_moves_image_and_mask_together() -> None:
    image, mask = _pattern()
    pipeline = build_augmentation("light", channels=3, seed=0)
    assert pipeline is not None
    changed = 0
    for _ in range(20):
        out = pipeline(image=image, mask=mask)
        np.testing.assert_array_equal(out["image"][:, :, 0] > 127, out["mask"] == 1)
        changed += not np.array_equal(out["mask"], mask)
    assert changed > 0


def test_horizontal_flip_flips_both() -> None:
    image, mask = _pattern()
    pipeline = build_augmentation([AugmentStep(name="HorizontalFlip", p=1.0)], channels=3)
    assert pipeline is not None
    out = pipeline(image=image, mask=mask)
    np.testing.assert_array_equal(out["mask"], mask[:, ::-1])
    np.testing.assert_array_equal(out["image"], image[:, ::-1])


@pytest.mark.parametrize("preset", ["medium", "strong"])
def test_geometric_presets_stay_aligned_and_pad_masks_with_ignore(preset: str) -> None:
    image, mask = _pattern()
    pipeline = build_augmentation(preset, channels=3, seed=1)  # type: ignore[arg-type]
    assert pipeline is not None
    padded = 0
    for _ in range(30):
        out = pipeline(image=image, mask=mask)
        labelled = out["mask"] != IGNORE_INDEX
        agree = (out["image"][:, :, 0] > 127) == (out["mask"] == 1)
        assert agree[labelled].mean() > 0.95
        padded += int((~labelled).sum())
    assert padded > 0


@pytest.mark.parametrize(("channels", "dtype"), [(1, np.uint8), (4, np.uint8), (3, np.float32)])
def test_other_images_leave_colour_transforms_out(channels: int, dtype: type) -> None:
    image_dtype = np.dtype(dtype).name
    pipeline = build_augmentation("strong", channels=channels, image_dtype=image_dtype, seed=0)
    pattern, mask = _pattern(channels)
    image = pattern if dtype is np.uint8 else (pattern / 255.0).astype(np.float32)
    assert pipeline is not None
    out = pipeline(image=image, mask=mask)
    assert out["image"].shape == (SIZE, SIZE, channels)
    assert out["image"].dtype == dtype
    names = _names(pipeline)
    assert "HueSaturationValue" not in names
    notes = augmentation_notes("strong", channels, image_dtype)
    if channels == 1:
        assert "RandomBrightnessContrast" in names
        assert notes == []
    else:
        assert "RandomBrightnessContrast" not in names
        assert len(notes) == 1
        assert "GaussNoise" in notes[0]
        assert f"{channels} channel" in notes[0]
    assert augmentation_notes("light", channels, image_dtype) == []


def test_unknown_transform_suggests_close_names() -> None:
    with pytest.raises(AugmentError) as caught:
        build_augmentation([AugmentStep(name="HorizontalFlp")], channels=3)
    message = str(caught.value)
    assert "step 1 'HorizontalFlp'" in message
    assert "did you mean HorizontalFlip" in message
    with pytest.raises(AugmentError, match="not an albumentations transform"):
        build_augmentation([AugmentStep(name="Compose")], channels=3)


def test_bad_params_name_the_step() -> None:
    with pytest.raises(
        AugmentError, match=r"step 2 GaussianBlur has no parameter 'blur_limt'.*blur_limit"
    ):
        build_augmentation(
            [
                AugmentStep(name="VerticalFlip"),
                AugmentStep(name="GaussianBlur", params={"blur_limt": 3}),
            ],
            channels=3,
        )
    with pytest.raises(AugmentError, match="step 1 Affine has bad params"):
        build_augmentation([AugmentStep(name="Affine", params={"rotate": "lots"})], channels=3)
    with pytest.raises(AugmentError, match="beside 'params'"):
        build_augmentation([AugmentStep(name="Affine", params={"p": 1.0})], channels=3)


def test_explicit_steps_build_with_their_probability() -> None:
    pipeline = build_augmentation(
        [
            AugmentStep(name="Affine", p=0.3, params={"rotate": [-10, 10]}),
            AugmentStep(name="RandomRotate90"),
        ],
        channels=3,
    )
    assert _names(pipeline) == ["Affine", "RandomRotate90"]
    assert pipeline is not None
    assert pipeline.transforms[0].p == 0.3


def test_seeded_pipelines_repeat() -> None:
    image, mask = _pattern()
    first = build_augmentation("strong", channels=3, seed=5)
    second = build_augmentation("strong", channels=3, seed=5)
    assert first is not None
    assert second is not None
    for _ in range(3):
        np.testing.assert_array_equal(
            first(image=image, mask=mask)["image"], second(image=image, mask=mask)["image"]
        )
