"""W&B's `early_terminate` (hyperband or median), as the Optuna pruner a sweep's controller feeds
each run's epoch metric."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from optuna.pruners import BasePruner, MedianPruner, SuccessiveHalvingPruner

from server.sweep.checks import check_keys, mapping, refuse, whole

EARLY_TERMINATE_KEYS = {
    "hyperband": ("type", "min_iter", "max_iter", "s", "eta"),
    "median": ("type", "min_iter", "n_startup_trials"),
}
EARLY_TERMINATE_IGNORED = ("strict",)
MAX_OPTION = 10_000


@dataclass(frozen=True)
class EarlyTerminate:
    """W&B's `early_terminate`, as an Optuna pruner fed each run's epoch metric.

    `hyperband` means what it means in W&B: runs are compared at the epochs min_iter * eta^k
    (up to `max_iter`), and a run outside the best 1/eta of those that reached such an epoch is
    stopped: asynchronous successive halving, Optuna's `SuccessiveHalvingPruner`. `median`
    stops a run whose epoch value is below the median of the finished runs' at that epoch, from
    epoch `min_iter` on, once `n_startup_trials` runs have finished (Optuna's `MedianPruner`).
    """

    type: Literal["hyperband", "median"]
    min_iter: int = 1
    max_iter: int | None = None
    eta: int = 3
    n_startup_trials: int = 5

    def pruner(self) -> BasePruner:
        if self.type == "median":
            return MedianPruner(
                n_startup_trials=self.n_startup_trials, n_warmup_steps=self.min_iter
            )
        return SuccessiveHalvingPruner(
            min_resource=self.min_iter, reduction_factor=self.eta, min_early_stopping_rate=0
        )

    def rung_epochs(self, last: int) -> list[int]:
        """hyperband: the epochs up to `last` at which runs are compared."""
        epochs, epoch = [], self.min_iter
        while epoch <= last and (self.max_iter is None or epoch <= self.max_iter):
            epochs.append(epoch)
            epoch *= self.eta
        return epochs

    def judged(
        self, curve: Mapping[int, float], *, running: bool
    ) -> tuple[dict[int, float], dict[str, Any]]:
        """The epoch values and Optuna system attributes a rebuilt trial carries, so that the
        pruner decides as if it had judged every epoch as it came.

        For hyperband, successive halving keeps each trial's value at each rung it passed
        (`completed_rung_<k>`, read at its first epoch at or past the rung); a training trial's
        latest rung is left for the pruner to judge, on the value of the epoch that reached it,
        so that every pass gives the same answer until the next rung.
        """
        values = dict(curve)
        if self.type != "hyperband" or not values:
            return values, {}
        epochs = sorted(values)
        reached = [
            (rung, next(epoch for epoch in epochs if epoch >= step))
            for rung, step in enumerate(self.rung_epochs(epochs[-1]))
        ]
        if running and reached:
            _, judged_at = reached.pop()
            values = {epoch: value for epoch, value in values.items() if epoch <= judged_at}
        return values, {f"completed_rung_{rung}": values[epoch] for rung, epoch in reached}


def parse_early_terminate(raw: object, ignored: list[str]) -> EarlyTerminate | None:
    """The spec's `early_terminate` (None: none); W&B keys without a use here go to `ignored`."""
    if raw is None:
        return None
    spec = mapping(raw, "early_terminate")
    kind = spec.get("type")
    if kind not in EARLY_TERMINATE_KEYS:
        raise refuse("early_terminate.type", f"hyperband or median, got {kind!r}")
    for key in EARLY_TERMINATE_IGNORED:
        if key in spec:
            ignored.append(f"early_terminate.{key}")
    known = {key: value for key, value in spec.items() if key not in EARLY_TERMINATE_IGNORED}
    check_keys(known, EARLY_TERMINATE_KEYS[kind], "early_terminate.")
    options: dict[str, Any] = {}
    for key, low in (("min_iter", 1), ("max_iter", 1), ("eta", 2), ("n_startup_trials", 0)):
        if key in known:
            options[key] = whole(known[key], f"early_terminate.{key}", low, MAX_OPTION)
    brackets = whole(known.get("s", 1), "early_terminate.s", 1, 32)
    if "min_iter" not in options and "max_iter" in options:  # W&B: rungs at max_iter / eta^k
        options["min_iter"] = max(options["max_iter"] // options.get("eta", 3) ** brackets, 1)
    return EarlyTerminate(type=kind, **options)
