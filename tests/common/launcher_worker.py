"""A tiny data-parallel training run started by tests/common/test_launchers.py (not a test module).

    python tests/common/launcher_worker.py OUT.npy

Reads its place in the run the way train.py does (`adopt_launcher_environment`, `plan_launch`, `launch`): alone,
under torchrun's variables or under OpenMPI's. Every process takes every world_size-th row of one fixed batch,
DistributedDataParallel averages the gradients, and rank 0 writes the final weights of a linear layer.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from common.engine.distributed import WorkerContext, adopt_launcher_environment, launch, plan_launch

ROWS, STEPS = 8, 5


def train(ctx: WorkerContext, out_path: str) -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 2)
    model = DistributedDataParallel(layer) if ctx.world_size > 1 else layer
    generator = torch.Generator().manual_seed(1)
    inputs, targets = torch.randn(ROWS, 4, generator=generator), torch.randn(ROWS, 2, generator=generator)
    mine = slice(ctx.rank, ROWS, ctx.world_size)  # equal shards: the mean of shard means is the batch mean
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(STEPS):
        loss = torch.nn.functional.mse_loss(model(inputs[mine]), targets[mine])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if ctx.is_main:
        weights = torch.cat([layer.weight.detach().flatten(), layer.bias.detach()]).numpy()
        np.save(out_path, weights)
        print(f"rank {ctx.rank} of {ctx.world_size}", flush=True)


if __name__ == "__main__":
    adopt_launcher_environment()
    launch(train, plan_launch(None, 1), (sys.argv[1],))
