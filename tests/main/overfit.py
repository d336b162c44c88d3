"""The overfit loop the model tests share (not a test file): Adam on one fixed batch until the total loss falls."""

from __future__ import annotations

import torch
from torch import Tensor, nn

MAX_STEPS = 300
TARGET_RATIO = 0.2  # final total loss / initial total loss: the loss falls by >= 80%


def overfit(model: nn.Module, inputs: dict[str, Tensor], targets: dict[str, Tensor], meta_info: dict[str, Tensor],
            lr: float = 1e-3, max_steps: int = MAX_STEPS) -> list[float]:  # fmt: skip
    """Trains `model` on one batch until its summed loss terms reach TARGET_RATIO of the first step's, or max_steps.

    Returns:
        The total loss at every step (the first is the untrained model's).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[float] = []
    for _ in range(max_steps):
        total = sum(model(inputs, targets, meta_info, "train").values())
        history.append(total.item())
        if history[-1] <= TARGET_RATIO * history[0]:
            break
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    return history


def describe(history: list[float]) -> str:
    return f"loss {history[0]:.3f} -> {history[-1]:.3f} after {len(history)} steps (every 25th: {history[::25]})"
