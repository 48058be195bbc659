"""Albumentations pipelines from a preset name or an explicit list of transform steps.

Built before training starts, so a misspelt transform or a bad parameter fails before epoch 1.
Every geometric transform moves image and mask together; padding in the mask is IGNORE_INDEX.
"""

from __future__ import annotations

import difflib
import inspect
import os
import warnings
from collections.abc import Sequence
from typing import Any

import cv2

from trainer.config import IGNORE_INDEX, AugmentPreset, AugmentStep

# albumentations checks PyPI for updates on import unless told not to; training never phones home.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A

PRESETS: tuple[str, ...] = ("none", "light", "medium", "strong")
COLOUR_TRANSFORMS: tuple[str, ...] = (
    "RandomBrightnessContrast",
    "HueSaturationValue",
    "GaussNoise",
)
"""Transforms that assume 8-bit pixel ranges (and, for HueSaturationValue, 3 channels)."""


class AugmentError(ValueError):
    """An augmentation spec that cannot be built; names the step and suggests fixes."""


def transform_names() -> list[str]:
    """Every albumentations transform usable as a step (image + mask or image-only)."""
    return sorted(
        name
        for name in dir(A)
        if isinstance(getattr(A, name), type)
        and issubclass(getattr(A, name), A.BasicTransform)
        and getattr(A, name) not in (A.BasicTransform, A.DualTransform, A.ImageOnlyTransform)
    )


def _colour_allowed(channels: int, image_dtype: str) -> bool:
    return channels in (1, 3) and image_dtype == "uint8"


def _preset_steps(preset: str, channels: int, image_dtype: str) -> list[A.BasicTransform]:
    steps: list[A.BasicTransform] = [
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
    ]
    if preset in ("medium", "strong"):
        steps.append(
            A.Affine(
                scale=(0.9, 1.1),
                translate_percent=(-0.0625, 0.0625),
                rotate=(-15, 15),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
                p=0.5,
            )
        )
        if _colour_allowed(channels, image_dtype):
            steps.append(
                A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5)
            )
            if channels == 3:
                steps.append(A.HueSaturationValue(p=0.3))
    if preset == "strong":
        steps.append(
            A.ElasticTransform(
                alpha=30.0,
                sigma=6.0,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
                p=0.25,
            )
        )
        if _colour_allowed(channels, image_dtype):
            steps.append(A.GaussNoise(std_range=(0.02, 0.06), p=0.25))
        steps.append(A.GaussianBlur(blur_limit=(3, 5), p=0.2))
    return steps


def _unknown_step(position: int, name: str) -> AugmentError:
    close = difflib.get_close_matches(name, transform_names(), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return AugmentError(
        f"augment step {position} {name!r} is not an albumentations transform{hint} "
        f"(names are class names such as HorizontalFlip, Affine, RandomBrightnessContrast)"
    )


def _check_params(position: int, step: AugmentStep, transform_class: type) -> None:
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = [
        name
        for name, parameter in inspect.signature(transform_class).parameters.items()
        if name not in ("self", "p", "strict") and parameter.kind in keywords
    ]
    for name in step.params:
        if name == "p":
            raise AugmentError(
                f"augment step {position} {step.name}: give 'p' beside 'params', not in it"
            )
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise AugmentError(
                f"augment step {position} {step.name} has no parameter {name!r}; {hint}"
                f"its parameters: {', '.join(accepted) or '(none besides p)'}"
            )


def _build_step(position: int, step: AugmentStep) -> A.BasicTransform:
    transform_class: Any = getattr(A, step.name, None)
    if not (isinstance(transform_class, type) and issubclass(transform_class, A.BasicTransform)):
        raise _unknown_step(position, step.name)
    _check_params(position, step, transform_class)
    try:
        with warnings.catch_warnings():
            # Deprecated or out-of-range arguments only warn in albumentations; here they fail.
            warnings.simplefilter("error")
            transform: A.BasicTransform = transform_class(**step.params, p=step.p)
    except (TypeError, ValueError, Warning) as error:
        raise AugmentError(
            f"augment step {position} {step.name} has bad params {step.params}: {error}"
        ) from error
    return transform


def _steps(
    spec: AugmentPreset | Sequence[AugmentStep], channels: int, image_dtype: str
) -> list[A.BasicTransform]:
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise AugmentError(f"unknown augment preset {spec!r}; allowed: {', '.join(PRESETS)}")
        return [] if spec == "none" else _preset_steps(spec, channels, image_dtype)
    return [_build_step(position, step) for position, step in enumerate(spec, start=1)]


def build_augmentation(
    spec: AugmentPreset | Sequence[AugmentStep],
    *,
    channels: int,
    image_dtype: str = "uint8",
    seed: int | None = None,
) -> A.Compose | None:
    """The training augmentation pipeline, or None for "none" (or an empty list).

    Args:
        spec: Preset ("light": flips and 90-degree rotations; "medium": + affine, brightness /
            contrast, hue / saturation; "strong": + elastic, noise, blur) or explicit steps.
        channels: Image channels; colour transforms need 1 or 3 (hue / saturation 3).
        image_dtype: Dtype of the arrays the pipeline sees ("uint8" or "float32"); colour
            transforms are left out for non-8-bit images.
        seed: Seed of the pipeline's own random generator (None: fresh entropy).

    Raises:
        AugmentError: unknown preset or transform name, or bad parameters.
    """
    steps = _steps(spec, channels, image_dtype)
    if not steps:
        return None
    return A.Compose(steps, seed=seed)


def augmentation_notes(
    spec: AugmentPreset | Sequence[AugmentStep], channels: int, image_dtype: str = "uint8"
) -> list[str]:
    """Warnings for the run: preset transforms left out for these images."""
    if not isinstance(spec, str) or spec not in ("medium", "strong"):
        return []
    if _colour_allowed(channels, image_dtype):
        return []
    left_out = [name for name in COLOUR_TRANSFORMS if spec == "strong" or name != "GaussNoise"]
    return [
        f"augment '{spec}': {', '.join(left_out)} left out: they need 1- or 3-channel 8-bit images "
        f"and these have {channels} channel(s) of {image_dtype}"
    ]
