"""Hand4Whole's learning-rate schedule: divide by `lr_dec_factor` at each epoch of `lr_dec_epoch`.

With lr_dec_epoch [4, 6] and factor 10: epochs 0-3 train at lr, 4-5 at lr / 10, 6 and later at lr / 100. The
schedule is a torch LambdaLR stepped once per epoch, so its position is part of the optimizer's saved state and
`--continue` resumes it exactly.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["StepDecay", "make_scheduler"]


class StepDecay:
    """lr multiplier of an epoch: ``factor ** -(number of milestones <= epoch)``.

    A callable object rather than a lambda, so that LambdaLR's state_dict saves its milestones and factor.
    """

    def __init__(self, milestones: Sequence[int], factor: float) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.factor = float(factor)

    def __call__(self, epoch: int) -> float:
        return self.factor ** -bisect.bisect_right(self.milestones, epoch)


def make_scheduler(
    optimizer: torch.optim.Optimizer, milestones: Sequence[int], factor: float, start_epoch: int = 0
) -> LambdaLR:
    """The step schedule, positioned at `start_epoch` (the optimizer's lr becomes that epoch's).

    Args:
        optimizer: its current lr is the base lr (epoch 0's).
        milestones: cfg.train.lr_dec_epoch, epochs at which the lr is divided.
        factor: cfg.train.lr_dec_factor.
        start_epoch: the first epoch to train; call `scheduler.step()` after each epoch.
    """
    for group in optimizer.param_groups:
        # LambdaLR reads the base lr from 'initial_lr' when it does not start at epoch 0.
        group.setdefault("initial_lr", group["lr"])
    return LambdaLR(optimizer, StepDecay(milestones, factor), last_epoch=start_epoch - 1)
