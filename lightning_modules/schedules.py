"""The learning-rate schedules the library's Lightning modules share."""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch

__all__ = ["COSINE_FINAL_LR_FRACTION", "LR_SCHEDULES", "optimizer_config"]

logger = logging.getLogger(__name__)

#: The cosine decay ends at this fraction of the initial learning rate.
COSINE_FINAL_LR_FRACTION: float = 0.01
#: Names accepted by :func:`optimizer_config`.
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


def optimizer_config(
    optimizer: torch.optim.Optimizer, lr: float, lr_schedule: str, max_steps: Optional[int]
) -> Any:
    """What ``configure_optimizers`` returns for ``optimizer`` under ``lr_schedule``.

    ``"constant"`` keeps ``lr``; ``"cosine"`` decays it per step from ``lr`` to
    ``COSINE_FINAL_LR_FRACTION * lr`` at ``max_steps`` (without ``max_steps`` it warns and
    keeps the rate constant).

    *Arguments*
        optimizer: the optimizer.
        lr: its initial learning rate.
        lr_schedule: one of :data:`LR_SCHEDULES`.
        max_steps: ``trainer.max_steps`` (None or < 1 when unknown).

    *Returns*
        The optimizer, or Lightning's ``{"optimizer", "lr_scheduler"}`` dict.
    """
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if lr_schedule == "constant":
        return optimizer
    if max_steps is None or max_steps < 1:
        logger.warning("lr_schedule='cosine' needs trainer.max_steps; training with a constant lr")
        return optimizer
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max_steps, eta_min=COSINE_FINAL_LR_FRACTION * lr
    )
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
    }
