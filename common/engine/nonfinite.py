"""Stop on a NaN or inf loss without synchronising the host with the device at every step, and never snapshot
weights that diverged.

Each step the guard records, on the device, the first step whose summed loss is not finite and that step's
loss terms; a copy of that record travels to pinned host memory asynchronously and is read once the copy is
done, a step or two later. So on a GPU the check costs no stall, yet a non-finite loss still stops training,
naming the step and the term(s) at fault. On the CPU the record is read directly.

A finite loss does not make finite weights: one optimizer step with a huge learning rate or an exploded
gradient can leave |w| = 1e30 (or inf/NaN) behind a finite loss. `check_weights` looks at every floating-point
tensor of the state to be saved, once before each snapshot: one min/max reduction per tensor on the device and
a single host read of the verdict, so its cost is one read of the weights per epoch (no per-step sync).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

__all__ = [
    "WEIGHT_BOUND",
    "DivergedWeightsError",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "TrainingDivergedError",
    "check_weights",
    "describe_nonfinite",
]

# |w| above this is divergence, not learning: trained weights of these networks stay within a few hundred, and
# float32 overflows (inf) near 3.4e38, after which every result is NaN.
WEIGHT_BOUND = 1e20
_LISTED_TENSORS = 3


class TrainingDivergedError(RuntimeError):
    """Training stopped because the loss or the weights stopped being usable numbers (one message argument)."""


class NonFiniteLossError(TrainingDivergedError):
    """The training loss became NaN or inf; the message names the step and the loss term(s)."""


class DivergedWeightsError(TrainingDivergedError):
    """A weight is NaN, inf or above `WEIGHT_BOUND` in magnitude; the message names the tensor(s)."""


def check_weights(state: Mapping[str, Tensor], bound: float = WEIGHT_BOUND, when: str = "") -> None:
    """Raises DivergedWeightsError unless every floating-point tensor of ``state`` is finite with max |w| <= bound.

    One min/max reduction per tensor runs on the tensors' device, and one boolean reaches the host (the only
    synchronisation); the per-tensor values are read only to name the culprits once something is wrong. Measured
    on Hand4Whole's full model (78 M float values, 834 tensors, 2 CPU threads): about 15 ms, once per epoch.

    Args:
        state: name -> tensor, e.g. ``model.state_dict()`` (integer buffers such as BatchNorm's counters skipped).
        bound: the largest magnitude accepted.
        when: words for the message, e.g. "before writing snapshot_3.pth.tar".
    """
    named = [(name, tensor.detach()) for name, tensor in state.items()
             if tensor.is_floating_point() and tensor.numel() > 0]  # fmt: skip
    if not named:
        return
    # max |w| = max(max w, -min w) from one aminmax reduction per tensor (8x faster than an inf-norm on the CPU).
    # NaN propagates through min and max, and NaN <= bound is False, so one comparison catches NaN, inf and 1e30.
    extremes = torch.stack([torch.stack(torch.aminmax(t)).float() for _, t in named])  # (N, 2): min, max
    peaks = torch.maximum(-extremes[:, 0], extremes[:, 1])  # (N,)
    if bool((peaks <= bound).all()):  # the one host synchronisation
        return
    values = peaks.tolist()
    bad = [(name, value) for (name, _), value in zip(named, values, strict=True) if not value <= bound]
    listed = ", ".join(f"{name} max |w| = {value:g}" for name, value in bad[:_LISTED_TENSORS])
    more = f" and {len(bad) - _LISTED_TENSORS} more tensor(s)" if len(bad) > _LISTED_TENSORS else ""
    raise DivergedWeightsError(f"weights diverged{' ' + when if when else ''}: {listed}{more} (bound {bound:g}); "
                               "lower train.lr or set train.grad_clip_norm")  # fmt: skip


def describe_nonfinite(names: Sequence[str], values: Sequence[float]) -> str:
    """'joint_cam = nan, joint_img = inf': the terms that are not finite (all finite: their sum overflowed)."""
    bad = [f"{name} = {value}" for name, value in zip(names, values, strict=True) if not math.isfinite(value)]
    return ", ".join(bad) or "the sum of the terms overflowed"


class NonFiniteGuard:
    """Watches the summed loss of every step; `check` raises `NonFiniteLossError` once one was NaN or inf.

    Args:
        term_names: the loss terms, in the order of the stacked values given to `record`.
        device: where the losses live.
        steps_per_epoch: iterations per epoch, to name a global step as (epoch, iteration).
    """

    def __init__(self, term_names: Sequence[str], device: torch.device, steps_per_epoch: int) -> None:
        self.term_names, self.steps_per_epoch = list(term_names), max(int(steps_per_epoch), 1)
        self._bad_step = torch.full((), -1, dtype=torch.long, device=device)  # first non-finite global step
        self._bad_terms = torch.zeros(len(self.term_names), device=device)  # that step's loss terms
        self._event = torch.cuda.Event() if device.type == "cuda" else None
        pin = self._event is not None  # pinned host memory makes the device-to-host copy asynchronous
        self._host_step = torch.full((), -1, dtype=torch.long, pin_memory=pin)
        self._host_terms = torch.zeros(len(self.term_names), pin_memory=pin)
        self._in_flight = False

    def record(self, terms: Tensor, total: Tensor, step: int) -> None:
        """Notes a step's (T,) loss terms and their sum, at global step `step`; never waits for the device."""
        first = ~torch.isfinite(total.detach()) & (self._bad_step < 0)
        self._bad_step = torch.where(first, step, self._bad_step)
        self._bad_terms = torch.where(first, terms.detach().float(), self._bad_terms)
        if self._event is not None and not self._in_flight:  # one copy at a time; the next record starts another
            self._host_step.copy_(self._bad_step, non_blocking=True)
            self._host_terms.copy_(self._bad_terms, non_blocking=True)
            self._event.record()
            self._in_flight = True

    def check(self, wait: bool = False) -> None:
        """Raises NonFiniteLossError when a recorded step had a non-finite loss.

        Args:
            wait: read the latest record even if that means waiting for the device (before a snapshot).
        """
        if self._event is None or wait:
            bad_step, bad_terms = int(self._bad_step), self._bad_terms.tolist()
        elif self._in_flight and self._event.query():
            self._in_flight = False
            bad_step, bad_terms = int(self._host_step), self._host_terms.tolist()
        else:
            return
        if bad_step >= 0:
            epoch, iteration = divmod(bad_step, self.steps_per_epoch)
            raise NonFiniteLossError(
                f"non-finite loss at step {bad_step} (epoch {epoch}, iteration {iteration}): "
                f"{describe_nonfinite(self.term_names, bad_terms)}"
            )
