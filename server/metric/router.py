"""/api/v1/runs/{id}/metrics: batched ingest and (downsampled) series reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from server import exports
from server.deps import SessionDep
from server.metric import service
from server.metric.downsample import MIN_POINTS
from server.metric.repository import MetricPoint, read_rows
from server.metric.schemas import IngestOut, MetricsOut, PointsIn
from server.responses import OrjsonResponse
from server.run.repository import get_run

router = APIRouter(prefix="/api/v1/runs/{run_id}", tags=["metrics"])


async def points_body(request: Request) -> PointsIn:
    """The ingest body, parsed and validated in one pass by pydantic's JSON parser: about three
    times faster than FastAPI's json.loads plus validation for 10,000-point batches."""
    try:
        return PointsIn.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from error


@router.post(
    "/metrics",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PointsIn.model_json_schema()}},
        }
    },
)
def ingest_metrics(
    run_id: int, body: Annotated[PointsIn, Depends(points_body)], session: SessionDep
) -> IngestOut:
    """Store up to 10,000 points `{key, step, value, epoch?}`; replaying a batch is harmless
    (upsert on run, key, step). More points: 413; a NaN, a bad key or step: 422 naming the point."""
    points = [MetricPoint(point.key, point.step, point.value, point.epoch) for point in body.points]
    stats = service.record_metrics(session, run_id, points)
    return IngestOut(written=stats.written, new=stats.new, keys=list(stats.keys))


@router.get("/metrics", response_class=OrjsonResponse, responses={200: {"model": MetricsOut}})
def read_metrics(
    run_id: int,
    session: SessionDep,
    keys: Annotated[
        list[str], Query(description="Comma-separated or repeated; default every key")
    ] = [],  # noqa: B006 (FastAPI reads it)
    after_step: Annotated[int | None, Query(description="Only steps after this one")] = None,
    max_points: Annotated[
        int | None,
        Query(
            ge=MIN_POINTS,
            le=1_000_000,
            description="Downsample longer series: per step bucket keep min, max and last",
        ),
    ] = None,
) -> OrjsonResponse:
    """`{"series": {key: {step, value, min, max, last, count, downsampled}}}`."""
    wanted = [key for item in keys for key in item.split(",") if key] or None
    series = service.read_metrics(
        session, run_id, keys=wanted, after_step=after_step, max_points=max_points
    )
    return OrjsonResponse({"series": series})


@router.get("/metrics.csv", response_class=Response)
def metrics_csv(run_id: int, session: SessionDep) -> Response:
    """Every point of the run: `step`, `epoch`, then one column per key."""
    get_run(session, run_id)
    return Response(
        exports.metrics_csv(read_rows(session, run_id)),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.csv"'},
    )
