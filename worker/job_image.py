"""A predict_image job, in the job's process: one validation image of a run predicted from one of
its checkpoints, written as a preview sample is (`image.png`, and `truth.png` / `prediction.png`
class-index masks at the training resolution, through `server.preview.png_files`).

The image is found as training found it: the checkpoint's layout, mask suffix, validation
fraction and seed give the same validation part in the same order, and the name at the index
must be the one the server asked for (a dataset changed since training is refused, not
guessed at). The prediction is made as the trainer makes a preview's: the same resizing,
normalisation and flip TTA setting (`trainer.previews.PreviewSet`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from server.preview.png_files import write_preview_array
from trainer.data.dataset import SegmentationDataset
from trainer.data.layout import discover_layout
from trainer.data.mask_encoding import MaskEncoding
from trainer.data.split import evaluation_samples
from trainer.inference import InputNormalizer
from trainer.predict import load_for_inference
from trainer.previews import PreviewSet
from trainer.runtime import resolve_device
from worker.job_outcome import JobOutcome, JobRequest

logger = logging.getLogger(__name__)

IMAGE_NAMES = ("image.png", "truth.png", "prediction.png")


class ImageMismatchError(ValueError):
    """The dataset's validation image at the index is not the one the run validated."""


def predict_image(request: JobRequest, folder: Path) -> JobOutcome:
    parameters = request.parameters
    index, expected = int(parameters["image_index"]), str(parameters["image_name"])
    device = resolve_device("auto")
    checkpoint, model = load_for_inference(Path(request.checkpoint), device)
    cfg = checkpoint.config
    layout = discover_layout(
        Path(parameters["dataset_path"]),
        layout=cfg.layout,
        mask_suffix=cfg.mask_suffix,
        include_test=True,
    )
    samples = evaluation_samples(layout, "val", val_fraction=cfg.val_fraction, seed=cfg.seed)
    found = samples[index].name if index < len(samples) else None
    if found != expected:
        seen = f"{found!r}" if found is not None else f"no image (it has {len(samples)})"
        raise ImageMismatchError(
            f"validation image {index} of {layout.root} is {seen}, not {expected!r} as when "
            "the run validated; the dataset changed since training"
        )
    encoding = MaskEncoding.from_dict(checkpoint.mask_encoding)
    dataset = SegmentationDataset(
        [samples[index]], encoding, image_size=cfg.image_size, scale=cfg.scale
    )
    preview = PreviewSet.from_dataset(dataset, [0], [expected])
    normalizer = InputNormalizer(cfg.normalization, checkpoint.in_channels, device)
    (sample,) = preview.predict(model, normalizer, flip_tta=cfg.tta)
    write_preview_array(folder / "image.png", sample.image, labels=False)
    write_preview_array(folder / "truth.png", sample.truth, labels=True)
    write_preview_array(folder / "prediction.png", sample.prediction, labels=True)
    height, width = sample.prediction.shape
    present = sorted(int(value) for value in np.unique(sample.prediction))
    names = checkpoint.class_names
    epoch = checkpoint.state.epoch
    logger.info("validation image %d (%s) predicted with the weights of epoch %d", index,
                expected, epoch)  # fmt: skip
    result = {
        "epoch": epoch,
        "checkpoint": parameters["checkpoint"],
        "requested_epoch": parameters.get("requested_epoch"),
        "image": index,
        "name": expected,
        "width": width,
        "height": height,
        "tta": cfg.tta,
        "class_names": list(names),
        "classes_present": [names[value] for value in present if value < len(names)],
    }
    return JobOutcome("succeeded", result=result, files=list(IMAGE_NAMES))
