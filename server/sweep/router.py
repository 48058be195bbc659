"""/api/v1/sweeps: create (a W&B-style spec over a base config), list, read, pause, resume,
cancel, and change `max_runs` / `parallel`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from server.auth import audit
from server.auth.principal import PrincipalDep
from server.bounds import Id32
from server.deps import SessionDep, SettingsDep, TaskQueueDep
from server.http_errors import error_responses
from server.sweep import repository, service
from server.sweep.schemas import SweepOut, SweepPage, SweepPatch
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/sweeps", tags=["sweeps"])

MAX_PAGE = 200
SPEC_EXAMPLE = {
    "name": "lr and batch size",
    "config": {"dataset": "shapes", "epochs": 5},
    "method": "bayes",
    "metric": {"name": "val/iou", "goal": "maximize"},
    "parameters": {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "batch_size": {"values": [4, 8, 16]},
    },
    "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
    "max_runs": 20,
    "parallel": 2,
    "seed": 7,
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(403))
def create_sweep(
    spec: Annotated[dict[str, Any], Body(examples=[SPEC_EXAMPLE])],
    *,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> SweepOut:
    """Start a sweep: its first `parallel` runs are queued within a controller pass.

    The body is a W&B sweep spec (`method`, `metric`, `parameters`, `early_terminate`) plus a
    base `config` (TrainConfig keys), `max_runs`, `parallel`, `seed`, `name`, `tags`, `queue`,
    `priority`. W&B's agent keys (`program`, `command`, ...) are accepted and listed under
    `ignored`; any other unknown key, and a parameter TrainConfig lacks, answers 422 naming it.
    Every grid combination, and the first config of a random or bayes sweep, is checked as a
    queued run's config is.
    """
    sweep, parsed = service.create_sweep(session, settings, principal, spec)
    return service.sweep_out(session, sweep, parsed.ignored)


@router.get("")
def list_sweeps(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[Id32 | None, Query(description="The `next_cursor` of the last page")] = None,
) -> SweepPage:
    """Sweeps, newest first, with their run counts and best value."""
    sweeps = repository.list_sweeps(session, limit=limit, before_id=cursor)
    next_cursor = sweeps[-1].id if len(sweeps) == limit else None
    return SweepPage(items=service.summaries_out(session, sweeps), next_cursor=next_cursor)


@router.get("/{sweep_id}", responses=error_responses(404))
def get_sweep(sweep_id: Id32, session: SessionDep) -> SweepOut:
    """The sweep with its runs (status, trial number, swept values, score), best run,
    best-so-far curve and parameter importance."""
    return service.sweep_out(session, repository.get_sweep(session, sweep_id))


@router.patch("/{sweep_id}", responses=error_responses(403, 404, 409))
def patch_sweep(
    sweep_id: Id32, body: SweepPatch, session: SessionDep, principal: PrincipalDep
) -> SweepOut:
    """Raise (or lower, down to the runs made) `max_runs`, or change `parallel`."""
    sweep = repository.get_sweep(session, sweep_id, for_update=True)
    service.check_owner(sweep, principal)
    return service.sweep_out(session, service.patch_sweep(session, sweep, body))


@router.post("/{sweep_id}/pause", responses=error_responses(403, 404, 409))
def pause_sweep(sweep_id: Id32, session: SessionDep, principal: PrincipalDep) -> SweepOut:
    """Queue no more runs; the queued and training ones go on."""
    sweep = repository.get_sweep(session, sweep_id, for_update=True)
    service.check_owner(sweep, principal)
    return service.sweep_out(session, service.pause_sweep(session, sweep))


@router.post("/{sweep_id}/resume", responses=error_responses(403, 404, 409))
def resume_sweep(sweep_id: Id32, session: SessionDep, principal: PrincipalDep) -> SweepOut:
    sweep = repository.get_sweep(session, sweep_id, for_update=True)
    service.check_owner(sweep, principal)
    return service.sweep_out(session, service.resume_sweep(session, sweep))


@router.post("/{sweep_id}/cancel", responses=error_responses(403, 404, 409))
def cancel_sweep(
    sweep_id: Id32, session: SessionDep, task_queue: TaskQueueDep, principal: PrincipalDep
) -> SweepOut:
    """Stop the sweep and cancel its queued and training runs."""
    sweep = repository.get_sweep(session, sweep_id, for_update=True)
    service.check_owner(sweep, principal)
    service.cancel_sweep(session, task_queue, sweep)
    audit.record(session, principal, "sweep.cancel", f"sweep {sweep_id}", name=sweep.name)
    return service.sweep_out(session, sweep)
