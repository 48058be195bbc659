"""Where a job's files live, under its run's folder (see `server.artifacts`):

    <artifacts>/runs/<run>/jobs/<job>/
        outcome.json                 how the job's process ended (read by the worker)
        job.log                      the job process's output
        metrics.json, per_class.csv, confusion_matrix.csv, per_image.csv   an evaluation
        model.onnx | model.pt        an export
        masks/<name>.png, overlays/<name>.png, masks.zip                   a prediction
    <artifacts>/runs/<run>/predict_inputs/<id>/<name>   images uploaded to predict on

A job's `files` column lists the names (relative to its folder) that may be downloaded; a
download names one of them, so no request-built path ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from server.artifacts import run_dir

OUTCOME_NAME = "outcome.json"
LOG_NAME = "job.log"
MASKS_ZIP = "masks.zip"
EXPORT_NAMES = {"onnx": "model.onnx", "torchscript": "model.pt"}


def job_dir(artifacts_dir: Path, run_id: int, job_id: int) -> Path:
    """Every file of job `job_id` of run `run_id`."""
    return run_dir(artifacts_dir, run_id) / "jobs" / str(job_id)


def predict_inputs_dir(artifacts_dir: Path, run_id: int, inputs_id: str) -> Path:
    """The images of one predict-inputs upload (`inputs_id`: 32 hex digits, checked by the
    caller)."""
    return run_dir(artifacts_dir, run_id) / "predict_inputs" / inputs_id
