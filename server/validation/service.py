"""Storing an epoch's validation detail: what a valid one is, and how it is kept.

`record_validation` is also the worker's entry point (in its own short transaction). A run keeps
one validation set: its image names and class names are stored once, and an epoch whose images
or classes differ from those of the run's other stored epochs is refused (409).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.bounds import INT32_MAX, text_problem
from server.errors import Conflict, InvalidInput, NotFound
from server.events import record_event
from server.models import Run
from server.validation import repository
from server.validation.detail import Counts, ImageScores, ValidationCounts
from server.validation.epochs_text import epochs_text
from server.validation.packing import pack_confusion, pack_counts, pack_names, pack_scores
from server.validation.schemas import MAX_CLASSES, MAX_IMAGE_NAME, MAX_IMAGES, ValidationIn

MAX_CELLS = 2_000_000
"""Images x classes of one epoch, at most (e.g. 20,000 images of 100 classes)."""
MAX_PIXEL_COUNT = 2**40
"""A per-image count is pixels of one image: sums over images and classes stay within int64."""
COUNT_FIELDS = ("true_positive", "false_positive", "false_negative")


def _bad(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{field}: {problem}", [{"field": field, "message": problem}])


def _matrix(field: str, rows: Sequence[Sequence[int]], shape: tuple[int, int]) -> Counts:
    """`rows` as int64 of `shape`; InvalidInput naming `field` when it is not that."""
    wanted = f"{shape[0]} x {shape[1]}"
    try:
        array = np.array(rows, dtype=np.int64)
    except OverflowError as error:
        raise _bad(field, "holds a number beyond 64-bit integers") from error
    except (ValueError, TypeError) as error:
        raise _bad(field, f"must be {wanted} integers (rows of equal length)") from error
    if array.size == 0 and shape[0] * shape[1] == 0:
        array = array.reshape(shape)
    if array.shape != shape:
        got = " x ".join(str(side) for side in array.shape) or "a number"
        raise _bad(field, f"is {got}; it must be {wanted}")
    return array


def counts_from_body(epoch: int, body: ValidationIn) -> ValidationCounts:
    """The request body as arrays; InvalidInput naming the field whose shape is wrong."""
    classes = len(body.class_names)
    images = len(body.images.names)
    if images * classes > MAX_CELLS:
        raise _bad(
            "images.names",
            f"{images} images x {classes} classes is over the limit of {MAX_CELLS} per epoch",
        )
    confusion = _matrix("confusion", body.confusion, (classes, classes))
    counts = {
        field: _matrix(f"images.{field}", getattr(body.images, field), (images, classes))
        for field in COUNT_FIELDS
    }
    return ValidationCounts(
        epoch=epoch,
        class_names=tuple(body.class_names),
        confusion=confusion,
        names=tuple(body.images.names),
        true_positive=counts["true_positive"],
        false_positive=counts["false_positive"],
        false_negative=counts["false_negative"],
    )


def _check_names(field: str, names: Sequence[str], most: int, longest: int) -> None:
    if len(names) > most:
        raise _bad(field, f"{len(names)} names; at most {most} are allowed")
    for index, name in enumerate(names):
        problem = text_problem(name)
        if problem is None and not 1 <= len(name) <= longest:
            problem = f"names are 1 to {longest} characters"
        if problem is not None:
            raise _bad(f"{field}.{index}", problem)
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise _bad(
                f"{field}.{index}", f"{name!r} is also name {seen[name]}; names must be unique"
            )
        seen[name] = index


def check_counts(counts: ValidationCounts, run_classes: Sequence[str] | None) -> None:
    """InvalidInput naming the first field that breaks a rule (the HTTP schema checks types;
    this holds for callers that skip it, the worker)."""
    if not 0 <= counts.epoch <= INT32_MAX:
        raise _bad("epoch", f"epochs are integers 0 to {INT32_MAX}")
    if not counts.class_names:
        raise _bad("class_names", "at least one class name is needed")
    _check_names("class_names", counts.class_names, MAX_CLASSES, 200)
    if run_classes is not None and list(counts.class_names) != list(run_classes):
        raise _bad(
            "class_names",
            f"{list(counts.class_names)} are not the run's class names {list(run_classes)} "
            "(in index order)",
        )
    classes, images = len(counts.class_names), len(counts.names)
    _check_names("images.names", counts.names, MAX_IMAGES, MAX_IMAGE_NAME)
    if images * classes > MAX_CELLS:
        raise _bad("images.names", f"{images} images x {classes} classes is over {MAX_CELLS}")
    if counts.confusion.shape != (classes, classes):
        raise _bad("confusion", f"is {counts.confusion.shape}; it must be {classes} x {classes}")
    if counts.confusion.size and int(counts.confusion.min()) < 0:
        raise _bad("confusion", "counts must not be negative")
    for field in COUNT_FIELDS:
        array: Counts = getattr(counts, field)
        where = f"images.{field}"
        if array.shape != (images, classes):
            raise _bad(where, f"is {array.shape}; it must be {images} x {classes}")
        if array.size and (int(array.min()) < 0 or int(array.max()) > MAX_PIXEL_COUNT):
            row, column = np.argwhere((array < 0) | (array > MAX_PIXEL_COUNT))[0]
            raise _bad(
                f"{where}.{row}.{column}",
                f"counts are pixels of one image: integers 0 to {MAX_PIXEL_COUNT}",
            )


def record_validation(session: Session, run_id: int, counts: ValidationCounts) -> bool:
    """Check and store one epoch's detail, replacing that epoch's; True when it replaced one.

    Raises:
        NotFound: no run `run_id`.
        InvalidInput: a shape, a count or a name breaks the rules (the field is named).
        Conflict: the run's other stored epochs have other images or classes.
    """
    row = session.execute(select(Run.class_names).where(Run.id == run_id)).one_or_none()
    if row is None:
        raise NotFound(f"run {run_id} does not exist")
    check_counts(counts, row[0])
    names_blob, digest = pack_names(counts.names)
    class_names = list(counts.class_names)
    stored = repository.get_set(session, run_id)
    stored_epochs = repository.epochs(session, run_id)
    if stored is None or stored.names_digest != digest or stored.class_names != class_names:
        others = [epoch for epoch in stored_epochs if epoch != counts.epoch]
        if stored is not None and others:
            what = "classes" if stored.class_names != class_names else "images"
            raise Conflict(
                f"run {run_id} holds the validation detail of epochs {epochs_text(others)} "
                f"with other {what} ({stored.image_count} images of classes "
                f"{stored.class_names}); every epoch of a run scores the same validation set"
            )
        repository.put_set(
            session,
            run_id,
            class_names=class_names,
            image_count=len(counts.names),
            image_names=names_blob,
            names_digest=digest,
        )
    stacked = counts.stacked()
    scores = ImageScores.of(stacked)
    blob, width = pack_counts(stacked)
    repository.put_epoch(
        session,
        run_id,
        repository.StoredEpoch(
            epoch=counts.epoch,
            count_bytes=width,
            confusion=pack_confusion(counts.confusion),
            counts=blob,
            scores=pack_scores(scores.image_iou(), scores.image_dice(), scores.pixels_wrong()),
        ),
    )
    record_event(
        session, "validation", run_id, {"epoch": counts.epoch, "images": len(counts.names)}
    )
    return counts.epoch in stored_epochs
