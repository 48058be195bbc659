"""`segtrack predict`: masks for new images, at their original size, in the dataset's encoding.

Each input is preprocessed as in training (same resize, same normalisation), predicted in batches
of equally sized images, and the class probabilities are resized back to the original size before
the arg-max, so thin structures are not lost to nearest-neighbour upsampling of labels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from trainer.checkpoint import Checkpoint, load_checkpoint
from trainer.colors import default_palette
from trainer.config import TrainConfig
from trainer.data.dataset import resize_image, working_image
from trainer.data.image_files import IMAGE_SUFFIXES, read_image, write_mask
from trainer.data.mask_encoding import MaskEncoding
from trainer.inference import InputNormalizer, forward_logits
from trainer.models.registry import build_model
from trainer.previews import displayable
from trainer.runtime import resolve_device

logger = logging.getLogger(__name__)

OVERLAY_OPACITY = 0.5


class PredictError(ValueError):
    """Inputs that cannot be predicted (missing paths, wrong channel counts)."""


@dataclass(frozen=True)
class PredictOptions:
    """How to predict and what to write besides the masks."""

    batch_size: int = 4
    threshold: float = 0.5
    flip_tta: bool = False
    probabilities: bool = False
    overlays: bool = False
    device: str = "auto"


@dataclass(frozen=True)
class PredictSummary:
    """What `predict_paths` wrote."""

    masks: tuple[Path, ...]
    class_counts: dict[str, int]


def load_for_inference(checkpoint_path: Path, device: torch.device) -> tuple[Checkpoint, nn.Module]:
    """The checkpoint and its model in eval mode on `device`."""
    checkpoint = load_checkpoint(checkpoint_path, map_location=device)
    model = build_model(
        checkpoint.config,
        in_channels=checkpoint.in_channels,
        out_channels=checkpoint.out_channels,
        load_encoder_weights=False,  # the checkpoint holds them; the file may be long gone
    )
    model.load_state_dict(checkpoint.model_state)
    return checkpoint, model.to(device).eval()


def collect_inputs(inputs: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Expand files and folders into (image path, output path relative to the out folder).

    Folders are searched recursively and keep their sub-folder structure in the output, so two
    images with the same name in different folders do not overwrite each other.
    """
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            found.extend((path, path.relative_to(item).with_suffix(".png")) for path in files)
        elif item.is_file():
            found.append((item, Path(item.stem + ".png")))
        else:
            raise PredictError(f"input {item} does not exist")
    if not found:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise PredictError(
            f"no images found in {', '.join(map(str, inputs))} (looked for {suffixes})"
        )
    return found


def match_channels(image: npt.NDArray[Any], expected: int, path: Path) -> npt.NDArray[Any]:
    """Adapt grey -> RGB and RGBA -> RGB when the model expects 3 channels; otherwise insist."""
    channels = image.shape[2]
    if channels == expected:
        return image
    if expected == 3 and channels == 1:
        return np.repeat(image, 3, axis=2)
    if expected == 3 and channels == 4:
        return image[:, :, :3]
    raise PredictError(f"{path} has {channels} channel(s) but the model was trained on {expected}")


def training_size(cfg: TrainConfig, height: int, width: int) -> tuple[int, int]:
    """The (height, width) training would have resized an image of this size to."""
    if cfg.image_size is not None:
        return cfg.image_size
    if cfg.scale < 1.0:
        return max(1, round(height * cfg.scale)), max(1, round(width * cfg.scale))
    return height, width


def to_tensor(image: npt.NDArray[Any], size: tuple[int, int]) -> torch.Tensor:
    """(H, W, C) pixels -> (C, h, w) tensor at `size`, preprocessed exactly as in training."""
    pixels = working_image(image)
    if pixels.shape[:2] != size:
        pixels = resize_image(pixels, size)
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def probabilities_at(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) logits -> (N, K, H, W) class probabilities at the original size (K >= 2)."""
    logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
    if logits.shape[1] == 1:
        foreground = torch.sigmoid(logits)
        return torch.cat([1 - foreground, foreground], dim=1)
    return torch.softmax(logits, dim=1)


def classes_from(probabilities: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N, K, H, W) probabilities -> (N, H, W) class indices; binary uses `threshold`."""
    if probabilities.shape[1] == 2:
        return (probabilities[:, 1] > threshold).to(torch.uint8)
    return probabilities.argmax(dim=1).to(torch.uint8)


def overlay(
    image: npt.NDArray[np.uint8], classes: npt.NDArray[np.uint8], num_classes: int
) -> npt.NDArray[np.uint8]:
    """Blend class colours over the image; background (class 0) stays untouched."""
    rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    palette = np.array(default_palette(num_classes), dtype=np.float32)
    coloured = palette[classes]
    blended = rgb.astype(np.float32)
    foreground = classes > 0
    blended[foreground] = (1 - OVERLAY_OPACITY) * blended[foreground] + OVERLAY_OPACITY * coloured[
        foreground
    ]
    return blended.round().astype(np.uint8)


def _batches(
    items: list[tuple[Path, Path]], cfg: TrainConfig, in_channels: int, batch_size: int
) -> Iterator[list[tuple[Path, Path, npt.NDArray[Any], torch.Tensor]]]:
    """Group consecutive images that share a training size into batches."""
    batch: list[tuple[Path, Path, npt.NDArray[Any], torch.Tensor]] = []
    for source, relative in items:
        image = match_channels(read_image(source), in_channels, source)
        tensor = to_tensor(image, training_size(cfg, image.shape[0], image.shape[1]))
        if batch and (len(batch) == batch_size or batch[0][3].shape != tensor.shape):
            yield batch
            batch = []
        batch.append((source, relative, image, tensor))
    if batch:
        yield batch


@torch.inference_mode()
def predict_paths(
    checkpoint_path: Path,
    inputs: Sequence[Path],
    out_dir: Path,
    options: PredictOptions | None = None,
) -> PredictSummary:
    """Predict every image under `inputs` and write masks (plus optional extras) to `out_dir`.

    Writes `<name>.png` masks in the training masks' encoding (grey values, RGB colours or palette),
    and with options `<name>_prob.npy` (float16 (K, H, W) class probabilities) and
    `<name>_overlay.png` (colours blended over the image).
    """
    options = options or PredictOptions()
    device = resolve_device(options.device)
    checkpoint, model = load_for_inference(checkpoint_path, device)
    cfg = checkpoint.config
    encoding = MaskEncoding.from_dict(checkpoint.mask_encoding)
    normalizer = InputNormalizer(cfg.normalization, checkpoint.in_channels, device)
    num_classes = len(checkpoint.class_names)
    counts = dict.fromkeys(checkpoint.class_names, 0)
    written: list[Path] = []
    items = collect_inputs(inputs)
    for batch in _batches(items, cfg, checkpoint.in_channels, options.batch_size):
        stacked = torch.stack([tensor for *_, tensor in batch])
        logits = forward_logits(model, normalizer(stacked), flip_tta=options.flip_tta)
        for (_, relative, image, _), sample_logits in zip(batch, logits, strict=True):
            size = (image.shape[0], image.shape[1])
            probabilities = probabilities_at(sample_logits.unsqueeze(0), size)
            classes = classes_from(probabilities, options.threshold)[0].cpu().numpy()
            target = out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            write_mask(target, encoding.encode(classes), palette=encoding.palette)
            written.append(target)
            for index, total in enumerate(np.bincount(classes.ravel(), minlength=num_classes)):
                counts[checkpoint.class_names[index]] += int(total)
            if options.probabilities:
                np.save(
                    target.with_name(target.stem + "_prob.npy"),
                    probabilities[0].cpu().numpy().astype(np.float16),
                )
            if options.overlays:
                display = displayable(to_tensor(image, size))
                write_mask(
                    target.with_name(target.stem + "_overlay.png"),
                    overlay(display, classes, num_classes),
                )
    logger.info("wrote %d masks to %s", len(written), out_dir)
    return PredictSummary(masks=tuple(written), class_counts=counts)
