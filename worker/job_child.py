"""The process of one job: `python -m worker.job_child JOB_DIR`.

A worker starts one per job (`worker.job_execution`) on a slot of its own, with
`CUDA_VISIBLE_DEVICES` set to the slot's GPU, so CUDA lives here and never in the worker. It
reads `request.json` from the job's folder, does the job with the trainer's own functions
(`trainer.evaluate.evaluate_checkpoint`, `trainer.predict.predict_paths`,
`trainer.export.export_model`; one validation image: `worker.job_image`), writes the output
files beside it and `outcome.json` saying how it went; it touches no database.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sys
import traceback
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.job.paths import EXPORT_NAMES, MASKS_ZIP, OUTCOME_NAME
from trainer.checkpoint import CheckpointError
from trainer.data.errors import DatasetLayoutError
from trainer.evaluate import EvaluateError, EvaluateOptions, MissingSplitError, evaluate_checkpoint
from trainer.export import ExportError, export_model
from trainer.predict import PredictError, PredictOptions, predict_paths
from worker.job_image import ImageMismatchError, predict_image
from worker.job_outcome import REQUEST_NAME, JobOutcome, JobRequest
from worker.run_child import die_with_parent

logger = logging.getLogger(__name__)

MAX_LISTED_IMAGES = 200
"""Predicted images whose mask and overlay are listed (and downloadable) one by one; the zip
holds every mask."""


def finite(value: Any) -> Any:
    """`value` with every NaN or infinity (an undefined score) made None: JSON columns refuse
    them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def evaluate(request: JobRequest, folder: Path) -> JobOutcome:
    parameters = request.parameters
    evaluation = evaluate_checkpoint(
        Path(request.checkpoint),
        Path(parameters["dataset_path"]),
        EvaluateOptions(split=parameters["split"]),
    )
    written = evaluation.write(folder)
    summary = evaluation.to_dict()
    result = {
        "epoch": evaluation.epoch,
        "split": evaluation.split,
        "dataset": parameters["dataset"],
        "num_images": evaluation.num_images,
        "class_names": list(evaluation.class_names),
        "metrics": summary["metrics"],
        "per_class": evaluation.per_class(),
        "confusion_matrix": summary["confusion_matrix"],
    }
    return JobOutcome(
        "succeeded",
        result=finite(result),
        files=[path.relative_to(folder).as_posix() for path in written],
    )


def export(request: JobRequest, folder: Path) -> JobOutcome:
    export_format = request.parameters["format"]
    out = folder / EXPORT_NAMES[export_format]
    exported = export_model(Path(request.checkpoint), export_format, out)
    result = {
        "format": exported.format,
        "size_bytes": out.stat().st_size,
        "max_abs_diff": exported.max_abs_diff,
    }
    return JobOutcome("succeeded", result=finite(result), files=[out.name])


def predict(request: JobRequest, folder: Path) -> JobOutcome:
    parameters = request.parameters
    masks_dir, overlays_dir = folder / "masks", folder / "overlays"
    summary = predict_paths(
        Path(request.checkpoint),
        [Path(parameters["inputs_path"])],
        masks_dir,
        PredictOptions(flip_tta=bool(parameters.get("tta")), overlays=True),
    )
    images = []
    for mask in summary.masks:
        relative = mask.relative_to(masks_dir)
        overlay = mask.with_name(mask.stem + "_overlay.png")
        target = overlays_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(overlay, target)
        images.append(
            {
                "name": relative.as_posix(),
                "mask": f"masks/{relative.as_posix()}",
                "overlay": f"overlays/{relative.as_posix()}",
            }
        )
    with zipfile.ZipFile(folder / MASKS_ZIP, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for mask in summary.masks:
            archive.write(mask, mask.relative_to(masks_dir).as_posix())
    listed = images[:MAX_LISTED_IMAGES]
    result = {
        "count": len(images),
        "class_counts": summary.class_counts,
        "tta": bool(parameters.get("tta")),
        "images": listed,
    }
    files = [MASKS_ZIP, *(item[kind] for item in listed for kind in ("mask", "overlay"))]
    return JobOutcome("succeeded", result=result, files=files)


KINDS = {
    "evaluate": evaluate,
    "export": export,
    "predict": predict,
    "predict_image": predict_image,
}


def do_job(folder: Path) -> JobOutcome:
    """The job described in `folder`'s request; every error becomes a failed outcome."""
    try:
        request = JobRequest.read(folder / REQUEST_NAME)
        return KINDS[request.kind](request, folder)
    except MissingSplitError as error:
        available = ", ".join(error.available) or "none"
        return JobOutcome("failed", f"{error} (splits there are: {available})")
    except (
        EvaluateError,
        DatasetLayoutError,
        PredictError,
        ExportError,
        CheckpointError,
        ImageMismatchError,
    ) as error:
        return JobOutcome("failed", str(error), traceback.format_exc())
    except Exception as error:
        logger.exception("job failed")
        return JobOutcome("failed", f"{type(error).__name__}: {error}", traceback.format_exc())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.job_child", description=__doc__)
    parser.add_argument("folder", type=Path, help="the job's folder, holding request.json")
    args = parser.parse_args(argv)
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    outcome = do_job(args.folder)
    outcome.write(args.folder / OUTCOME_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
