"""CSV exports: a run's metrics in wide format, and the runs list with configs flattened.

Text that users or scripts wrote (run names, tags, notes, failure reasons, parameter values,
metric keys) could start a spreadsheet formula, e.g. `=HYPERLINK(...)`; every such cell and header
is neutralised with a leading `'` (`trainer.spreadsheet.spreadsheet_safe`), numbers are left as
they are.

pandas is imported when an export runs, not with the app: it costs about half a second and tens
of megabytes that a server which never exports should not pay.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from server.metric.points import is_system_key
from server.models import Run, utcnow
from server.run.schemas import duration_s
from trainer.spreadsheet import spreadsheet_safe

RUN_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "status",
    "external",
    "priority",
    "queue",
    "dataset_name",
    "model",
    "worker",
    "device",
    "attempt",
    "created_at",
    "started_at",
    "finished_at",
    "epochs_done",
    "epochs_planned",
    "best_val_iou",
    "best_epoch",
    "last_val_iou",
    "monitor",
    "best_metric",
    "failure_reason",
)


MetricsTable = Literal["training", "system"]
"""The tables of a run's metrics export: by step and epoch, or system series by time."""


def metrics_csv(
    rows: list[tuple[str, int, float, int | None]], table: MetricsTable = "training"
) -> str:
    """A run's points in wide format, one column per key (sorted).

    `training`: `step`, `epoch`, then the keys, one row per step, system series left out (their
    steps are seconds, not steps). `system`: `elapsed_s` (since the run started), then the
    `sys/` keys, one row per second sampled.
    """
    import pandas as pd  # noqa: PLC0415 (see the module docstring)

    system = table == "system"
    rows = [row for row in rows if is_system_key(row[0]) == system]
    index = "elapsed_s" if system else "step"
    if not rows:
        return f"{index}\n" if system else "step,epoch\n"
    frame = pd.DataFrame.from_records(rows, columns=["key", "step", "value", "epoch"])
    wide = frame.pivot(index="step", columns="key", values="value")
    wide = wide.reindex(columns=sorted(wide.columns))
    if not system:
        epochs = frame.groupby("step")["epoch"].max().astype("Int64")
        wide.insert(0, "epoch", epochs)
    wide.columns.name = None
    wide.index.name = index
    # Metric keys are the only text here: scripts name them freely.
    wide.columns = [spreadsheet_safe(column) for column in wide.columns]
    return wide.reset_index().to_csv(index=False)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return spreadsheet_safe(json.dumps(value, sort_keys=True))
    return spreadsheet_safe(value)


def runs_csv(
    runs: Iterable[Run], tags: dict[int, list[str]], last_values: dict[int, dict[str, float]]
) -> str:
    """One row per run: summary columns, `tags` (';'-joined), `duration_s`, then `config.<key>`,
    `params.<key>` and `metric.<key>` (last value) columns; system series (`sys/...`) have no
    column: their last sample says nothing about the run."""
    import pandas as pd  # noqa: PLC0415 (see the module docstring)

    now = utcnow()
    records = []
    for run in runs:
        record: dict[str, Any] = {column: _cell(getattr(run, column)) for column in RUN_COLUMNS}
        record["tags"] = _cell(";".join(tags.get(run.id, [])))
        record["duration_s"] = duration_s(run, now)
        for prefix, values in (("config", run.config), ("params", run.params)):
            record.update(
                {f"{prefix}.{key}": _cell(value) for key, value in (values or {}).items()}
            )
        record.update(
            {
                f"metric.{key}": value
                for key, value in last_values.get(run.id, {}).items()
                if not is_system_key(key)
            }
        )
        records.append(record)
    if not records:
        return ",".join((*RUN_COLUMNS, "tags", "duration_s")) + "\n"
    frame = pd.DataFrame.from_records(records)
    fixed = [*RUN_COLUMNS, "tags", "duration_s"]
    extra = sorted(column for column in frame.columns if column not in fixed)
    buffer = io.StringIO()
    frame[fixed + extra].to_csv(buffer, index=False)
    return buffer.getvalue()


TABLE_COLUMNS: tuple[str, ...] = (
    "id",
    "status",
    "name",
    "model",
    "dataset_name",
    "best_val_iou",
    "last_val_iou",
    "epochs_done",
    "epochs_planned",
    "duration_s",
    "created_at",
)
"""The runs table's own columns, as the CSV of the table names them (the id is in the name's
cell, the epochs cell is done / planned)."""


def runs_table_csv(
    runs: Iterable[Run],
    tags: Mapping[int, Sequence[str]],
    columns: Sequence[str],
    values: Mapping[int, Mapping[str, Any]],
) -> str:
    """The runs table as shown: its own columns, the chosen `columns` (config.<key>,
    metrics.<key>.<aggregate>, tag.<key>, ... with their `values` by run id) in their order,
    then `tags` (';'-joined). Text cells and headers are made spreadsheet-safe."""
    now = utcnow()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*TABLE_COLUMNS, *(spreadsheet_safe(column) for column in columns), "tags"])
    for run in runs:
        own = [
            duration_s(run, now) if column == "duration_s" else _csv_cell(getattr(run, column))
            for column in TABLE_COLUMNS
        ]
        chosen = [_csv_cell(values.get(run.id, {}).get(column)) for column in columns]
        writer.writerow([*own, *chosen, _cell(";".join(tags.get(run.id, [])))])
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    """A cell as the csv module writes it: None empty, datetimes in ISO form, lists and
    objects as JSON, text made safe."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return _cell(value)
