"""The `segtrack` command line.

Subcommands import what they need when they run, so `segtrack --help` and the light commands do
not pay for importing torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from segtrack.accounts_cli import add_account_commands
from segtrack.sweep_commands import add_sweep_commands
from trainer.config import ConfigError, config_json_schema, load_config

if TYPE_CHECKING:
    from segtrack.tracking import TrackedRun
    from trainer.config import TrainConfig

logger = logging.getLogger("segtrack")


class CommandError(Exception):
    """A failure whose message is the whole story for the user (no traceback)."""


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions users cause with their inputs; printed as one clear message."""
    from trainer.checkpoint import CheckpointError
    from trainer.data.augment import AugmentError
    from trainer.data.errors import DatasetLayoutError
    from trainer.data.image_files import UnreadableFileError
    from trainer.data.labelme import LabelmeError
    from trainer.data.mask_encoding import MaskValueError
    from trainer.data.report import DatasetError
    from trainer.evaluate import EvaluateError
    from trainer.export import ExportError
    from trainer.loop import TrainingError
    from trainer.models.registry import UnknownModelError
    from trainer.predict import PredictError
    from trainer.runtime import DeviceError

    return (
        CheckpointError,
        AugmentError,
        UnreadableFileError,
        DatasetError,
        LabelmeError,
        DatasetLayoutError,
        MaskValueError,
        EvaluateError,
        ExportError,
        TrainingError,
        UnknownModelError,
        PredictError,
        DeviceError,
    )


def _train(args: argparse.Namespace) -> int:
    from trainer.checkpoint import load_checkpoint
    from trainer.config import apply_overrides, validate_config
    from trainer.distributed import launched_rank, launched_world_size
    from trainer.loop import fit

    if args.config is None and args.resume is None:
        raise CommandError("give a CONFIG file, or --resume CHECKPOINT to continue a run")
    # --init-from is shorthand for --set init_from=PATH; an explicit --set given later wins.
    overrides = [*([f"init_from={args.init_from}"] if args.init_from else []), *args.overrides]
    if args.config is not None:
        cfg = load_config(args.config, overrides)
    else:
        saved = load_checkpoint(args.resume).config.model_dump(mode="json")
        cfg = validate_config(apply_overrides(saved, overrides))
    out_dir: Path = args.out or (args.resume.parent if args.resume else Path("runs") / "latest")
    if launched_world_size() > 1:
        if args.nproc_per_node is not None:
            raise CommandError(
                f"this process is already one of {launched_world_size()} started by a launcher "
                "(torchrun); drop --nproc-per-node, the launcher's own flag decides"
            )
    else:
        nproc = args.nproc_per_node if args.nproc_per_node is not None else cfg.gpus
        if nproc < 1:
            raise CommandError(f"--nproc-per-node takes 1 or more processes (got {nproc})")
        if nproc > 1:
            return _launch_training(args, nproc, out_dir)

    # Every rank trains; rank 0 alone writes files, reports and prints.
    if launched_rank() != 0:
        logging.getLogger().setLevel(logging.WARNING)
        fit(cfg, out_dir=out_dir, resume_from=args.resume)
        return 0
    return _train_reporting(args, cfg, out_dir)


def _train_reporting(args: argparse.Namespace, cfg: TrainConfig, out_dir: Path) -> int:
    """Train as the process that writes the files and reports: to the terminal, metrics.csv
    and, with a server, the tracked run."""
    from trainer.loop import fit
    from trainer.reporting import ConsoleReporter, CsvReporter, MultiReporter, Reporter

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(
        json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
    )
    reporters: list[Reporter] = [
        ConsoleReporter(progress_bars=sys.stderr.isatty()),
        CsvReporter(out_dir / "metrics.csv"),
    ]
    server = args.server or os.environ.get("SEGTRACK_SERVER") or None
    tracked = _start_tracking(args, cfg, out_dir, server) if server else None
    if tracked is not None:
        from segtrack.tracking.reporter import HttpReporter

        reporters.append(HttpReporter(tracked))
    try:
        result = fit(cfg, MultiReporter(reporters), out_dir=out_dir, resume_from=args.resume)
    except BaseException as error:
        if tracked is not None:
            _finish_failed(tracked, error)
        raise
    if tracked is not None:
        tracked.finish("cancelled" if result.status == "stopped" else "succeeded")
    best = "none" if result.best_metric is None else f"{result.best_metric:.4f}"
    print(
        f"{result.status}: {result.epochs_done} epochs; best {result.monitor} {best} "
        f"at epoch {result.best_epoch}; files in {out_dir}"
    )
    return 0


def _start_tracking(
    args: argparse.Namespace, cfg: TrainConfig, out_dir: Path, server: str
) -> TrackedRun:
    """The run this training reports to on `server`, spooled under `<out>/spool`."""
    from segtrack.tracking import track
    from segtrack.tracking.spool import latest_run_id

    # One line per request would drown the epoch summaries.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    spool_dir = out_dir / "spool"
    resumed_from = latest_run_id(args.resume.parent / "spool", server) if args.resume else None
    tracked = track(
        name=args.name,
        config=cfg,
        tags=args.tags,
        server=server,
        spool_dir=spool_dir,
        resumed_from=resumed_from,
        origin="cli",
    )
    tracked.capture_logs()
    return tracked


def _finish_failed(tracked: TrackedRun, error: BaseException) -> None:
    """End the tracked run as training ended: cancelled by Ctrl-C, else failed with the
    one-line reason and the traceback as the last lines of its log."""
    from segtrack.tracking.script_end import failure_reason
    from trainer.loop import TrainingError

    if isinstance(error, KeyboardInterrupt):
        tracked.finish("cancelled", "interrupted (Ctrl-C)")
        return
    if isinstance(error, TrainingError):
        reason = error.reason
    elif isinstance(error, (CommandError, ConfigError, *_user_errors())):
        reason = str(error)
    else:
        reason = failure_reason(error)
    tracked.log_lines("".join(traceback.format_exception(error)).splitlines())
    tracked.finish("failed", reason)


def _launch_training(args: argparse.Namespace, nproc: int, out_dir: Path) -> int:
    """Run this train command on `nproc` local processes under torch's elastic launcher.

    Each process runs `python -m segtrack train` with the same arguments (less
    --nproc-per-node) and finds its rank in its environment; the launcher ends them all as soon
    as one fails. Returns the exit code of the first process that failed, else 0.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    from trainer.distributed import standalone_launch

    forwarded = [*([str(args.config)] if args.config is not None else [])]
    for assignment in args.overrides:
        forwarded += ["--set", assignment]
    forwarded += ["--out", str(out_dir)]
    if args.resume is not None:
        forwarded += ["--resume", str(args.resume)]
    if args.init_from:
        forwarded += ["--init-from", args.init_from]
    if args.server:
        forwarded += ["--server", args.server]
    if args.name:
        forwarded += ["--name", args.name]
    for tag in args.tags:
        forwarded += ["--tag", tag]
    command = ["-m", "segtrack", *(["--verbose"] if args.verbose else []), "train", *forwarded]
    launch = standalone_launch(nproc, "segtrack")
    # The launcher narrates every state change at INFO; its failures still show.
    logging.getLogger("torch.distributed").setLevel(logging.WARNING)
    try:
        elastic_launch(launch, sys.executable)(*command)
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        print(
            f"error: training process {rank} of {nproc} failed (exit code {failure.exitcode}); "
            "its message is above",
            file=sys.stderr,
        )
        return failure.exitcode if failure.exitcode > 0 else 1
    return 0


def _sync(args: argparse.Namespace) -> int:
    from segtrack.tracking.sync import default_dirs, sync_all

    dirs = args.dirs or default_dirs()
    results = sync_all(dirs, server=args.server)
    if not results:
        print(f"no spooled runs in {', '.join(str(folder) for folder in dirs)}")
        return 0
    for result in results:
        if result.problem is None:
            print(f"run {result.key} -> {result.url}: {result.sent} records sent")
        else:
            print(
                f"run {result.key}: {result.left} records not sent ({result.problem})",
                file=sys.stderr,
            )
    return 1 if any(result.problem is not None for result in results) else 0


def _predict(args: argparse.Namespace) -> int:
    from trainer.predict import PredictOptions, predict_paths

    options = PredictOptions(
        batch_size=args.batch_size,
        threshold=args.threshold,
        flip_tta=args.tta,
        probabilities=args.probabilities,
        overlays=args.overlay,
        device=args.device,
    )
    summary = predict_paths(args.checkpoint, args.inputs, args.out, options)
    total = max(sum(summary.class_counts.values()), 1)
    shares = ", ".join(
        f"{name} {count / total:.1%}" for name, count in summary.class_counts.items()
    )
    print(f"wrote {len(summary.masks)} masks to {args.out} (pixels: {shares})")
    return 0


_SPLIT_MEANINGS = {
    "test": "images/test + masks/test, or test.txt in a Pascal VOC folder",
    "val": "the validation part training held out",
    "all": "every pair",
}


def _other_splits_hint(args: argparse.Namespace, available: Sequence[str]) -> str:
    """Commands to run instead, one per split the dataset has."""
    others = [split for split in available if split != args.split]
    if not others:
        return ""
    command = f"segtrack evaluate --checkpoint {shlex.quote(str(args.checkpoint))} "
    command += shlex.quote(str(args.dataset))
    lines = [f"  {command} --split {split}   # {_SPLIT_MEANINGS[split]}" for split in others]
    return "\nevaluate a part it has instead:\n" + "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    from trainer.evaluate import EvaluateOptions, MissingSplitError, evaluate_checkpoint

    options = EvaluateOptions(
        split=args.split,
        flip_tta=args.tta,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
    )
    try:
        evaluation = evaluate_checkpoint(args.checkpoint, args.dataset, options)
    except MissingSplitError as error:
        raise CommandError(f"{error}{_other_splits_hint(args, error.available)}") from error
    print(evaluation.format_table())
    if args.out is not None:
        written = evaluation.write(args.out)
        print(f"wrote {', '.join(str(path) for path in written)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from trainer.export import export_model

    size = (args.height, args.width) if args.height and args.width else None
    result = export_model(args.checkpoint, args.format, args.out, size=size)
    checks = ", ".join(f"{shape}: {diff:.1e}" for shape, diff in result.max_abs_diff.items())
    print(f"wrote {result.path} ({result.format}); max |difference| from PyTorch: {checks}")
    return 0


def _inspect_data(args: argparse.Namespace) -> int:
    from trainer.data.errors import DatasetLayoutError
    from trainer.data.inspection import inspect_dataset

    try:
        report = inspect_dataset(
            args.path,
            layout=args.layout,
            mask_suffix=args.mask_suffix,
            num_classes=args.num_classes,
            mask_ignore_value=args.ignore_value,
        )
    except DatasetLayoutError as error:
        print(f"error: {error}")
        return 1
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text())
    return 0 if report.ok else 1


def _convert_labelme(args: argparse.Namespace) -> int:
    from trainer.data.labelme import convert_labelme

    labels = [name.strip() for name in args.labels.split(",")] if args.labels else None
    result = convert_labelme(args.src, args.dst, labels=labels)
    classes = ", ".join(result.class_names)
    print(f"converted {result.count} annotations into {args.dst} (classes: {classes})")
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from trainer.data.demo import DEMO_TEST_COUNT, make_demo_dataset

    test_count = DEMO_TEST_COUNT if args.test_count is None else args.test_count
    try:
        demo = make_demo_dataset(
            args.dir, count=args.count, size=args.size, seed=args.seed, test_count=test_count
        )
    except ValueError as error:
        raise CommandError(str(error)) from error
    classes = ", ".join(demo.class_names)
    held_out = f" and {demo.test_count} test pairs under images/test" if demo.test_count else ""
    print(f"wrote {demo.count} images and masks{held_out} to {demo.root} (classes: {classes})")
    return 0


def _up(args: argparse.Namespace) -> int:
    from segtrack.embedded import EmbeddedOptions, run_embedded

    return run_embedded(EmbeddedOptions(host=args.host, port=args.port, data_dir=args.data_dir))


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from segtrack.serve_access import ServeRefused, prepare_serving
    from server.app import build_app
    from server.db import SchemaOutdatedError, create_db_engine, require_schema_at_head
    from server.settings import get_settings

    engine = create_db_engine(get_settings().database_url)
    try:
        require_schema_at_head(engine)
    except SchemaOutdatedError as error:
        raise CommandError(str(error)) from error
    finally:
        engine.dispose()
    try:
        prepare_serving(args.host, args.port, insecure_no_auth=args.insecure_no_auth)
    except ServeRefused as error:
        raise CommandError(str(error)) from error
    if args.workers < 1:
        raise CommandError(f"--workers takes 1 or more processes (got {args.workers})")
    # Several processes take the import string (each builds its own app); one takes the app.
    app: str | object = "server.app:build_app" if args.workers > 1 else build_app()
    uvicorn.run(
        app,  # type: ignore[arg-type]
        factory=args.workers > 1,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        timeout_graceful_shutdown=2,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from server.db import SchemaOutdatedError
    from server.settings import get_settings
    from worker.process import exit_without_teardown, run_worker
    from worker.slots import discover_slots

    settings = get_settings()
    queues = [queue.strip() for queue in args.queues.split(",") if queue.strip()]
    gpus = [gpu.strip() for gpu in args.gpus.split(",")] if args.gpus is not None else None
    try:
        host = discover_slots(gpus=gpus, cpu_slots=args.slots)
    except ValueError as error:
        raise CommandError(str(error)) from error
    try:
        code = run_worker(settings, host, queues=queues or [settings.default_queue])
    except SchemaOutdatedError as error:
        raise CommandError(str(error)) from error
    exit_without_teardown(code)


def _db_upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from server.db import upgrade_database
    from server.settings import get_settings

    url = get_settings().database_url
    # Terminals and CI logs keep what is printed: the password is shown as ***.
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        upgrade_database(url)
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        raise CommandError(
            f"cannot reach the database at {shown}: {reason}; check SEGTRACK_DATABASE_URL"
        ) from error
    print(f"database at the current schema: {shown}")
    return 0


def _config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_json_schema(), indent=2))
    return 0


def _add_train(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "train",
        help="train a model from a YAML/JSON config",
        description="Train a segmentation model. Writes metrics.csv, best.pt, last.pt and "
        "config.json into --out. Under torchrun each process trains one rank of the run and "
        "rank 0 writes the files.",
    )
    parser.add_argument("config", nargs="?", type=Path, help="YAML or JSON TrainConfig file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set epochs=50 --set image_size=[256,256]",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: runs/latest)")
    parser.add_argument(
        "--resume", type=Path, metavar="CHECKPOINT", help="continue from DIR/last.pt"
    )
    parser.add_argument(
        "--init-from",
        metavar="PATH",
        help="fine-tune: start from the weights of a checkpoint or state-dict file where names "
        "and shapes match (same as --set init_from=PATH; ignored with --resume)",
    )
    parser.add_argument(
        "--nproc-per-node",
        type=int,
        metavar="N",
        help="train on N local processes (one GPU each, or CPU processes without CUDA) started "
        "by torch's elastic launcher; default: the config's gpus. Across hosts, start "
        "`torchrun --nnodes M --nproc-per-node N ... -m segtrack train CONFIG` on each instead",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="report the run to this segtrack server (default: $SEGTRACK_SERVER; token: "
        "$SEGTRACK_TOKEN): metrics, previews, checkpoints and the log, spooled under "
        "OUT/spool while the server cannot be reached (`segtrack sync` sends what is left)",
    )
    parser.add_argument("--name", help="the run's name on the server")
    parser.add_argument(
        "--tag", dest="tags", action="append", default=[], metavar="TAG", help="repeatable"
    )
    parser.set_defaults(handler=_train)


def _add_sync(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "sync",
        help="send spooled runs to their server",
        description="Send what runs trained with `segtrack train --server` or `segtrack.track` "
        "left in their spool (the server was away, or none was given) to the server. Syncing "
        "again sends nothing new; a run keeps its server id. Token: $SEGTRACK_TOKEN, or the "
        "one `segtrack up` on this machine remembered.",
    )
    parser.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        metavar="DIR",
        help="a run's spool folder or a folder of them (default: runs/*/spool and "
        "$SEGTRACK_SPOOL_DIR or ~/.segtrack/spool)",
    )
    parser.add_argument(
        "--server", metavar="URL", help="send to this server instead of the one each run named"
    )
    parser.set_defaults(handler=_sync)


def _add_predict(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "predict",
        help="predict masks for images and folders",
        description="Write masks at the original size in the training masks' encoding.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="images or folders")
    parser.add_argument("--checkpoint", required=True, type=Path, help="best.pt or last.pt")
    parser.add_argument("--out", required=True, type=Path, help="folder for the masks")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="binary models: P(foreground) cut-off"
    )
    parser.add_argument("--tta", action="store_true", help="average over horizontal/vertical flips")
    parser.add_argument("--probabilities", action="store_true", help="also write <name>_prob.npy")
    parser.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.set_defaults(handler=_predict)


def _add_evaluate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="score a checkpoint on a dataset's test split",
        description="Compute the validation metrics of a checkpoint on a held-out part of "
        "DATASET, decoding its masks with the checkpoint's class mapping; keys name the part "
        "(test/iou, val/iou, all/iou, ...). The test split is images/test + masks/test, or "
        "ImageSets/Segmentation/test.txt in a Pascal VOC folder; a dataset without one "
        "(demo data written with --test-count 0) is scored with --split val.",
    )
    parser.add_argument("dataset", type=Path, metavar="DATASET", help="dataset folder")
    parser.add_argument("--checkpoint", required=True, type=Path, help="best.pt or last.pt")
    parser.add_argument(
        "--split",
        default="test",
        choices=["test", "val", "all"],
        help="test (default); val: the validation part training used (metrics val/*, as "
        "training logged them); all: every pair (all/*)",
    )
    parser.add_argument("--tta", action="store_true", help="average over horizontal/vertical flips")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also write metrics.json, per_class.csv, confusion_matrix.csv (truth rows, "
        "prediction columns) and per_image.csv (each image's iou, dice, pixels_wrong and "
        "per-class iou/dice) here",
    )
    parser.add_argument("--batch-size", type=int, help="default: the checkpoint's batch_size")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loading processes")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.set_defaults(handler=_evaluate)


def _add_export(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("export", help="export a checkpoint to ONNX or TorchScript")
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--height", type=int, help="example input height (default: training size)")
    parser.add_argument("--width", type=int, help="example input width (default: training size)")
    parser.set_defaults(handler=_export)


def _add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inspect = commands.add_parser(
        "inspect-data",
        help="check a dataset before training",
        description="Report pairs, unmatched and unreadable files, size mismatches, mask values "
        "and the class each maps to. Exits 1 when a training run would refuse the dataset.",
    )
    inspect.add_argument("path", type=Path)
    inspect.add_argument(
        "--layout", default="auto", choices=["auto", "images-masks", "voc", "class-folders"]
    )
    inspect.add_argument("--mask-suffix", help="e.g. _mask (detected when omitted)")
    inspect.add_argument("--num-classes", type=int)
    inspect.add_argument("--ignore-value", type=int, help="raw mask value to ignore")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(handler=_inspect_data)

    convert = commands.add_parser("convert", help="convert annotations into a dataset")
    formats = convert.add_subparsers(dest="source_format", required=True, metavar="FORMAT")
    labelme = formats.add_parser(
        "labelme",
        help="labelme JSON polygons -> images/ + masks/ + classes.json",
    )
    labelme.add_argument("src", type=Path, help="folder of labelme .json files")
    labelme.add_argument("dst", type=Path, help="new dataset folder")
    labelme.add_argument("--labels", help="comma-separated class order (background is 0)")
    labelme.set_defaults(handler=_convert_labelme)

    demo = commands.add_parser("demo-data", help="write a small synthetic dataset")
    demo.add_argument("dir", type=Path)
    demo.add_argument("--count", type=int, default=48)
    demo.add_argument("--size", type=int, default=64)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--test-count",
        type=int,
        help="held-out pairs written to images/test and masks/test, which training never reads "
        "and `segtrack evaluate` scores (default: as many as `segtrack up`'s demo dataset "
        "holds out; 0 for none)",
    )
    demo.set_defaults(handler=_demo_data)

    schema = commands.add_parser("config-schema", help="print TrainConfig's JSON schema")
    schema.set_defaults(handler=_config_schema)


def _add_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser(
        "up",
        help="start the whole service locally (API + worker + SQLite + embedded broker)",
        description="Start the API and one worker with SQLite and a filesystem broker under "
        "--data-dir, register the demo dataset on the first start and print the URL. Ctrl-C "
        "stops everything.",
    )
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--data-dir", type=Path, default=Path(".segtrack"))
    up.set_defaults(handler=_up)

    serve = commands.add_parser("serve", help="run the API server only (settings from SEGTRACK_*)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes (one Python process uses at most one core; default 1)",
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="no accounts: anyone who reaches the port may do anything (trusted networks only)",
    )
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker",
        help="run a training worker owning this host's GPUs (settings from SEGTRACK_*)",
        description="One Celery worker process owning GPUs (or CPU slots) as slots: it trains "
        "each run in a child process on as many slots as the run asks for (`gpus`), several "
        "runs at once when they fit.",
    )
    worker.add_argument(
        "--gpus", help="comma-separated GPU indices or UUIDs, e.g. 0,1 (default: all visible)"
    )
    worker.add_argument(
        "--slots",
        type=int,
        help="CPU slots of a host without GPUs (default 1; not with --gpus)",
    )
    worker.add_argument(
        "--queues", default="", help="comma-separated queues (default: the default queue)"
    )
    worker.set_defaults(handler=_worker)

    database = commands.add_parser("db", help="database schema")
    actions = database.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="bring the database to the current schema")
    upgrade.set_defaults(handler=_db_upgrade)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segtrack", description="Train, track and inspect image segmentation models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_sync(commands)
    _add_predict(commands)
    _add_evaluate(commands)
    _add_export(commands)
    _add_data_commands(commands)
    _add_service_commands(commands)
    add_account_commands(commands)
    add_sweep_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic announces each of its plugins at INFO; the migrations themselves stay visible.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (CommandError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if isinstance(error, _user_errors()):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
