"""`fit(cfg, reporter)`: the training recipe, top to bottom.

join the run's processes -> check the data -> build loaders, model, loss, optimizer -> (resume)
-> per epoch: set the rate, train, refresh BatchNorm statistics early in a run, validate on the
whole validation set (every image scored), report metrics, the validation detail and previews,
checkpoint (written in the background), stop
early or on request.

The same recipe runs as one process or as every rank of a run under torch's elastic launcher;
`trainer.distributed` holds what differs (shards, sums over ranks, agreed decisions).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from trainer.checkpoint import (
    Checkpoint,
    TrainingState,
    checkpoint_payload,
    load_checkpoint,
    restore_rng_state,
)
from trainer.checkpoint_writer import CheckpointFile, CheckpointWriteError, CheckpointWriter
from trainer.config import TrainConfig
from trainer.data.inspection import inspect_for_config
from trainer.data.loaders import DataBundle, LoaderWaitMeter, build_data
from trainer.data.report import InspectionReport, require_ok
from trainer.distributed import DistributedSetupError, World, join_world
from trainer.encoder_freeze import freeze_encoder_for_epoch, hold_frozen_norms, is_frozen_norm
from trainer.environment import describe_environment
from trainer.inference import InputNormalizer
from trainer.losses import build_loss, output_channels
from trainer.model_card import PeakMemory, measure_model_card, training_size
from trainer.models.registry import build_model
from trainer.models.weights_file import WeightsFileError
from trainer.optim import LrSchedule, build_optimizer, lr_scale
from trainer.previews import PreviewSet, worst_images
from trainer.reporting import EpochProgress, NullReporter, PreviewSample, Reporter, RunInfo
from trainer.runtime import Precision, resolve_precision, seed_everything
from trainer.scoring import ScoredSet, score_set
from trainer.validation_detail import ValidationDetail
from trainer.warm_start import WeightsSource, apply_warm_start, read_weights_source

logger = logging.getLogger(__name__)

FitStatus = Literal["completed", "early_stopped", "stopped", "stopped_after_epoch"]
"""`stopped`: `should_stop()` said so mid-epoch; `stopped_after_epoch`: `stop_after_epoch()`
said so once an epoch was reported and checkpointed."""

BATCHNORM_REFRESH_BELOW_STEPS = 50
"""Until a run has taken this many optimizer steps in all, each epoch re-estimates BatchNorm
statistics over the training set before validating. With momentum 0.1 a handful of updates
leaves the running statistics near their initial values, which made validation scores of
small datasets swing from epoch to epoch; the statistics carry over between epochs, so after
~50 updates (0.9**50 < 1 %) they no longer depend on where they started and the extra pass
over the training set would only cost time."""

PROGRESS_EVERY_MIN_BATCHES = 8
"""Progress (loss readback, NaN check, stop request) is checked at most this often, in batches."""

ARCHITECTURE_KEYS = ("model", "base_channels", "depth", "upsampling", "deep_supervision", "loss")
"""Config keys a resumed run must keep: they decide the shape of the weights."""


class TrainingError(RuntimeError):
    """A run that cannot go on; `reason` is the one-line cause shown to users."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FitResult:
    """How a run ended."""

    status: FitStatus
    epochs_done: int
    monitor: str
    best_metric: float | None
    best_epoch: int | None
    last_metrics: Mapping[str, float]
    best_checkpoint: Path | None
    last_checkpoint: Path | None


@dataclass
class _Progress:
    """Mutable bookkeeping of the run, checkpointed as TrainingState."""

    epoch: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    global_step: int = 0
    last_metrics: dict[str, float] = field(default_factory=dict)

    def snapshot(self) -> TrainingState:
        return TrainingState(
            self.epoch, self.best_metric, self.best_epoch, self.bad_epochs, self.global_step
        )

    def improves(self, value: float | None, mode: str, min_delta: float = 0.0) -> bool:
        """Whether `value` beats the best so far by more than `min_delta`."""
        if value is None or not math.isfinite(value):
            return False
        if self.best_metric is None:
            return True
        if mode == "min":
            return value < self.best_metric - min_delta
        return value > self.best_metric + min_delta


@dataclass
class _Run:
    """Everything built for one run; passed to the epoch functions.

    `model` is the plain module (checkpointed, warm-started, restored); `trained` is what the
    training steps call (wrapped for data parallelism and/or compiled); `evaluated` is what
    validation, previews and the BatchNorm refresh call (compiled, never wrapped: no rank
    waits on another there). With one process and no compile all three are the same module.
    """

    cfg: TrainConfig
    world: World
    data: DataBundle
    device: torch.device
    precision: Precision
    model: nn.Module
    trained: nn.Module
    evaluated: nn.Module
    data_parallel: DistributedDataParallel | None
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LrSchedule
    scaler: torch.amp.GradScaler
    normalizer: InputNormalizer
    reporter: Reporter
    checkpoints: CheckpointWriter
    out_channels: int
    notes: tuple[str, ...]
    memory: PeakMemory

    def autocast(self) -> torch.autocast:
        return self.precision.autocast(self.device)


def fit(
    cfg: TrainConfig,
    reporter: Reporter | None = None,
    *,
    out_dir: Path,
    resume_from: Path | None = None,
) -> FitResult:
    """Train `cfg` and write `best.pt` / `last.pt` into `out_dir`.

    Started by torch's elastic launcher (WORLD_SIZE, RANK, LOCAL_RANK, ... in the environment),
    each process calls `fit` as one rank of one run: `batch_size` is per process, only rank 0
    reports (the others' `reporter` is replaced by a NullReporter), predicts previews and writes
    checkpoints, and the run ends on every rank with the reason of the rank that failed.

    Raises:
        DatasetError: the dataset fails inspection (raised before epoch 1, with the report).
        TrainingError: a non-finite loss or running out of GPU memory, with advice; an
            `init_from` file that is missing, unreadable or shares no tensor with the model;
            a checkpoint that cannot be written (naming the file; checkpoints are written in
            the background, and fit returns or raises only once every write has ended);
            in a run on several processes, "rank r: <reason>" when another rank failed.
    """
    try:
        world = join_world(cfg.device)
    except DistributedSetupError as error:
        raise TrainingError(str(error)) from error
    try:
        reports = reporter if reporter is not None and world.is_main else NullReporter()
        return _fit(world, cfg, reports, out_dir=out_dir, resume_from=resume_from)
    except Exception as error:
        reason = world.explain_failure(error)
        if reason is None:
            raise
        raise TrainingError(reason) from error
    finally:
        world.close()


def _fit(
    world: World,
    cfg: TrainConfig,
    reporter: Reporter,
    *,
    out_dir: Path,
    resume_from: Path | None,
) -> FitResult:
    resumed = load_checkpoint(resume_from) if resume_from is not None else None
    if resumed is not None:
        _check_resumable(cfg, resumed)
    # Read before the dataset is inspected, so a wrong path fails in a second, not minutes.
    warm_source = _read_init_from(cfg) if resumed is None else None

    report = _inspect(cfg, world)
    precision = resolve_precision(cfg.amp, world.device)
    seed_everything(cfg.seed, deterministic=cfg.deterministic)
    data = build_data(
        cfg,
        report,
        pin_memory=world.device.type == "cuda",
        rank=world.rank,
        world_size=world.world_size,
    )
    _check_monitor(cfg, data.class_names)
    _check_world(data, world)

    run = _build_run(cfg, data, world, precision, reporter, fresh=resumed is None)
    progress = _Progress()
    if resumed is not None:
        progress = _restore(run, resumed)
        if cfg.init_from is not None:
            logger.info("resuming, so init_from %s is ignored", cfg.init_from)
    elif warm_source is not None:
        _warm_start(run, warm_source)
    previews = (
        PreviewSet.from_dataset(data.val_dataset, data.preview_indices, data.val_names)
        if world.is_main
        else None
    )

    reporter.on_start(_run_info(run, report.warnings, progress))
    run.memory.start()

    if world.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Leaving the writer waits for every checkpoint write, also when training failed.
        with run.checkpoints:
            status = _train_epochs(run, progress, previews, out_dir)
    except CheckpointWriteError as error:
        raise TrainingError(str(error)) from error

    best_path, last_path = out_dir / "best.pt", out_dir / "last.pt"
    return FitResult(
        status=status,
        epochs_done=progress.epoch,
        monitor=cfg.monitor,
        best_metric=progress.best_metric,
        best_epoch=progress.best_epoch,
        last_metrics=progress.last_metrics,
        best_checkpoint=best_path if best_path.exists() else None,
        last_checkpoint=last_path if last_path.exists() else None,
    )


def _train_epochs(
    run: _Run, progress: _Progress, previews: PreviewSet | None, out_dir: Path
) -> FitStatus:
    """The epochs from the one after `progress.epoch` to the last, or to a stop."""
    cfg, world, reporter = run.cfg, run.world, run.reporter
    for epoch in range(progress.epoch + 1, cfg.epochs + 1):
        if world.broadcast_flag(reporter.should_stop()):
            return "stopped"
        try:
            validated = _run_epoch(run, epoch, progress)
            samples = _preview_samples(run, previews, validated)
        except torch.cuda.OutOfMemoryError as error:
            raise TrainingError(_out_of_memory_advice(cfg)) from error
        if validated is None:
            return "stopped"
        metrics, scored = validated
        progress.epoch = epoch
        progress.last_metrics = metrics
        reporter.on_epoch_end(epoch, metrics)
        if world.is_main and scored.images is not None:
            reporter.on_validation_detail(
                ValidationDetail(
                    epoch=epoch,
                    class_names=run.data.class_names,
                    confusion=scored.confusion,
                    images=scored.images,
                )
            )
        reporter.on_preview(epoch, samples)
        if world.broadcast_flag(_checkpoint(run, progress, out_dir)):
            return "early_stopped"
        if epoch < cfg.epochs and world.broadcast_flag(reporter.stop_after_epoch(epoch)):
            return "stopped_after_epoch"
    return "completed"


def _preview_samples(
    run: _Run,
    previews: PreviewSet | None,
    validated: tuple[dict[str, float], ScoredSet] | None,
) -> list[PreviewSample]:
    """Rank 0: predictions of the fixed set, the images a user pinned and this epoch's worst
    by the monitored score (from the validation that just scored every image)."""
    if previews is None or validated is None:
        return []
    images = validated[1].images
    worst = (
        worst_images(images, run.cfg.monitor, run.data.class_names, run.cfg.preview_worst)
        if images is not None
        else []
    )
    chosen = previews.choose(pinned=run.reporter.pinned_images(), worst=worst)
    return previews.predict(run.evaluated, run.normalizer, flip_tta=run.cfg.tta, chosen=chosen)


def _inspect(cfg: TrainConfig, world: World) -> InspectionReport:
    """Rank 0 reads the dataset's files; the other ranks take its report."""
    report = require_ok(inspect_for_config(cfg)) if world.is_main else None
    return world.broadcast_object(report)


def _check_world(data: DataBundle, world: World) -> None:
    if len(data.train_names) < world.world_size:
        raise TrainingError(
            f"the training set has {len(data.train_names)} images, fewer than the "
            f"{world.world_size} processes of the run; use at most {len(data.train_names)} "
            "processes (gpus) or add images"
        )


def _run_info(run: _Run, warnings: Sequence[str], progress: _Progress) -> RunInfo:
    data, cfg = run.data, run.cfg
    return RunInfo(
        class_names=data.class_names,
        num_train=len(data.train_names),
        num_val=len(data.val_names),
        in_channels=data.in_channels,
        epochs=cfg.epochs,
        start_epoch=progress.epoch + 1,
        device=f"{run.device} ({run.precision.name})",
        steps_per_epoch=math.ceil(len(data.train_loader) / cfg.grad_accum_steps),
        parameters=sum(p.numel() for p in run.model.parameters()),
        mask_encoding=data.encoding.to_dict(),
        warnings=(*warnings, *run.precision.warnings, *data.notes, *run.notes),
        world_size=run.world.world_size,
        effective_batch_size=cfg.batch_size * run.world.world_size * cfg.grad_accum_steps,
        # Only rank 0 reports, so only it asks git and CUDA.
        environment=describe_environment() if run.world.is_main else {},
        model_card=_model_card(run, progress.epoch + 1) if run.world.is_main else {},
    )


def _model_card(run: _Run, first_epoch: int) -> dict[str, Any]:
    """The model's cost at the training size, on rank 0 right before its first epoch (others wait).

    The encoder is frozen (or not) as that epoch will have it first, so the trainable count is
    what the first epoch trains.
    """
    size = training_size(run.cfg.image_size, run.data.val_dataset)
    if size is None:
        return {}
    freeze_encoder_for_epoch(run.model, run.cfg, first_epoch)
    return measure_model_card(
        run.model,
        in_channels=run.data.in_channels,
        image_size=size,
        batch_size=run.cfg.batch_size,
        device=run.device,
        autocast=run.autocast,
        precision=run.precision.name,
        channels_last=run.cfg.channels_last,
    ).to_dict()


def _checkpoint(run: _Run, progress: _Progress, out_dir: Path) -> bool:
    """Track the monitored metric, save best/last checkpoints; True when patience ran out.

    Both files of an epoch come from one snapshot, written in the background; the reporter
    hears of them once they are complete (see trainer.checkpoint_writer).
    """
    cfg, epoch = run.cfg, progress.epoch
    monitored = progress.last_metrics.get(cfg.monitor)
    run.schedule.observe(monitored if monitored is not None else math.nan, mode=cfg.monitor_mode)
    # Patience restarts only on a real improvement; the best checkpoint follows any.
    if progress.improves(monitored, cfg.monitor_mode, cfg.early_stopping_min_delta):
        progress.bad_epochs = 0
    else:
        progress.bad_epochs += 1
    files = [CheckpointFile("last", out_dir / "last.pt", epoch, monitored)]
    if progress.improves(monitored, cfg.monitor_mode):
        progress.best_metric, progress.best_epoch = monitored, epoch
        files.insert(0, CheckpointFile("best", out_dir / "best.pt", epoch, monitored))
    # Every rank keeps the same books (its metrics are the all-reduced ones); rank 0 writes.
    if run.world.is_main:
        run.checkpoints.save(files, lambda: _snapshot(run, progress))

    patience = cfg.early_stopping_patience
    if patience is None or progress.bad_epochs < patience:
        return False
    logger.info(
        "early stopping: %s has not improved by more than %g for %d epochs (best %.4g at epoch %s)",
        cfg.monitor,
        cfg.early_stopping_min_delta,
        patience,
        progress.best_metric,
        progress.best_epoch,
    )
    return True


def _build_run(
    cfg: TrainConfig,
    data: DataBundle,
    world: World,
    precision: Precision,
    reporter: Reporter,
    *,
    fresh: bool,
) -> _Run:
    """Model, optimizer and the rest on `world`'s device; `fresh=False` for a resume, whose
    weights come from its checkpoint (so `encoder_weights` is not read again: it may be gone)."""
    device = world.device
    out_channels = output_channels(cfg.loss, data.num_classes)
    model = build_model(
        cfg, in_channels=data.in_channels, out_channels=out_channels, load_encoder_weights=fresh
    ).to(device)
    sync_batchnorm, notes = _sync_batchnorm(cfg, world)
    if sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = build_optimizer(model, cfg)
    data_parallel = world.data_parallel(model, some_weights_frozen=cfg.freeze_encoder_epochs > 0)
    # The plain module is what gets checkpointed; the wrapped and compiled ones are what run.
    trained: nn.Module = data_parallel if data_parallel is not None else model
    evaluated: nn.Module = model
    if cfg.compile:
        trained = torch.compile(trained)  # type: ignore[assignment]
        evaluated = trained if data_parallel is None else torch.compile(model)  # type: ignore[assignment]
    return _Run(
        cfg=cfg,
        world=world,
        data=data,
        device=device,
        precision=precision,
        model=model,
        trained=trained,
        evaluated=evaluated,
        data_parallel=data_parallel,
        loss_fn=build_loss(cfg, data.num_classes).to(device),
        optimizer=optimizer,
        schedule=LrSchedule(optimizer, cfg, scale=lr_scale(cfg, world.world_size)),
        scaler=torch.amp.GradScaler(device.type, enabled=precision.use_scaler),
        normalizer=InputNormalizer(
            cfg.normalization, data.in_channels, device, channels_last=cfg.channels_last
        ),
        reporter=reporter,
        checkpoints=CheckpointWriter(reporter),
        out_channels=out_channels,
        notes=notes,
        memory=PeakMemory(device),
    )


def _sync_batchnorm(cfg: TrainConfig, world: World) -> tuple[bool, tuple[str, ...]]:
    """Whether BatchNorm layers share batch statistics across ranks, and why not if asked."""
    wanted = cfg.sync_batchnorm if cfg.sync_batchnorm is not None else world.is_distributed
    if not wanted or not world.is_distributed:
        return False, ()
    if world.device.type != "cuda":
        note = "sync_batchnorm needs CUDA; on the CPU each process normalises its own batches"
        return False, (note,) if cfg.sync_batchnorm else ()
    return True, ()


def _run_epoch(
    run: _Run, epoch: int, progress: _Progress
) -> tuple[dict[str, float], ScoredSet] | None:
    """Train and validate one epoch: its metrics and the validation's counts; None when the
    reporter asked to stop mid-epoch."""
    started = time.perf_counter()
    lr = run.schedule.apply(epoch)
    run.data.train_sampler.set_epoch(epoch)
    trained = _train_epoch(run, epoch, progress)
    train_seconds = time.perf_counter() - started
    if trained.stopped:
        return None
    if progress.global_step < BATCHNORM_REFRESH_BELOW_STEPS:
        _refresh_batchnorm(run)
    else:
        # Each rank's statistics saw its own batches; validation needs one model.
        run.world.average_buffers_(run.model)
    scored = _validate(run)
    metrics = {"lr": lr, "train/loss": trained.loss, **scored.metrics}
    for group in run.optimizer.param_groups:
        if group.get("name") == "encoder":  # encoder_lr_multiplier gave it a rate of its own
            metrics["lr/encoder"] = float(group["lr"])
    if trained.grad_norm is not None:
        metrics["train/grad_norm"] = trained.grad_norm
    metrics["train/images_per_s"] = trained.images / max(train_seconds, 1e-9)
    metrics.update(run.memory.metrics())
    return metrics, scored


@dataclass(frozen=True)
class _EpochTraining:
    """What one pass over the training set measured.

    `loss` and `images` are over every rank. `grad_norm` is the mean total gradient norm of
    the optimizer steps, before clipping; None when no step had a finite one (every fp16 step
    overflowed).
    """

    loss: float
    images: int
    grad_norm: float | None
    stopped: bool


def _train_epoch(run: _Run, epoch: int, progress: _Progress) -> _EpochTraining:
    """One pass over the training set (this rank's shard of it).

    The loss and the gradient norms are summed on the device and read back only when progress
    is reported, so steps do not wait on the host. Every report is a check point all ranks pass
    together: the loss sums over the ranks (a non-finite one stops every rank alike) and rank
    0's answer to `should_stop`.
    """
    cfg, loader, world = run.cfg, run.data.train_loader, run.world
    run.trained.train()
    freeze_encoder_for_epoch(run.model, cfg, epoch)
    num_batches = len(loader)
    # Each report reads the loss back from the device; every few batches keeps steps async.
    report_every = max(PROGRESS_EVERY_MIN_BATCHES, num_batches // 20)
    accum = cfg.grad_accum_steps
    loss_sum = torch.zeros((), device=run.device)
    norm_sum = torch.zeros((), device=run.device)
    finite_steps = torch.zeros((), device=run.device)
    images_seen = 0
    mean_loss, images_total = math.nan, 0.0
    waits = LoaderWaitMeter()
    batches = iter(loader)
    run.optimizer.zero_grad(set_to_none=True)
    for batch_index in range(1, num_batches + 1):
        images, masks = waits.next_batch(batches)
        inputs = run.normalizer(images)
        target = masks.to(run.device, non_blocking=True).long()
        ends_step = batch_index % accum == 0 or batch_index == num_batches
        with _gradient_sync(run, ends_step):
            with run.autocast():
                loss = run.loss_fn(run.trained(inputs), target)
            run.scaler.scale(loss / accum).backward()
        loss_sum += loss.detach() * images.shape[0]
        images_seen += images.shape[0]
        if ends_step:
            norm = _optimizer_step(run).float()
            # Steps the fp16 scaler skips have infinite norms; they would drown the mean.
            finite = torch.isfinite(norm)
            norm_sum += torch.where(finite, norm, 0.0)
            finite_steps += finite
            progress.global_step += 1
            if cfg.log_every_steps and progress.global_step % cfg.log_every_steps == 0:
                run.reporter.on_step_metrics(
                    progress.global_step, {"train/loss_step": float(loss.detach())}
                )
        if batch_index % report_every == 0 or batch_index == num_batches:
            loss_total, images_total = world.sum_scalars(loss_sum, images_seen)
            mean_loss = loss_total / images_total
            if not math.isfinite(mean_loss):
                raise TrainingError(
                    f"the training loss became {mean_loss} in epoch {epoch} (batch {batch_index}); "
                    "lower learning_rate, keep grad_clip on, or switch amp from fp16 to bf16/off"
                )
            run.checkpoints.report_written()
            run.reporter.on_train_progress(
                EpochProgress(
                    epoch, batch_index, num_batches, mean_loss, data_wait_share=waits.take_share()
                )
            )
            if world.broadcast_flag(run.reporter.should_stop()):
                return _EpochTraining(mean_loss, int(images_total), None, stopped=True)
    # The last batch is always a check point, so the loss is the epoch's; one more read-back.
    norm_total, finite_total = torch.stack([norm_sum, finite_steps]).tolist()
    return _EpochTraining(
        loss=mean_loss,
        images=int(images_total),
        grad_norm=norm_total / finite_total if finite_total else None,
        stopped=False,
    )


def _gradient_sync(run: _Run, ends_step: bool) -> contextlib.AbstractContextManager[None]:
    """Backward passes of micro-batches that do not step keep their gradients local."""
    if run.data_parallel is None or ends_step:
        return contextlib.nullcontext()
    return run.data_parallel.no_sync()


def _optimizer_step(run: _Run) -> torch.Tensor:
    """Clip (when configured) and step; returns the total gradient norm before clipping.

    The norm stays on the device: reading it back here would make every step wait.
    """
    # Norms are measured on unscaled gradients; a disabled scaler makes this a no-op.
    run.scaler.unscale_(run.optimizer)
    # With no clipping an infinite bound scales by exactly 1; one code path on every torch >= 2.4
    # (get_total_norm only arrived in 2.6).
    limit = run.cfg.grad_clip if run.cfg.grad_clip is not None else math.inf
    norm = nn.utils.clip_grad_norm_(run.model.parameters(), limit)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    return norm


@torch.no_grad()
def _refresh_batchnorm(run: _Run) -> None:
    """Re-estimate BatchNorm running statistics as an exact average over the training set.

    Each rank averages over its shard; the ranks' averages are then merged by batch counts.
    """
    # A frozen encoder's statistics stay as loaded (trainer.encoder_freeze).
    norms = [
        m
        for m in run.model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not is_frozen_norm(m)
    ]
    if not norms:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average
    run.evaluated.train()
    hold_frozen_norms(run.model)
    with run.autocast():
        for images, _ in run.data.train_loader:
            run.evaluated(run.normalizer(images))
    run.world.merge_batchnorm_statistics_(norms)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


def _validate(run: _Run) -> ScoredSet:
    """Loss and confusion-matrix metrics over the whole validation set, every epoch, with every
    image's counts (each rank counts its batches; all of them are gathered in set order)."""
    run.evaluated.eval()
    return score_set(
        run.evaluated,
        run.data.val_loader,
        normalizer=run.normalizer,
        loss_fn=run.loss_fn,
        class_names=run.data.class_names,
        device=run.device,
        precision=run.precision,
        flip_tta=run.cfg.tta,
        world=run.world,
        image_names=run.data.val_names,
    )


def _snapshot(run: _Run, progress: _Progress) -> dict[str, Any]:
    return checkpoint_payload(
        model=run.model,
        config=run.cfg,
        class_names=run.data.class_names,
        mask_encoding=run.data.encoding.to_dict(),
        in_channels=run.data.in_channels,
        out_channels=run.out_channels,
        state=progress.snapshot(),
        optimizer=run.optimizer,
        schedule_state=run.schedule.state_dict(),
        scaler=run.scaler,
    )


def _read_init_from(cfg: TrainConfig) -> WeightsSource | None:
    if cfg.init_from is None:
        return None
    try:
        return read_weights_source(Path(cfg.init_from).expanduser())
    except WeightsFileError as error:
        raise TrainingError(str(error)) from error


def _warm_start(run: _Run, source: WeightsSource) -> None:
    """Weights only: optimizer, schedule and epoch count start fresh, unlike a resume."""
    try:
        apply_warm_start(run.model, source)
    except WeightsFileError as error:
        raise TrainingError(str(error)) from error


def _restore(run: _Run, checkpoint: Checkpoint) -> _Progress:
    run.model.load_state_dict(checkpoint.model_state)
    if checkpoint.optimizer_state is not None:
        run.optimizer.load_state_dict(checkpoint.optimizer_state)
    if checkpoint.schedule_state is not None:
        run.schedule.load_state_dict(checkpoint.schedule_state)
    if checkpoint.scaler_state is not None and run.scaler.is_enabled():
        run.scaler.load_state_dict(checkpoint.scaler_state)
    if checkpoint.rng_state is not None:
        restore_rng_state(checkpoint.rng_state)
    state = checkpoint.state
    logger.info(
        "resuming after epoch %d (best %s at epoch %s)",
        state.epoch,
        state.best_metric,
        state.best_epoch,
    )
    return _Progress(
        epoch=state.epoch,
        best_metric=state.best_metric,
        best_epoch=state.best_epoch,
        bad_epochs=state.bad_epochs,
        global_step=state.global_step,
    )


def _check_resumable(cfg: TrainConfig, checkpoint: Checkpoint) -> None:
    saved = checkpoint.config
    changed = [key for key in ARCHITECTURE_KEYS if getattr(saved, key) != getattr(cfg, key)]
    if changed:
        details = ", ".join(f"{k}: {getattr(saved, k)!r} -> {getattr(cfg, k)!r}" for k in changed)
        raise TrainingError(
            f"cannot resume: the checkpoint was trained with a different architecture ({details})"
        )
    if saved.encoder_lr_multiplier != cfg.encoder_lr_multiplier:
        # The optimizer's saved state holds each group's rate (and a multiplier of 1 has one
        # group, any other two), so a changed multiplier would be silently undone or fail.
        raise TrainingError(
            f"cannot resume: the checkpoint was trained with encoder_lr_multiplier "
            f"{saved.encoder_lr_multiplier!r}, not {cfg.encoder_lr_multiplier!r}; resume with "
            f"--set encoder_lr_multiplier={saved.encoder_lr_multiplier!r}, or fine-tune from "
            f"it with init_from to change it"
        )
    if checkpoint.state.epoch >= cfg.epochs:
        raise TrainingError(
            f"cannot resume: the checkpoint already finished epoch {checkpoint.state.epoch} of "
            f"{cfg.epochs}; raise epochs (e.g. --set epochs={checkpoint.state.epoch + 10})"
        )


def _check_monitor(cfg: TrainConfig, class_names: tuple[str, ...]) -> None:
    overall = {"train/loss", "val/loss", "val/iou", "val/dice", "val/miou", "val/pixel_acc"}
    kinds = ("iou", "dice", "precision", "recall", "f1")
    per_class = {f"val/{kind}/{name}" for kind in kinds for name in class_names}
    if cfg.monitor not in overall | per_class:
        raise TrainingError(
            f"monitor {cfg.monitor!r} is not a metric of this run; choose one of "
            f"{', '.join(sorted(overall))} or val/<iou|dice|precision|recall|f1>/<class> with a "
            f"class among {', '.join(class_names)}"
        )


def _out_of_memory_advice(cfg: TrainConfig) -> str:
    size = f"image_size {list(cfg.image_size)}" if cfg.image_size else f"scale {cfg.scale}"
    return (
        f"the GPU ran out of memory training {cfg.model} (base_channels {cfg.base_channels}) "
        f"at batch_size {cfg.batch_size} and {size}; lower batch_size or image_size/scale, "
        "turn on amp (bf16), or use grad_accum_steps to keep the effective batch"
    )
