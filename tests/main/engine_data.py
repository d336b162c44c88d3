"""An in-memory map-style dataset of contract samples, and a failing worker, for the engine tests.

Not a test file: the engines pickle their dataset builders and workers to spawned processes, which import them
by module name (`tests.main.engine_data`, found through the repository root on sys.path), so it cannot live in a
test module or conftest.py, which pytest imports under its own names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from common.utils.metrics import report
from data.targets.hand4whole import EVAL_EXTRAS

Sample = tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]


def split_batch(inputs: dict, targets: dict, meta_info: dict) -> list[Sample]:
    """(B, ...) dicts (make_wholebody_targets' output) -> B samples without the batch dimension."""
    size = len(inputs["img"])
    return [tuple({k: v[i].clone() for k, v in d.items()} for d in (inputs, targets, meta_info)) for i in range(size)]


class InMemoryDataset(Dataset):
    """Given samples, in order; `evaluate` gives the per-sample MPVPE (mm) against 'smplx_mesh_cam_target'.

    Test-split samples carry 'smplx_mesh_cam' in targets and 'smplx_mesh_valid', 'bb2img_trans' and 'img2bb_trans'
    in meta_info, as data/dataset.py's EvalTargets/EvalMetaInfo do. `evaluated` records the indices `evaluate`
    received in this process, and `epochs` the `set_epoch` calls.
    """

    NAME = "InMemory"
    eval_extras = EVAL_EXTRAS  # Hand4Whole's: the GT mesh and crop maps reach `evaluate` beside the predictions

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self.epochs: list[int] = []
        self.evaluated: list[int] = []

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def evaluate(self, outs: list[dict[str, np.ndarray]], indices: list[int]) -> dict[str, list[float]]:
        self.evaluated.extend(indices)
        errors = [float(np.linalg.norm(out["smplx_mesh_cam"] - out["smplx_mesh_cam_target"], axis=-1).mean() * 1000)
                  for out in outs]  # fmt: skip
        return {"mpvpe_all": errors}

    def report(self, eval_result: dict[str, list[float]], output_dir: str) -> tuple[str, Path]:
        return report(eval_result, self.NAME, output_dir)


def in_memory_dataset(samples: list[Sample], cfg: Any) -> InMemoryDataset:
    """A dataset builder `cfg -> Dataset` once the samples are bound (functools.partial(in_memory_dataset, s))."""
    return InMemoryDataset(samples)


def fail_in_last_rank(ctx: Any) -> None:
    """A `launch` worker whose last process fails as a strict load of a mismatched state_dict does."""
    from common.engine.checkpoint import StateDictMismatchError

    if ctx.rank == ctx.world_size - 1:
        raise StateDictMismatchError("WholeBodyModel", ["box_net.weight"], ["box_net.renamed"], [])


def with_eval_keys(samples: list[Sample], num_vertices: int, seed: int = 0) -> list[Sample]:
    """Adds the test-split keys to samples (a random GT mesh, identity crop transforms)."""
    generator = torch.Generator().manual_seed(seed)
    eye = torch.eye(2, 3)
    out = []
    for inputs, targets, meta in samples:
        mesh = torch.randn(num_vertices, 3, generator=generator) * 0.1 + torch.tensor([0.0, 0.0, 10.0])
        targets = {**targets, "smplx_mesh_cam": mesh}
        meta = {**meta, "smplx_mesh_valid": torch.tensor(1.0), "bb2img_trans": eye, "img2bb_trans": eye.clone()}
        out.append((inputs, targets, meta))
    return out
