"""/api/v1/runs/{run_id}/pinned-images: the validation images a user pinned on a run, previewed
every epoch besides the fixed set and the epoch's worst (members change their own runs'
pins, like their other run edits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from server.auth.principal import PrincipalDep
from server.bounds import RunIdPath
from server.deps import SessionDep
from server.http_errors import error_responses
from server.pins import service
from server.pins.schemas import PinnedImagesOut
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/runs/{run_id}", tags=["previews"])

ImagePath = Annotated[
    str,
    Path(
        description="The validation image: its position in the run's validation set (ASCII "
        "digits) or its name",
        min_length=1,
        max_length=service.MAX_REFERENCE,
    ),
]


@router.get("/pinned-images", responses=error_responses(404))
def list_pinned_images(run_id: RunIdPath, session: SessionDep) -> PinnedImagesOut:
    """The run's pinned validation images, oldest pin first."""
    return service.pinned_images(session, run_id)


@router.put(
    "/pinned-images/{image}",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The image was pinned already", "model": PinnedImagesOut},
        **error_responses(403, 404, 409),
    },
)
def pin_image(
    run_id: RunIdPath,
    image: ImagePath,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
) -> PinnedImagesOut:
    """Pin a validation image: the run previews it every epoch from its next one on. A run has
    at most `max_pinned` (409 past it); 404 for an image the run's validation set does not
    have, naming the positions and names it has; 409 before the run has reported its
    validation set."""
    new, pins = service.pin(session, run_id, image, principal.name)
    if not new:
        response.status_code = status.HTTP_200_OK
    return pins


@router.delete("/pinned-images/{image}", responses=error_responses(403, 404, 409))
def unpin_image(run_id: RunIdPath, image: ImagePath, session: SessionDep) -> PinnedImagesOut:
    """Unpin a validation image (by position or name): its previews stop at the next epoch;
    those saved stay. 404 when it is not pinned."""
    return service.unpin(session, run_id, image)
