"""Warm starts (`init_from`): a new run begins from the weights of an earlier model.

Only weights move over, never the optimizer, schedule or epoch count (that is `--resume`).
Tensors are copied where the name and the shape both match, so a model fine-tuned for another
number of classes keeps everything but its head, and one with another input channel count
everything but its first convolution. A file that shares no tensor with the model is refused:
it was trained with another architecture or width, and "fine-tuning" from it would silently
train from scratch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from trainer.checkpoint import FORMAT
from trainer.models.weights_file import WeightsFileError, load_weights_payload, state_dict_from

logger = logging.getLogger(__name__)

WHAT = "init_from file"
"""How messages name the file."""

SHOWN_NAMES = 12

_STEP_COUNTERS = "num_batches_tracked"
"""BatchNorm step counters: scalars whose shape matches in any network, so they prove nothing."""

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
"""DataParallel and torch.compile put these in front of every key of the state dicts they save."""


class WarmStartError(WeightsFileError):
    """A file to start from that shares no tensor with the model."""


@dataclass(frozen=True)
class WeightsSource:
    """A weights file read for a warm start.

    Attributes:
        path: the file.
        state: its state dict, with DataParallel / torch.compile key prefixes removed.
        description: what the file is, for log lines and messages.
    """

    path: Path
    state: Mapping[str, Tensor]
    description: str


@dataclass(frozen=True)
class WarmStart:
    """What `apply_warm_start` did.

    Attributes:
        loaded: model tensors copied from the file.
        reshaped: `name (file shape) -> (model shape)` for tensors left as initialised because
            the shapes differ (typically the head when the number of classes changed).
        missing: model tensors the file does not have, left as initialised.
        unused: file tensors the model has no place for.
    """

    loaded: tuple[str, ...]
    reshaped: tuple[str, ...]
    missing: tuple[str, ...]
    unused: tuple[str, ...]


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" ... and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def _without_wrapper_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key.removeprefix(prefix): value for key, value in state.items()}
    return dict(state)


def _describe(payload: Any) -> str:
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        return "a state dict"
    config = payload.get("config") or {}
    names = ", ".join(str(name) for name in payload.get("class_names") or ())
    return (
        f"a segtrack checkpoint ({config.get('model')}, base_channels "
        f"{config.get('base_channels')}, depth {config.get('depth')}; epoch "
        f"{payload.get('epoch')}; classes {names})"
    )


def read_weights_source(path: Path) -> WeightsSource:
    """Read a segtrack checkpoint (best.pt, last.pt) or a plain state-dict file.

    Raises:
        WeightsFileError: the file is missing, unreadable or holds no state dict.
    """
    payload = load_weights_payload(path, what=WHAT)
    state = state_dict_from(payload, path, what=WHAT)
    return WeightsSource(path, _without_wrapper_prefix(state), _describe(payload))


def _no_match(model: nn.Module, source: WeightsSource, reshaped: Sequence[str]) -> WarmStartError:
    if reshaped:
        detail = (
            f"all {len(reshaped)} tensors of the same name have another shape, e.g. "
            + ", ".join(reshaped[:3])
        )
    else:
        theirs = ", ".join(list(source.state)[:3]) or "no tensors"
        ours = ", ".join(list(model.state_dict())[:3])
        detail = f"no tensor name matches (the file has {theirs} ..., the model {ours} ...)"
    return WarmStartError(
        f"{WHAT} {source.path}, {source.description}, shares no tensor with this "
        f"{type(model).__name__} model: {detail}. Start from a model trained with the same "
        "model, base_channels, depth and upsampling (only the number of classes and input "
        "channels may differ), or leave init_from out"
    )


def apply_warm_start(model: nn.Module, source: WeightsSource) -> WarmStart:
    """Copy into `model` every tensor of `source` whose name and shape match; log what moved.

    Raises:
        WarmStartError: nothing but BatchNorm step counters matches.
    """
    expected = model.state_dict()
    loaded: list[str] = []
    reshaped: list[str] = []
    for name, tensor in source.state.items():
        target = expected.get(name)
        if target is None:
            continue
        if target.shape != tensor.shape:
            reshaped.append(f"{name} {tuple(tensor.shape)} -> {tuple(target.shape)}")
        else:
            loaded.append(name)
    if all(name.endswith(_STEP_COUNTERS) for name in loaded):
        raise _no_match(model, source, reshaped)
    model.load_state_dict({name: source.state[name] for name in loaded}, strict=False)
    result = WarmStart(
        loaded=tuple(loaded),
        reshaped=tuple(reshaped),
        missing=tuple(name for name in expected if name not in source.state),
        unused=tuple(name for name in source.state if name not in expected),
    )
    logger.info(
        "init_from %s: loaded %d of the model's %d tensors from %s",
        source.path,
        len(result.loaded),
        len(expected),
        source.description,
    )
    for names, why in (
        (result.reshaped, "kept as initialised, the shape differs"),
        (result.missing, "kept as initialised, not in the file"),
        (result.unused, "in the file but not in the model, unused"),
    ):
        if names:
            logger.info("init_from: %d tensors %s: %s", len(names), why, _listing(names))
    return result
