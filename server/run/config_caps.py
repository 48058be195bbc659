"""Resource caps on the training configs the API accepts, set by the admin (`SEGTRACK_MAX_*`).

A config that would exhaust a worker (16384 x 16384 images, a batch of 4096, 64 loader
processes on an 8-core host, an augment `Resize` to 100000 x 100000) is refused when it is
submitted, with a 422 that gives the value, the cap and the setting that raises it, rather than
failing (or swapping a shared host to a halt) once a worker takes it. `segtrack train` on one's
own machine has no caps.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from server.errors import InvalidInput
from server.settings import Settings
from trainer.config import AugmentStep, TrainConfig

# Augment parameters that give an output size, as albumentations names them: pairs of sides
# (Resize, RandomCrop, CenterCrop, PadIfNeeded, Crop...), and single values that are a side or
# a [height, width] pair (RandomResizedCrop's size, LongestMaxSize's max_size...).
_SIDE_PAIRS = (("height", "width"), ("min_height", "min_width"), ("y_max", "x_max"))
_SIZE_VALUES = ("size", "max_size", "max_size_hw", "min_max_height")


def max_num_workers(settings: Settings) -> int:
    """The admin's cap on `num_workers`, or the host's cores (never below the trainer's default,
    so that a default config is always accepted)."""
    if settings.max_num_workers is not None:
        return settings.max_num_workers
    default = TrainConfig.model_fields["num_workers"].default
    return max(os.cpu_count() or 1, int(default))


def _number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _area(name: str, value: Any) -> int | None:
    """The pixels a size parameter asks for: a side squared, or a [height, width] product."""
    side = _number(value)
    if side is not None:
        return side * side
    if isinstance(value, list | tuple) and value:
        sides = [_number(item) for item in value]
        if any(item is None for item in sides):
            return None
        known = [item for item in sides if item is not None]
        if len(known) == 2 and name != "min_max_height":
            return known[0] * known[1]
        return max(known) ** 2
    return None


def step_pixels(step: AugmentStep) -> int | None:
    """The largest output, in pixels, an augment step's size parameters ask for (None: the step
    does not resize)."""
    params = step.params
    areas = [
        height * width
        for height_name, width_name in _SIDE_PAIRS
        if (height := _number(params.get(height_name))) is not None
        and (width := _number(params.get(width_name))) is not None
    ]
    areas += [area for name in _SIZE_VALUES if (area := _area(name, params.get(name))) is not None]
    return max(areas) if areas else None


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _image_problems(config: TrainConfig, settings: Settings) -> list[dict[str, str]]:
    cap = settings.max_image_pixels
    problems: list[dict[str, str]] = []
    if config.image_size is not None:
        height, width = config.image_size
        if height * width > cap:
            problems.append(
                _problem(
                    "config.image_size",
                    f"{height} x {width} is {height * width} pixels, over the cap of {cap} per "
                    "image (SEGTRACK_MAX_IMAGE_PIXELS raises it)",
                )
            )
    if isinstance(config.augment, list):
        for index, step in enumerate(config.augment):
            pixels = step_pixels(step)
            if pixels is not None and pixels > cap:
                problems.append(
                    _problem(
                        f"config.augment.{index}.params",
                        f"{step.name} makes images of up to {pixels} pixels, over the cap of "
                        f"{cap} per image (SEGTRACK_MAX_IMAGE_PIXELS raises it)",
                    )
                )
    return problems


def _batch_problem(
    config: TrainConfig, settings: Settings, image_pixels: int | None
) -> list[dict[str, str]]:
    """The batch's pixels: the largest image (after resizing and augmenting) times batch_size."""
    augmented = (
        [pixels for step in config.augment if (pixels := step_pixels(step)) is not None]
        if isinstance(config.augment, list)
        else []
    )
    sizes = [pixels for pixels in (image_pixels, *augmented) if pixels is not None]
    if not sizes:
        return []
    batch = max(sizes) * config.batch_size
    cap = settings.max_batch_pixels
    if batch <= cap:
        return []
    return [
        _problem(
            "config.batch_size",
            f"a batch of {config.batch_size} images of {max(sizes)} pixels is {batch} pixels, "
            f"over the cap of {cap} (SEGTRACK_MAX_BATCH_PIXELS raises it); use a smaller "
            "batch_size or image_size",
        )
    ]


def _configured_pixels(config: TrainConfig) -> int | None:
    if config.image_size is None:
        return None
    height, width = config.image_size
    return height * width


def _native_pixels(config: TrainConfig, report: Mapping[str, Any]) -> int | None:
    """The largest image of the dataset after `scale`, when the config keeps native sizes."""
    if config.image_size is not None:
        return None
    sizes = report.get("image_sizes") or {}
    height, width = _number(sizes.get("max_height")), _number(sizes.get("max_width"))
    if height is None or width is None:
        return None
    if config.scale < 1.0:
        height, width = max(1, round(height * config.scale)), max(1, round(width * config.scale))
    return height * width


def _refuse(problems: list[dict[str, str]]) -> None:
    if problems:
        first = problems[0]
        raise InvalidInput(
            f"the config asks for more than this server allows: {first['field']}: "
            f"{first['message']}",
            problems,
        )


def check_config_caps(config: TrainConfig, settings: Settings) -> None:
    """Refuse a config over the caps that the config alone decides (before its dataset is read).

    Raises:
        InvalidInput: one `{field, message}` per cap passed, each with the value, the cap and
            the setting that raises it.
    """
    problems: list[dict[str, str]] = []
    if config.batch_size > settings.max_batch_size:
        problems.append(
            _problem(
                "config.batch_size",
                f"{config.batch_size} is over the cap of {settings.max_batch_size} "
                "(SEGTRACK_MAX_BATCH_SIZE raises it)",
            )
        )
    workers = max_num_workers(settings)
    if config.num_workers > workers:
        problems.append(
            _problem(
                "config.num_workers",
                f"{config.num_workers} is over the cap of {workers} (the server's CPU cores "
                "unless SEGTRACK_MAX_NUM_WORKERS says otherwise)",
            )
        )
    problems += _image_problems(config, settings)
    if not any(problem["field"] == "config.batch_size" for problem in problems):
        problems += _batch_problem(config, settings, _configured_pixels(config))
    _refuse(problems)


def check_dataset_caps(config: TrainConfig, settings: Settings, report: Mapping[str, Any]) -> None:
    """Refuse a config that keeps the dataset's native image size when that size (after
    `scale`), alone or times batch_size, is over the caps.

    Raises:
        InvalidInput: as `check_config_caps`.
    """
    pixels = _native_pixels(config, report)
    if pixels is None:
        return
    problems: list[dict[str, str]] = []
    cap = settings.max_image_pixels
    if pixels > cap:
        problems.append(
            _problem(
                "config.image_size",
                f"the dataset's images are up to {pixels} pixels (native size x scale), over "
                f"the cap of {cap} per image (SEGTRACK_MAX_IMAGE_PIXELS raises it); set "
                "image_size or a smaller scale",
            )
        )
    else:
        problems += _batch_problem(config, settings, pixels)
    _refuse(problems)
