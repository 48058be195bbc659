"""Reading a run's validation detail: an epoch's confusion matrix, its images sorted by score
(filtered by class or by having got worse since another epoch), one image's trend, the matrix as
CSV. Reads decompress one epoch's counts at most; a trend slices one record of each epoch."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import InvalidInput, NotFound
from server.job.image_prediction import predicted_epochs
from server.models import Run
from server.validation import repository
from server.validation.detail import ImageScores
from server.validation.epochs_text import epochs_text
from server.validation.packing import (
    SCORE_RECORD,
    unpack_confusion,
    unpack_counts,
    unpack_names,
    unpack_scores,
)
from server.validation.repository import StoredSet
from server.validation.schemas import (
    SORT_KEYS,
    ClassScoreOut,
    ConfusionOut,
    ImageOut,
    ImagesOut,
    Order,
    SortKey,
    ThenOut,
    TrendOut,
    TrendPointOut,
    ValidationEpochsOut,
)
from trainer.spreadsheet import spreadsheet_safe


@dataclass(frozen=True)
class ImageQuery:
    """What `GET /runs/{id}/images` asks for."""

    epoch: int | None = None
    sort: SortKey = "iou"
    order: Order = "asc"
    class_name: str | None = None
    worse_than: int | None = None
    limit: int = 50
    offset: int = 0


def _stored(session: Session, run_id: int) -> tuple[StoredSet, list[int]]:
    """The run's validation set and stored epochs; NotFound without any."""
    if session.scalar(select(Run.id).where(Run.id == run_id)) is None:
        raise NotFound(f"run {run_id} does not exist")
    stored = repository.get_set(session, run_id)
    epochs = repository.epochs(session, run_id)
    if stored is None or not epochs:
        raise NotFound(
            f"run {run_id} has no validation detail yet (it is stored at the end of every "
            "epoch's validation)"
        )
    return stored, epochs


def _epoch(run_id: int, epochs: list[int], asked: int | None, *, field: str | None = None) -> int:
    """`asked` when stored (default: the latest); NotFound, or InvalidInput for `field`."""
    if asked is None:
        return epochs[-1]
    if asked in epochs:
        return asked
    message = f"run {run_id} has no validation detail at epoch {asked}; stored epochs: " + (
        epochs_text(epochs)
    )
    if field is None:
        raise NotFound(message)
    raise InvalidInput(message, [{"field": field, "message": message}])


def stored_epochs(session: Session, run_id: int) -> ValidationEpochsOut:
    """The epochs stored so far, an empty list before the first (only a missing run is 404)."""
    if session.scalar(select(Run.id).where(Run.id == run_id)) is None:
        raise NotFound(f"run {run_id} does not exist")
    stored = repository.get_set(session, run_id)
    return ValidationEpochsOut(
        epochs=repository.epochs(session, run_id),
        images=0 if stored is None else stored.image_count,
    )


def confusion(session: Session, run_id: int, epoch: int | None) -> ConfusionOut:
    stored, epochs = _stored(session, run_id)
    chosen = _epoch(run_id, epochs, epoch)
    blob = repository.confusion_at(session, run_id, chosen)
    if blob is None:  # deleted between the two reads
        raise NotFound(f"run {run_id} has no validation detail at epoch {chosen}")
    matrix = unpack_confusion(blob, len(stored.class_names))
    return ConfusionOut(
        epoch=chosen, epochs=epochs, class_names=stored.class_names, matrix=matrix.tolist()
    )


def confusion_csv(matrix: ConfusionOut) -> str:
    """Rows truth, columns prediction, headed by the class names (made spreadsheet-safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = [spreadsheet_safe(name) for name in matrix.class_names]
    writer.writerow(["truth \\ prediction", *names])
    for name, row in zip(names, matrix.matrix, strict=True):
        writer.writerow([name, *row])
    return buffer.getvalue()


def _order(
    values: npt.NDArray[np.number[Any]], keep: npt.NDArray[np.intp], descending: bool
) -> npt.NDArray[np.intp]:
    """`keep` sorted by `values` (ties: by index)."""
    chosen = values[keep].astype(np.float64)
    ordered: npt.NDArray[np.intp] = keep[np.lexsort((keep, -chosen if descending else chosen))]
    return ordered


def images(session: Session, run_id: int, query: ImageQuery) -> ImagesOut:
    stored, epochs = _stored(session, run_id)
    if query.sort not in SORT_KEYS:
        raise InvalidInput(
            f"sort {query.sort!r}: one of {', '.join(SORT_KEYS)}",
            [{"field": "sort", "message": f"one of {', '.join(SORT_KEYS)}"}],
        )
    class_names = stored.class_names
    column = None
    if query.class_name is not None:
        if query.class_name not in class_names:
            message = f"class {query.class_name!r} is not one of the run's: {class_names}"
            raise InvalidInput(message, [{"field": "class", "message": message}])
        column = class_names.index(query.class_name)
    chosen = _epoch(run_id, epochs, query.epoch, field="epoch")
    then_epoch = (
        None
        if query.worse_than is None
        else _epoch(run_id, epochs, query.worse_than, field="worse_than")
    )
    row = repository.epoch_at(session, run_id, chosen)
    if row is None:
        raise NotFound(f"run {run_id} has no validation detail at epoch {chosen}")
    counts = unpack_counts(row.counts, row.count_bytes, stored.image_count, len(class_names))
    scores = ImageScores.of(counts)
    iou, dice = scores.image_iou(), scores.image_dice()
    wrong, pixels = scores.pixels_wrong(), scores.pixels()
    in_truth = scores.in_truth()
    keep = np.arange(stored.image_count, dtype=np.intp)
    if column is not None:
        keep = keep[in_truth[keep, column]]
    then = None
    if then_epoch is not None:
        blob = repository.scores_at(session, run_id, then_epoch)
        then = unpack_scores(blob) if blob is not None else np.zeros(0, dtype=SCORE_RECORD)
        if len(then) != stored.image_count:
            raise NotFound(f"run {run_id} has no validation detail at epoch {then_epoch}")
        keep = keep[iou[keep] < then["iou"][keep]]
    names = unpack_names(stored.image_names)
    descending = query.order == "desc"
    if query.sort == "name":
        ordered = sorted(keep.tolist(), key=names.__getitem__, reverse=descending)
    else:
        values = {"iou": iou, "dice": dice, "pixels_wrong": wrong}[query.sort]
        ordered = _order(values, keep, descending).tolist()
    page = ordered[query.offset : query.offset + query.limit]
    per_class_iou, per_class_dice = scores.iou(), scores.dice()
    present = scores.present()
    predicted = predicted_epochs(session, run_id) if page else {}
    items = [
        ImageOut(
            index=index,
            name=names[index],
            iou=float(iou[index]),
            dice=float(dice[index]),
            pixels_wrong=int(wrong[index]),
            pixels=int(pixels[index]),
            classes_present=[
                name for name, on in zip(class_names, in_truth[index], strict=True) if on
            ],
            per_class={
                name: ClassScoreOut(
                    iou=float(per_class_iou[index, c]), dice=float(per_class_dice[index, c])
                )
                for c, name in enumerate(class_names)
                if present[index, c]
            },
            then=None
            if then is None or then_epoch is None
            else ThenOut(
                epoch=then_epoch, iou=float(then["iou"][index]), dice=float(then["dice"][index])
            ),
            predicted_epochs=predicted.get((index, names[index]), []),
        )
        for index in page
    ]
    return ImagesOut(
        epoch=chosen, epochs=epochs, class_names=class_names, total=len(ordered), items=items
    )


def trend(session: Session, run_id: int, index: int) -> TrendOut:
    stored, _ = _stored(session, run_id)
    if not 0 <= index < stored.image_count:
        raise NotFound(
            f"run {run_id} has no validation image {index}; its images are 0 to "
            f"{stored.image_count - 1}"
        )
    points: list[TrendPointOut] = []
    for epoch, record in repository.image_records(session, run_id, index):
        if len(record) != SCORE_RECORD.itemsize:
            continue
        values = np.frombuffer(record, dtype=SCORE_RECORD)[0]
        points.append(
            TrendPointOut(
                epoch=epoch,
                iou=float(values["iou"]),
                dice=float(values["dice"]),
                pixels_wrong=int(values["pixels_wrong"]),
            )
        )
    return TrendOut(index=index, name=unpack_names(stored.image_names)[index], points=points)
