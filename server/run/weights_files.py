"""Weight files a training config names (`init_from`, `encoder_weights`) and where they may lie.

A field may name another run's checkpoint, `run:<id>` (its best) or `run:<id>:best|last`, or a
file on the server. Files must lie inside the artifacts root (checkpoints of runs) or a dataset
root once symlinks and '..' are resolved, so a config cannot make a worker open any file on the
server. The stored config holds the resolved absolute path.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.orm import Session

from server.artifacts import absolute_path
from server.bounds import INT32_MAX
from server.errors import InvalidInput, PathNotAllowed
from server.models import Run
from server.preview.repository import get_checkpoint
from server.root_paths import paths_inside
from server.settings import Settings
from trainer.config import TrainConfig

WEIGHT_FIELDS = ("init_from", "encoder_weights")
RUN_REFERENCE = re.compile(r"^run:(?P<run_id>[0-9]+)(?::(?P<kind>best|last))?$")


def _allowed_roots(settings: Settings) -> list[Path]:
    return [settings.artifacts_dir.resolve(), *(root.resolve() for root in settings.dataset_roots)]


def _run_checkpoint(
    session: Session, settings: Settings, reference: re.Match[str], field: str
) -> Path:
    run_id = int(reference["run_id"])
    kind = reference["kind"] or "best"
    if run_id > INT32_MAX or session.get(Run, run_id) is None:
        raise InvalidInput(
            f"{field}: run {run_id} does not exist",
            [{"field": field, "message": f"no run {run_id}; give run:<id>[:best|last] or a file"}],
        )
    checkpoint = get_checkpoint(session, run_id, kind)
    if checkpoint is None:
        raise InvalidInput(
            f"{field}: run {run_id} has no {kind} checkpoint yet",
            [{"field": field, "message": f"run {run_id} has no {kind} checkpoint yet"}],
        )
    return absolute_path(settings.artifacts_dir, checkpoint.path)


def _server_file(settings: Settings, raw: str, field: str) -> Path:
    roots = _allowed_roots(settings)
    listed = ", ".join(str(root) for root in roots)
    inside = paths_inside(raw, roots)
    if inside is None:
        raise PathNotAllowed(
            f"{field} {raw!r} is outside the folders weights may come from ({listed}); "
            "name a run's checkpoint as run:<id>[:best|last] or put the file in a dataset root",
            {"field": field, "allowed_roots": [str(root) for root in roots]},
        )
    for path in inside:
        if path.is_file():
            return path
    raise InvalidInput(
        f"{field}: no file {raw!r} under {listed}",
        [{"field": field, "message": f"no file {raw!r} under {listed}"}],
    )


def resolve_weight_files(session: Session, settings: Settings, config: TrainConfig) -> TrainConfig:
    """`config` with its weight fields resolved to allowed absolute paths.

    Raises:
        InvalidInput: an unknown run, a run without that checkpoint, or a missing file.
        PathNotAllowed: a file outside the artifacts root and the dataset roots.
    """
    updates: dict[str, str] = {}
    for name in WEIGHT_FIELDS:
        raw = getattr(config, name)
        if raw is None:
            continue
        field = f"config.{name}"
        reference = RUN_REFERENCE.match(raw.strip())
        path = (
            _run_checkpoint(session, settings, reference, field)
            if reference
            else _server_file(settings, raw, field)
        )
        updates[name] = str(path)
    return config.model_copy(update=updates) if updates else config
