"""Training the decoder first: the encoder stays frozen for `freeze_encoder_epochs` epochs.

A pretrained encoder is frozen for epochs 1..freeze_encoder_epochs (the usual VGG16-UNet
recipe: the randomly initialised decoder learns to read features before its gradients may
disturb them), then everything trains. Frozen means both:
- no gradients: `requires_grad` is False on the encoder's parameters, so the optimizer skips
  them (no step, no weight decay) and backward stops at the decoder;
- fixed statistics: the encoder's BatchNorm layers run in eval mode, normalising with the
  loaded running statistics and leaving them unchanged.

The state is derived from the epoch number alone (epochs count from 1 over the whole run), so a
run resumed in the middle of the frozen epochs freezes exactly the epochs left, and the
optimizer keeps every parameter throughout (see `trainer.optim.build_optimizer`).

The training loop calls `freeze_encoder_for_epoch` after switching the model to training mode at
the start of each epoch, and leaves frozen norms out of any BatchNorm re-estimation
(`is_frozen_norm`, `hold_frozen_norms`).
"""

from __future__ import annotations

import logging

from torch import nn

from trainer.config import TrainConfig
from trainer.models.registry import encoder_of

logger = logging.getLogger(__name__)

_BatchNorm = nn.modules.batchnorm._BatchNorm


def encoder_frozen_at(cfg: TrainConfig, epoch: int) -> bool:
    """Whether the encoder is frozen during 1-based `epoch`."""
    return epoch <= cfg.freeze_encoder_epochs


def is_frozen_norm(module: nn.Module) -> bool:
    """A BatchNorm layer whose affine parameters are all frozen (`requires_grad` False)."""
    if not isinstance(module, _BatchNorm):
        return False
    parameters = list(module.parameters())
    return bool(parameters) and not any(p.requires_grad for p in parameters)


def hold_frozen_norms(model: nn.Module) -> None:
    """Put every frozen BatchNorm of `model` in eval mode; call after each `model.train()`."""
    for module in model.modules():
        if is_frozen_norm(module):
            module.eval()


def set_encoder_frozen(model: nn.Module, frozen: bool) -> bool:
    """Freeze or unfreeze the encoder of `model`; a no-op for models without one.

    Unfreezing returns the encoder's BatchNorm layers to the model's own mode. Returns whether
    the encoder's state changed.
    """
    encoder = encoder_of(model)
    if encoder is None:
        return False
    parameters = list(encoder.parameters())
    changed = any(p.requires_grad == frozen for p in parameters)
    for parameter in parameters:
        parameter.requires_grad_(not frozen)
        if frozen:
            # Optimizers skip only parameters whose grad is None; a leftover one would be stepped.
            parameter.grad = None
    if frozen:
        hold_frozen_norms(encoder)
    else:
        encoder.train(model.training)
    return changed


def freeze_encoder_for_epoch(model: nn.Module, cfg: TrainConfig, epoch: int) -> None:
    """Freeze the encoder during the first `cfg.freeze_encoder_epochs` epochs, else unfreeze.

    Call it at the start of each training epoch, after `model.train()`; it logs each change.
    """
    if cfg.freeze_encoder_epochs == 0:
        return
    frozen = encoder_frozen_at(cfg, epoch)
    if set_encoder_frozen(model, frozen):
        if frozen:
            logger.info(
                "epoch %d: encoder frozen (weights and BatchNorm statistics) until epoch %d",
                epoch,
                cfg.freeze_encoder_epochs,
            )
        else:
            logger.info("epoch %d: encoder unfrozen, the whole model trains", epoch)
