"""/api/v1/runs/{id}/validation/{epoch}: an epoch's confusion matrix and every validation image's
counts, written by a run trained elsewhere; /confusion, /confusion.csv, /images and
/images/{index}/trend: reading them (a worker's run stores the same detail itself)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from server.bounds import Count32, RunIdPath, Text
from server.deps import SessionDep
from server.http_errors import error_responses
from server.metric.router import inline_schema
from server.unit_of_work import UnitOfWorkRoute
from server.validation import reads, service
from server.validation.schemas import (
    ConfusionOut,
    ImagesOut,
    Order,
    SortKey,
    TrendOut,
    ValidationEpochsOut,
    ValidationIn,
    ValidationWriteOut,
)

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/runs/{run_id}", tags=["validation"])

EpochQuery = Annotated[Count32 | None, Query(description="A stored epoch (default: the latest)")]
MAX_PAGE = 1000


async def validation_body(request: Request) -> ValidationIn:
    """The body parsed and validated in one pass by pydantic's JSON parser (hundreds of
    thousands of counts: several times faster than json.loads plus validation)."""
    try:
        return ValidationIn.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from error


@router.put(
    "/validation/{epoch}",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(ValidationIn)}},
        }
    },
    responses={
        200: {"description": "The epoch replaced one stored before", "model": ValidationWriteOut},
        **error_responses(404, 409, 413),
    },
)
def put_validation(
    run_id: RunIdPath,
    epoch: Count32,
    body: Annotated[ValidationIn, Depends(validation_body)],
    response: Response,
    session: SessionDep,
) -> ValidationWriteOut:
    """One epoch's validation: the set's K x K confusion matrix (rows truth, columns
    prediction) and N x K TP/FP/FN pixel counts of every image, in `images.names` order. Sent
    again it replaces that epoch. Class names must be the run's; every epoch of a run has the
    same images (409 otherwise); a shape that disagrees is 422 naming the field."""
    counts = service.counts_from_body(epoch, body)
    replaced = service.record_validation(session, run_id, counts)
    if replaced:
        response.status_code = status.HTTP_200_OK
    return ValidationWriteOut(
        epoch=epoch, images=len(counts.names), classes=len(counts.class_names), replaced=replaced
    )


@router.get("/validation", responses=error_responses(404))
def read_validation_epochs(run_id: RunIdPath, session: SessionDep) -> ValidationEpochsOut:
    """The epochs with stored validation detail and the validation set's size; an empty list
    until the first epoch's is stored (a page asks this before the endpoints that 404 then)."""
    return reads.stored_epochs(session, run_id)


@router.get("/confusion", responses=error_responses(404))
def read_confusion(
    run_id: RunIdPath, session: SessionDep, epoch: EpochQuery = None
) -> ConfusionOut:
    """The confusion matrix of `epoch` (default: the latest), with every stored epoch; 404
    names the stored epochs."""
    return reads.confusion(session, run_id, epoch)


@router.get(
    "/confusion.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **error_responses(404)},
)
def confusion_csv(run_id: RunIdPath, session: SessionDep, epoch: EpochQuery = None) -> Response:
    """The confusion matrix of `epoch` as CSV: a row per true class, a column per predicted
    class, headed by the class names."""
    matrix = reads.confusion(session, run_id, epoch)
    name = f"run-{run_id}-confusion-epoch-{matrix.epoch}.csv"
    return Response(
        reads.confusion_csv(matrix),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/images", responses=error_responses(404))
def read_images(  # noqa: PLR0917 (one query parameter each)
    run_id: RunIdPath,
    session: SessionDep,
    epoch: Annotated[
        Count32 | None, Query(description="A stored epoch (default: the latest); 422 otherwise")
    ] = None,
    sort: Annotated[SortKey, Query(description="The score to sort by")] = "iou",
    order: Annotated[Order, Query(description="`asc`: worst IoU or Dice first")] = "asc",
    class_name: Annotated[
        Text | None, Query(alias="class", description="Only images whose truth has this class")
    ] = None,
    worse_than: Annotated[
        Count32 | None,
        Query(description="Only images whose IoU is lower now than at this stored epoch"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[Count32, Query()] = 0,
) -> ImagesOut:
    """The validation images at `epoch` with their scores, sorted (default: IoU, worst first)
    and filtered; `total` counts those that pass the filters. An image's IoU and Dice are the
    means over the foreground classes in its truth or prediction (1.0 when none is)."""
    query = reads.ImageQuery(
        epoch=epoch,
        sort=sort,
        order=order,
        class_name=class_name,
        worse_than=worse_than,
        limit=limit,
        offset=offset,
    )
    return reads.images(session, run_id, query)


@router.get("/images/{index}/trend", responses=error_responses(404))
def image_trend(run_id: RunIdPath, index: Count32, session: SessionDep) -> TrendOut:
    """One validation image's IoU, Dice and pixels wrong at every stored epoch."""
    return reads.trend(session, run_id, index)
