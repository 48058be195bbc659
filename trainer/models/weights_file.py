"""Reading a state dict (name -> tensor) from a local weights file; nothing is ever downloaded.

Shared by the encoder weights (`encoder_weights`) and warm starts (`init_from`). A file
may hold the state dict itself or wrap it under "state_dict" or "model", which is where segtrack
checkpoints, torchvision-style training scripts and Lightning keep it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

WRAPPER_KEYS = ("state_dict", "model")

WRAPPER_PREFIXES = ("module.", "_orig_mod.")
"""DataParallel and torch.compile put these in front of every key of the state dicts they save."""


class WeightsFileError(ValueError):
    """A weights file that is missing, unreadable or holds no state dict."""


def load_weights_payload(path: Path, *, what: str) -> Any:
    """Whatever `path` holds, read with `torch.load(weights_only=True)` onto the CPU.

    Args:
        path: local file.
        what: how messages name the file, e.g. "encoder weights file".

    Raises:
        WeightsFileError: the file is missing or is not a PyTorch file that loads safely.
    """
    if not path.is_file():
        raise WeightsFileError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    # torch.load reports foreign files with many unrelated exception types (KeyError, EOFError,
    # UnpicklingError, RuntimeError...); every one of them means "not a weights file". Their
    # texts run to paragraphs about pickling, so the reason names the type and the traceback
    # keeps the rest.
    except Exception as error:
        raise WeightsFileError(
            f"{what} {path} is not a PyTorch state dict file ({type(error).__name__})"
        ) from error


def state_dict_from(payload: Any, path: Path, *, what: str) -> dict[str, Tensor]:
    """The state dict in a loaded `payload`, unwrapped from WRAPPER_KEYS when nested there.

    Raises:
        WeightsFileError: `payload` is not a mapping of names to tensors.
    """
    for key in WRAPPER_KEYS:
        if isinstance(payload, Mapping) and isinstance(payload.get(key), Mapping):
            payload = payload[key]
    if not isinstance(payload, Mapping) or not all(
        isinstance(value, Tensor) for value in payload.values()
    ):
        raise WeightsFileError(
            f"{what} {path} must hold a state dict (name -> tensor), optionally under one of "
            f"the keys {', '.join(WRAPPER_KEYS)}"
        )
    return {str(key): value for key, value in payload.items()}


def read_state_dict(path: Path, *, what: str) -> dict[str, Tensor]:
    """`state_dict_from(load_weights_payload(path))`: the state dict stored in `path`."""
    return state_dict_from(load_weights_payload(path, what=what), path, what=what)


def without_wrapper_prefixes(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`state` with a WRAPPER_PREFIXES prefix removed where every key carries it."""
    for prefix in WRAPPER_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key.removeprefix(prefix): value for key, value in state.items()}
    return dict(state)
