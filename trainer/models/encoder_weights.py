"""Loading a pretrained encoder (`encoder_weights`) from a local file, checked key by key.

Shared by the VGG16-BN and ResNet encoders: both keep torchvision's module names, so loading is
reading the file, dropping the keys the encoder has no place for (a classifier), adapting the
first convolution to the input channels, and refusing anything else that does not match with a
message naming the file and the keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from trainer.models.weights_file import WeightsFileError, read_state_dict, without_wrapper_prefixes

logger = logging.getLogger(__name__)

RGB = 3
SHOWN_KEYS = 5
_STEP_COUNTERS = "num_batches_tracked"


class EncoderWeightsError(ValueError):
    """An encoder weights file that is missing, unreadable or of another architecture."""


def adapt_first_conv(weight: Tensor, in_channels: int) -> Tensor:
    """(C, 3, k, k) RGB kernels -> (C, in_channels, k, k).

    Every input channel gets the mean RGB kernel scaled by 3 / in_channels, so an image whose
    channels all equal the luminance gives the same first activations as the RGB network
    (segmentation_models does the same for 1 and 4 channels).
    """
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1) * (RGB / in_channels)


def _first(keys: set[str]) -> str:
    return ", ".join(sorted(keys)[:SHOWN_KEYS]) + (" ..." if len(keys) > SHOWN_KEYS else "")


def read_encoder_state(path: Path) -> dict[str, Tensor]:
    """The state dict in `path`, unwrapped and without DataParallel/compile key prefixes.

    Raises:
        EncoderWeightsError: the file is missing, unreadable or holds no state dict.
    """
    try:
        return without_wrapper_prefixes(read_state_dict(path, what="encoder weights file"))
    except WeightsFileError as error:
        raise EncoderWeightsError(str(error)) from error


def load_encoder_state(
    encoder: nn.Module,
    path: Path,
    *,
    architecture: str,
    first_conv: str,
    ignored_prefixes: tuple[str, ...] = (),
    keep: Callable[[str], bool] | None = None,
) -> None:
    """Load the weights in `path` into `encoder`, whose keys are torchvision's.

    Args:
        encoder: module with an `in_channels` attribute; its first conv is adapted when the
            file's is RGB and in_channels is not 3.
        path: local file with a state dict (optionally wrapped, see `read_encoder_state`).
        architecture: how messages name the expected network, e.g. "ResNet-34".
        first_conv: state-dict key of the first convolution's weight.
        ignored_prefixes: keys starting with one of these are dropped (a classifier head).
        keep: when given, only keys it accepts are considered (VGG keeps `features.*`).

    Missing `num_batches_tracked` buffers are fine: torchvision's published files predate them.

    Raises:
        EncoderWeightsError: the file cannot be read, or its keys or shapes differ from the
            encoder's; the message names the file and the first offending keys.
    """
    provided = {
        key: value
        for key, value in read_encoder_state(path).items()
        if not key.startswith(ignored_prefixes) and (keep is None or keep(key))
    }
    expected = encoder.state_dict()
    missing = {key for key in expected.keys() - provided.keys() if not key.endswith(_STEP_COUNTERS)}
    unexpected = provided.keys() - expected.keys()
    if missing or unexpected:
        details = [f"missing {_first(missing)}"] if missing else []
        details += [f"unexpected {_first(unexpected)}"] if unexpected else []
        raise EncoderWeightsError(
            f"encoder weights file {path} does not hold {architecture} weights in torchvision's "
            f"layout: {'; '.join(details)}"
        )
    in_channels = int(getattr(encoder, "in_channels", RGB))
    if in_channels != RGB and provided[first_conv].shape[1] == RGB:
        logger.info(
            "adapting the RGB first convolution of %s to %d input channels", path, in_channels
        )
        provided[first_conv] = adapt_first_conv(provided[first_conv], in_channels)
    wrong_shapes = {
        f"{key} {tuple(value.shape)} != {tuple(expected[key].shape)}"
        for key, value in provided.items()
        if value.shape != expected[key].shape
    }
    if wrong_shapes:
        raise EncoderWeightsError(
            f"encoder weights file {path} has tensors of the wrong shape for {architecture}: "
            f"{_first(wrong_shapes)}"
        )
    encoder.load_state_dict({**expected, **provided})
    logger.info("loaded %s encoder weights from %s (%d tensors)", architecture, path, len(provided))
