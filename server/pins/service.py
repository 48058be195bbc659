"""Pinning validation images on a run: a pin names an image by its position in the run's
validation set or by its name; the run's trainer previews every pinned image from its next
epoch on (a worker's run reads them once per epoch, a tracked run gets them in its heartbeat
answers)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.bounds import ascii_int, text_problem
from server.errors import Conflict, InvalidInput, NotFound
from server.events import record_event
from server.models import Preview, Run
from server.pins import repository
from server.pins.schemas import PinnedImageOut, PinnedImagesOut
from server.run.repository import get_run
from server.validation import repository as validation_repository
from server.validation.packing import unpack_names
from trainer.config import MAX_PINNED_IMAGES

MAX_REFERENCE = 500
"""An image reference (a position, or a name as long as names are stored) at most this long."""


def pinned_images(session: Session, run_id: int) -> PinnedImagesOut:
    get_run(session, run_id)
    return _out(session, run_id)


def _out(session: Session, run_id: int) -> PinnedImagesOut:
    return PinnedImagesOut(
        images=[
            PinnedImageOut(
                index=pin.image_index,
                name=pin.name,
                pinned_by=pin.pinned_by,
                pinned_at=pin.pinned_at,
            )
            for pin in repository.pinned(session, run_id)
        ]
    )


def _validation_images(session: Session, run: Run) -> tuple[int, list[str] | None]:
    """How many validation images the run has and, once an epoch's detail is stored, their
    names; Conflict while the run has not said."""
    stored = validation_repository.get_set(session, run.id)
    if stored is not None:
        return stored.image_count, unpack_names(stored.image_names)
    num_val = (run.run_info or {}).get("num_val")
    if isinstance(num_val, int) and num_val > 0:
        return num_val, None
    raise Conflict(
        f"run {run.id} has not reported its validation images yet; pin one once the run has "
        "started training (its images are listed by GET /api/v1/runs/{id}/images after the "
        "first epoch)"
    )


def _preview_name(session: Session, run_id: int, index: int) -> str | None:
    return session.scalar(
        select(Preview.name).where(Preview.run_id == run_id, Preview.sample_index == index).limit(1)
    )


def _resolve(session: Session, run: Run, image: str) -> tuple[int, str]:
    """The position and name of the validation image `image` names (ASCII digits: a
    position; anything else: a name); NotFound naming what exists."""
    problem = text_problem(image)
    if problem is None and len(image) > MAX_REFERENCE:
        problem = f"is {len(image)} characters long; at most {MAX_REFERENCE} are allowed"
    if problem is not None:
        raise InvalidInput(f"image: {problem}", [{"field": "image", "message": problem}])
    count, names = _validation_images(session, run)
    index = ascii_int(image)
    if index is not None:
        if index >= count:
            raise NotFound(
                f"run {run.id} has no validation image {index}; its {count} validation images "
                f"are numbered 0 to {count - 1}"
            )
        name = names[index] if names is not None else _preview_name(session, run.id, index)
        return index, name or f"image {index}"
    if names is None:
        raise Conflict(
            f"run {run.id} has not stored its validation images' names yet; pin by position "
            f"(0 to {count - 1}), or by name after its first epoch"
        )
    try:
        return names.index(image), image
    except ValueError:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise NotFound(
            f"run {run.id} has no validation image named {image!r}; its {count} images are "
            f"named like {shown} (GET /api/v1/runs/{run.id}/images lists them), or give a "
            f"position 0 to {count - 1}"
        ) from None


def pin(
    session: Session, run_id: int, image: str, pinned_by: str | None
) -> tuple[bool, PinnedImagesOut]:
    """Pin `image` on the run; True when it was not pinned before. Conflict past
    MAX_PINNED_IMAGES."""
    # The run's row is locked so that two pins at once cannot both take the last place.
    run = get_run(session, run_id, for_update=True)
    index, name = _resolve(session, run, image)
    if repository.get(session, run_id, index) is not None:
        return False, _out(session, run_id)
    held = repository.count(session, run_id)
    if held >= MAX_PINNED_IMAGES:
        raise Conflict(
            f"run {run_id} has {held} pinned images, the most a run may have; unpin one "
            f"(DELETE /api/v1/runs/{run_id}/pinned-images/<index>) before pinning {name!r}",
            {"max_pinned": MAX_PINNED_IMAGES},
        )
    repository.add(session, run_id, index, name, pinned_by)
    _record(session, run_id)
    return True, _out(session, run_id)


def unpin(session: Session, run_id: int, image: str) -> PinnedImagesOut:
    """Unpin `image`; NotFound when it is not pinned."""
    run = get_run(session, run_id)
    index, name = _resolve(session, run, image)
    if repository.get(session, run_id, index) is None:
        pinned = repository.pinned_indices(session, run_id)
        shown = ", ".join(str(value) for value in pinned) or "none"
        raise NotFound(
            f"validation image {index} ({name}) is not pinned on run {run_id}; pinned: {shown}"
        )
    repository.remove(session, run_id, index)
    _record(session, run_id)
    return _out(session, run_id)


def _record(session: Session, run_id: int) -> None:
    """An event for the run's open pages, with the pins as they are now."""
    session.flush()
    record_event(
        session,
        "run",
        run_id,
        {"action": "pins", "pinned": repository.pinned_indices(session, run_id)},
    )
