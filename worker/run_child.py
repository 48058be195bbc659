"""The training process of one run: `python -m worker.run_child --run-id R [--resume] [--gpus N]`.

A worker starts one per run (`worker.run_process`), in a process group of its own, with
`CUDA_VISIBLE_DEVICES` set to the run's GPUs; CUDA lives here, never in the worker. It reads the
run's config from the database, trains it with `trainer.loop.fit` reporting to the database
(`DbReporter`), the run's log (`ConsoleReporter`, stderr appended to the log file) and the data
wait series (`DataWaitReporter`), stops when the worker creates the run's stop file, and writes
how it ended to the run's `outcome.json` (`worker.run_outcome`) for the worker to record.

With `--gpus N` above 1 it replaces itself with torch's elastic launcher running this module on
N ranks (`trainer.distributed.launch_command`); `fit` joins their world, only rank 0 reports and
checkpoints, and only rank 0 writes the outcome. A rank that fails ends the launcher, and with it
the others, non-zero: the worker then records the reason rank 0 wrote, or the exit status.

It dies with the worker (Linux: the parent-death signal), so a killed worker leaves no training
behind; its run is then declared lost by the reaper, as before.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.artifacts import checkpoint_dir
from server.db import create_db_engine, make_session_factory, session_scope
from server.models import Run
from server.settings import Settings, get_settings
from trainer.config import ConfigError, validate_config
from trainer.data.report import DatasetError
from trainer.distributed import launch_command, launched_rank
from trainer.loop import FitResult, TrainingError, fit
from trainer.reporting import ConsoleReporter, MultiReporter
from worker.report_writer import ReportWriteError, ReportWriter
from worker.reporter import DbReporter, pin_reader
from worker.retry import OUTAGE_LIMIT_SETTING, DatabaseUnavailableError, retry_write
from worker.run_logging import CURRENT_RUN, install_run_id_logging
from worker.run_outcome import TrainingOutcome, TrainingStatus, outcome_path, stop_path
from worker.system_metrics import DataWaitReporter

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
_SQL_PARAMETERS = re.compile(r"^\[parameters: .*\]$", re.MULTILINE)


def without_sql_parameters(text: str) -> str:
    """`text` (an error message or traceback) without the `[parameters: ...]` lines SQLAlchemy
    adds to database errors: they may hold anything a statement carried."""
    return _SQL_PARAMETERS.sub("[SQL parameters hidden]", text)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when the process that started it dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        logger.warning("could not tie the training to its worker (errno %d)", ctypes.get_errno())
    if os.getppid() == 1:  # the worker died before the tie was made
        os._exit(1)


def _fit_outcome(result: FitResult) -> TrainingOutcome:
    status: TrainingStatus = "succeeded"
    reason = None
    if result.status == "stopped":
        status = "stopped"
    elif result.status == "stopped_after_epoch":
        status = "pruned"
        reason = f"pruned by its sweep after epoch {result.epochs_done}"
    if status != "stopped":
        logger.info("run %s after %d epochs", result.status, result.epochs_done)
    return TrainingOutcome(
        status,
        reason,
        epochs_done=result.epochs_done,
        resumable=result.last_checkpoint is not None and result.epochs_done > 0,
    )


def prune_check(sessions: sessionmaker[Session], run_id: int) -> Callable[[], bool]:
    """Whether the run's sweep asked it to stop after this epoch (one read per epoch); a
    database that does not answer says no, and the next epoch asks again."""

    def prune_requested() -> bool:
        try:
            with session_scope(sessions, write=False) as session:
                requested = session.scalar(select(Run.prune_requested_at).where(Run.id == run_id))
        except SQLAlchemyError as error:
            logger.warning("could not read whether the sweep prunes the run: %s", error)
            return False
        return requested is not None

    return prune_requested


def train(
    settings: Settings,
    sessions: sessionmaker[Session],
    run_id: int,
    config: dict[str, Any],
    *,
    resume: bool,
    stop_requested: Callable[[], bool],
) -> TrainingOutcome:
    """Train run `run_id` with `config`; every error becomes a failed outcome with its reason."""
    out_dir = checkpoint_dir(settings.artifacts_dir, run_id)
    last = out_dir / "last.pt"
    writer = ReportWriter(
        run_id=run_id,
        sessions=sessions,
        redis_url=settings.redis_url,
        limit_s=settings.worker_outage_limit_s,
    )
    try:
        cfg = validate_config(config)
        reporter = MultiReporter(
            [
                DbReporter(
                    run_id=run_id,
                    writer=writer,
                    artifacts_dir=settings.artifacts_dir,
                    stop_requested=stop_requested,
                    prune_requested=prune_check(sessions, run_id),
                    pinned_images=pin_reader(sessions, run_id),
                ),
                # Epoch summaries and warnings in the run's log, which the run page tails.
                ConsoleReporter(progress_bars=False),
                DataWaitReporter(
                    run_id=run_id, writer=writer, interval_s=settings.system_metrics_interval_s
                ),
            ]
        )
        resume_from = last if resume and last.exists() else None
        if resume and resume_from is None:
            logger.warning("resume asked but %s is missing; starting from scratch", last)
        result = fit(cfg, reporter, out_dir=out_dir, resume_from=resume_from)
        # The outcome is recorded only once every report before it is stored.
        writer.flush()
    except ReportWriteError as error:
        return TrainingOutcome("failed", str(error), without_sql_parameters(error.details))
    except TrainingError as error:
        return TrainingOutcome(
            "failed", error.reason, without_sql_parameters(traceback.format_exc())
        )
    except (ConfigError, DatasetError) as error:
        return TrainingOutcome("failed", str(error), str(error))
    except Exception as error:
        logger.exception("run failed")
        return TrainingOutcome(
            "failed",
            without_sql_parameters(f"{type(error).__name__}: {error}"),
            without_sql_parameters(traceback.format_exc()),
        )
    finally:
        # A failed or stopped training's reports so far are stored too.
        writer.close()
    return _fit_outcome(result)


def _read_and_train(
    settings: Settings, sessions: sessionmaker[Session], run_id: int, *, resume: bool
) -> TrainingOutcome | None:
    """Read run `run_id`'s config and train it; None when the run is gone."""

    def read_config() -> dict[str, Any] | None:
        with session_scope(sessions, write=False) as session:
            run = session.get(Run, run_id)
            return dict(run.config or {}) if run is not None else None

    try:
        config = retry_write(
            read_config,
            what="config of the run",
            limit_s=settings.worker_outage_limit_s,
            setting=OUTAGE_LIMIT_SETTING,
        )
    except DatabaseUnavailableError as error:
        return TrainingOutcome("failed", str(error))
    if config is None:
        return None
    stop_file = stop_path(settings.artifacts_dir, run_id)
    return train(settings, sessions, run_id, config, resume=resume, stop_requested=stop_file.exists)


def _launch_ranks(nproc: int, module_args: Sequence[str]) -> NoReturn:
    """Replace this process with the elastic launcher running `module_args` on `nproc` ranks."""
    command = launch_command(nproc, list(module_args))
    logger.info("training on %d ranks: %s", nproc, " ".join(command))
    logging.shutdown()
    os.execv(command[0], command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.run_child", description=__doc__)
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--resume", action="store_true", help="continue from last.pt")
    parser.add_argument("--gpus", type=int, default=1, help="ranks to train on")
    args = parser.parse_args(argv)
    die_with_parent()
    install_run_id_logging()
    CURRENT_RUN.set(args.run_id)
    launched = "LOCAL_RANK" in os.environ
    if args.gpus > 1 and not launched:
        module_args = [
            "worker.run_child",
            "--run-id",
            str(args.run_id),
            *(["--resume"] if args.resume else []),
        ]
        _launch_ranks(args.gpus, module_args)

    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    outcome = _read_and_train(
        settings, make_session_factory(engine), args.run_id, resume=args.resume
    )
    engine.dispose()
    if outcome is None:
        logger.error("run %d is gone; nothing to train", args.run_id)
        return 1
    if launched_rank() == 0:
        outcome.write(outcome_path(settings.artifacts_dir, args.run_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
