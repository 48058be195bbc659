"""The torch Dataset over image/mask samples, and the collate function that pads mixed sizes.

Hot path: one call per image per epoch in DataLoader workers. 8-bit images stay uint8 all the way
to the device (4x less to copy than float32); the training loop converts and normalises there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from trainer.config import IGNORE_INDEX
from trainer.data.image_files import read_image, read_mask
from trainer.data.layout import Sample
from trainer.data.mask_encoding import MaskEncoding, combine_class_masks

if TYPE_CHECKING:
    import albumentations as A

_UINT16_MAX = 65535.0


def working_image(raw: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """uint8 stays uint8; 16-bit becomes float32 in [0, 1]; float stays float32 as stored."""
    if raw.dtype == np.uint16:
        return raw.astype(np.float32) / np.float32(_UINT16_MAX)
    return raw


def _resize(array: npt.NDArray[Any], size: tuple[int, int], interpolation: int) -> npt.NDArray[Any]:
    """cv2.resize to (height, width), keeping a trailing channel axis cv2 drops for 1 channel."""
    resized: npt.NDArray[Any] = cv2.resize(array, (size[1], size[0]), interpolation=interpolation)
    if array.ndim == 3 and resized.ndim == 2:
        resized = resized[:, :, None]
    return resized


def resize_image(image: npt.NDArray[Any], size: tuple[int, int]) -> npt.NDArray[Any]:
    """(H, W, C) image to `size` (height, width): area averaging to shrink, bilinear to enlarge."""
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    return _resize(image, size, cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class SegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Reads, decodes, resizes and augments one sample.

    Items are `(image, mask)`: image (C, H, W), uint8 for 8-bit files and float32 otherwise
    (16-bit scaled to [0, 1]); mask (H, W) uint8 class indices with IGNORE_INDEX (255) ignored.
    No normalisation happens here.

    Args:
        samples: Image/mask files.
        encoding: Raw mask value -> class index mapping.
        image_size: Resize every sample to (height, width); INTER_AREA when shrinking images,
            INTER_LINEAR when enlarging, INTER_NEAREST for masks.
        scale: Downscaling factor used when `image_size` is None (1.0 keeps the native size).
        transform: Albumentations pipeline applied after resizing (training only).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        encoding: MaskEncoding,
        *,
        image_size: tuple[int, int] | None = None,
        scale: float = 1.0,
        transform: A.Compose | None = None,
    ) -> None:
        self.samples = tuple(samples)
        self.encoding = encoding
        self.image_size = image_size
        self.scale = scale
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def _target_size(self, height: int, width: int) -> tuple[int, int] | None:
        if self.image_size is not None:
            return self.image_size
        if self.scale < 1.0:
            return max(1, round(height * self.scale)), max(1, round(width * self.scale))
        return None

    def _mask(self, sample: Sample, shape: tuple[int, int]) -> npt.NDArray[np.uint8]:
        if self.encoding.mode == "class-folders":
            raws = [read_mask(path) if path is not None else None for path in sample.masks]
            return combine_class_masks(raws, shape)
        path = sample.masks[0]
        if path is None:
            raise ValueError(f"sample {sample.name} has no mask file")
        return self.encoding.decode(read_mask(path))

    def load_arrays(
        self, index: int, augmentation_seed: int | None = None
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint8]]:
        """The sample as numpy arrays: image (H, W, C) and mask (H, W), resized and augmented.

        With `augmentation_seed`, the augmentation is exactly reproducible for that seed.
        """
        sample = self.samples[index]
        image = working_image(read_image(sample.image))
        height, width = image.shape[:2]
        mask = self._mask(sample, (height, width))
        if mask.shape != (height, width):
            raise ValueError(
                f"sample {sample.name}: mask is {mask.shape[0]}x{mask.shape[1]} but the image is "
                f"{height}x{width}; inspect the dataset to list every mismatch"
            )
        target = self._target_size(height, width)
        if target is not None and target != (height, width):
            image = resize_image(image, target)
            mask = _resize(mask, target, cv2.INTER_NEAREST)
        if self.transform is not None:
            if augmentation_seed is not None:
                self.transform.set_random_seed(augmentation_seed)
            augmented = self.transform(image=image, mask=mask)
            image, mask = augmented["image"], augmented["mask"]
            if image.ndim == 2:
                image = image[:, :, None]
        return image, mask

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """`item` is an index, or `(index, augmentation seed)` as EpochSampler yields them."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        image, mask = self.load_arrays(index, seed)
        return (
            torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            torch.from_numpy(np.ascontiguousarray(mask)),
        )


def _as_float(image: torch.Tensor) -> torch.Tensor:
    return image.float() / 255.0 if image.dtype == torch.uint8 else image.float()


def pad_collate(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack `(image, mask)` items into `(B, C, H, W)` images and `(B, H, W)` masks.

    Items of different sizes are padded at the bottom and right to the largest height and width:
    images with 0, masks with IGNORE_INDEX so padding counts in no loss or metric. A batch mixing
    8-bit and other images becomes float32 in [0, 1].
    """
    images = [image for image, _ in batch]
    masks = [mask for _, mask in batch]
    if len({image.dtype for image in images}) > 1:
        images = [_as_float(image) for image in images]
    if len({image.shape for image in images}) == 1 and len({mask.shape for mask in masks}) == 1:
        return torch.stack(images), torch.stack(masks)
    height = max(image.shape[1] for image in images)
    width = max(image.shape[2] for image in images)
    channels = images[0].shape[0]
    padded_images = images[0].new_zeros((len(batch), channels, height, width))
    padded_masks = masks[0].new_full((len(batch), height, width), IGNORE_INDEX)
    for position, (image, mask) in enumerate(zip(images, masks, strict=True)):
        padded_images[position, :, : image.shape[1], : image.shape[2]] = image
        padded_masks[position, : mask.shape[0], : mask.shape[1]] = mask
    return padded_images, padded_masks
