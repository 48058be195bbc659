"""Metric reads that span several runs, for comparing them: their series side by side, and each
run's values at one epoch (a number, its best epoch or its last one)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.bounds import INT32_MAX, ascii_id, ascii_int
from server.errors import InvalidInput, NotFound
from server.metric.chart_reads import keys_of, read_chart_series
from server.metric.points import WHOLE, StepRange
from server.metric.repository import epoch_facts, epoch_values
from server.metric.service import read_metrics
from server.models import Run

MAX_RUNS = 50
EpochChoice = int | Literal["best", "last"]
EPOCH_WORDS = ("best", "last")


def parse_run_ids(raw: Sequence[str]) -> list[int]:
    """Run ids from comma-separated or repeated query values, in the order given, without repeats.

    Raises:
        InvalidInput: no id, anything but an id in ASCII digits, or more than MAX_RUNS ids.
    """
    ids: list[int] = []
    for item in (part.strip() for value in raw for part in value.split(",")):
        if not item:
            continue
        run_id = ascii_id(item)
        if run_id is None:
            shown = item if len(item) <= 40 else item[:40] + "…"
            raise InvalidInput(
                f"run_ids takes run ids (whole numbers 1 to {INT32_MAX} in ASCII digits) "
                f"separated by commas; got {shown!r}",
                [{"field": "run_ids", "message": f"{shown!r} is not a run id"}],
            )
        if run_id not in ids:
            ids.append(run_id)
    if not ids:
        raise InvalidInput(
            "give the runs to read as run_ids=1,2,3",
            [{"field": "run_ids", "message": "at least one run id"}],
        )
    if len(ids) > MAX_RUNS:
        raise InvalidInput(
            f"{len(ids)} runs asked for; at most {MAX_RUNS} per call",
            [{"field": "run_ids", "message": f"at most {MAX_RUNS} run ids"}],
        )
    return ids


def parse_epoch(raw: str) -> EpochChoice:
    """An epoch number, `best` or `last`; InvalidInput otherwise."""
    text = raw.strip().lower()
    if text in EPOCH_WORDS:
        return "best" if text == "best" else "last"
    epoch = ascii_int(text)
    if epoch is not None and epoch <= INT32_MAX:
        return epoch
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    raise InvalidInput(
        f"epoch must be a whole number 0 to {INT32_MAX} in ASCII digits, 'best' or 'last'; "
        f"got {shown!r}",
        [{"field": "epoch", "message": f"an integer 0 to {INT32_MAX}, 'best' or 'last'"}],
    )


def _refuse_missing(run_ids: Sequence[int], found: Collection[int]) -> None:
    """NotFound naming every id of `run_ids` not in `found`."""
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        names = ", ".join(str(run_id) for run_id in missing)
        raise NotFound(f"no run with id {names}", {"missing": missing})


def read_many(
    session: Session,
    run_ids: Sequence[int],
    *,
    keys: Sequence[str] | None,
    max_points: int | None,
    steps: StepRange = WHOLE,
) -> list[dict[str, Any]]:
    """`[{"run_id", "series"}]` in the order of `run_ids`; each `series` is what
    `server.metric.service.read_metrics` returns for that run and `steps`. On PostgreSQL every
    series is read in a few queries, long ones from their rollups (`server.metric.chart_reads`)."""
    _refuse_missing(run_ids, set(session.scalars(select(Run.id).where(Run.id.in_(run_ids)))))
    if session.get_bind().dialect.name != "postgresql":
        return [
            {
                "run_id": run_id,
                "series": read_metrics(
                    session, run_id, keys=keys, after_step=None, max_points=max_points, steps=steps
                ),
            }
            for run_id in run_ids
        ]
    every_key = keys_of(session, run_ids) if keys is None else sorted(set(keys))
    packed = read_chart_series(session, run_ids, every_key, max_points, steps) if every_key else {}
    return [
        {
            "run_id": run_id,
            "series": {key: packed[run_id, key] for key in every_key if (run_id, key) in packed},
        }
        for run_id in run_ids
    ]


def values_at(
    session: Session, run_ids: Sequence[int], epoch: EpochChoice, *, keys: Sequence[str] | None
) -> list[dict[str, Any]]:
    """`[{"run_id", "epoch", "values": {key: value}}]` in the order of `run_ids`.

    `best` is each run's `best_epoch` (of its monitor), `last` its largest epoch; a run without
    one has `epoch` None and no values. Keys a run did not log at that epoch are left out. Three
    queries whatever the number of runs, each answered from an index.
    """
    rows = session.execute(select(Run.id, Run.best_epoch).where(Run.id.in_(run_ids))).all()
    best: dict[int, int | None] = {row.id: row.best_epoch for row in rows}
    _refuse_missing(run_ids, best)
    facts = epoch_facts(session, run_ids)

    def chosen_epoch(run_id: int) -> int | None:
        if epoch == "best":
            return best[run_id]
        if epoch == "last":
            return facts[run_id].last
        return epoch

    chosen = {run_id: chosen_epoch(run_id) for run_id in run_ids}
    values = epoch_values(
        session,
        {
            run_id: (at, facts[run_id].uses_epochs)
            for run_id, at in chosen.items()
            if at is not None
        },
        keys,
    )
    return [
        {"run_id": run_id, "epoch": chosen[run_id], "values": values.get(run_id, {})}
        for run_id in run_ids
    ]
