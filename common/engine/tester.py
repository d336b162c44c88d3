"""Evaluation over all processes: each tests every world_size-th sample once, rank 0 reports.

Every process loads the snapshot strictly, runs the model in 'test' mode over its share of the test set (sample
i goes to rank i % world_size, so no sample is padded in or counted twice) and calls the dataset's `evaluate` on
each batch, as Hand4Whole does, so only per-sample metrics travel between processes, never meshes. Rank 0
gathers them in sample order and calls the dataset's `report`, which writes output/result/<dataset>/metrics.json.
An empty test set is an error (naming the dataset and split) raised before anything is evaluated or written, so
an earlier metrics.json is never replaced by an empty table.

`evaluate(outs, indices)` receives, per sample, the model's test outputs (predictions only; numpy, no batch
dimension) plus the ground truth the dataset names in its `eval_extras` (the family's target builder decides:
e.g. Hand4Whole's GT mesh, its mask and the crop maps: data/targets/hand4whole.py, EVAL_EXTRAS).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from common.engine.acceleration import prepare_model
from common.engine.checkpoint import load_network_state
from common.engine.cli import UsageError
from common.engine.distributed import LaunchPlan, WorkerContext, all_gather_objects, launch
from common.engine.run_log import RunPaths, attach_log_file, detach_log_file
from common.engine.snapshot import read_snapshot
from common.engine.trainer import to_device

__all__ = ["TestJob", "per_sample_outputs", "run_test", "test_worker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestJob:
    """What a test process needs; pickled to spawned processes, so the callables are module-level.

    Attributes:
        cfg: the experiment config (main.config.Config).
        checkpoint: the snapshot to evaluate.
        build_model: cfg -> the network in test mode (weights to be loaded), on the CPU.
        build_testset: cfg -> the test dataset, with `evaluate(outs, indices)`, `report(result, output_dir)` and
            `eval_extras` ((where, key, name) of the ground truth `evaluate` reads).
        worker_init_fn: DataLoader worker set-up (data.dataset.worker_init_fn).
        collate_fn: the DataLoader's collate function; None for the default stacking.
    """

    __test__ = False  # not a pytest test class, despite its name

    cfg: Any
    checkpoint: Path
    build_model: Callable[[Any], nn.Module]
    build_testset: Callable[[Any], Dataset]
    worker_init_fn: Callable[[int], None] | None = None
    collate_fn: Callable[[Any], Any] | None = None


def run_test(job: TestJob, plan: LaunchPlan, user_errors: tuple[type[BaseException], ...] = ()) -> None:
    """Evaluates in every process of the plan; rank 0 prints the table and the json path."""
    launch(test_worker, plan, (job,), user_errors=user_errors)


def per_sample_outputs(
    out: dict[str, Tensor],
    targets: dict[str, Any],
    meta_info: dict[str, Any],
    extras: Sequence[tuple[str, str, str]] = (),
) -> list[dict[str, np.ndarray]]:
    """Splits a batch of test outputs into one numpy dict per sample, with the ground truth `extras` names added.

    Args:
        out: the model's test-mode outputs, (B, ...) tensors.
        targets, meta_info: the batch's collated targets and masks.
        extras: (where 'targets' | 'meta_info', key there, name in the result); absent keys are skipped.
    """
    sources = {"targets": targets, "meta_info": meta_info}
    batch = dict(out)
    batch |= {name: sources[where][key] for where, key, name in extras if key in sources[where]}
    arrays = {key: value.detach().float().cpu().numpy() for key, value in batch.items()}
    size = len(next(iter(arrays.values())))
    return [{key: value[i] for key, value in arrays.items()} for i in range(size)]


def test_worker(ctx: WorkerContext, job: TestJob) -> None:
    """One process's share of the evaluation (the `launch` worker)."""
    cfg, paths = job.cfg, RunPaths(job.cfg.output_dir)
    handler = attach_log_file(paths.log_dir / "test_logs.txt", ctx.is_main)
    try:
        model = job.build_model(cfg)
        load_network_state(model, read_snapshot(job.checkpoint)["network"])
        model = prepare_model(model, ctx.device, cfg.train.channels_last, compile=False).train(False)
        dataset = job.build_testset(cfg)
        _require_samples(dataset, cfg, paths)
        indices = list(range(ctx.rank, len(dataset), ctx.world_size))
        loader = DataLoader(Subset(dataset, indices), batch_size=cfg.test.test_batch_size, shuffle=False,
                            num_workers=cfg.data.num_thread, pin_memory=ctx.device.type == "cuda",
                            worker_init_fn=job.worker_init_fn, collate_fn=job.collate_fn)  # fmt: skip
        batches: list[tuple[list[int], dict[str, list[float]]]] = []
        start = 0
        with torch.inference_mode():
            for inputs, targets, meta_info in tqdm(loader, desc=f"test {job.checkpoint.name}", disable=not ctx.is_main,
                                                   dynamic_ncols=True):  # fmt: skip
                inputs, targets, meta_info = (to_device(d, ctx.device) for d in (inputs, targets, meta_info))
                outs = per_sample_outputs(model(inputs, targets, meta_info, "test"), targets, meta_info,
                                          dataset.eval_extras)  # fmt: skip
                batch_indices = indices[start : start + len(outs)]
                start += len(outs)
                batches.append((batch_indices, dataset.evaluate(outs, batch_indices)))
        gathered = [batch for rank_batches in all_gather_objects(batches) for batch in rank_batches]
        if ctx.is_main:
            _report(dataset, gathered, cfg.output_dir)
    finally:
        detach_log_file(handler)


def _require_samples(dataset: Any, cfg: Any, paths: RunPaths) -> None:
    """Raises UsageError, naming the dataset and split, when the test set has no sample (every process sees it)."""
    if len(dataset) > 0:
        return
    name = getattr(dataset, "NAME", "") or type(dataset).__name__
    split = getattr(dataset, "split", None) or cfg.data.test_split or "test"
    kept = paths.result_dir / name / "metrics.json"
    raise UsageError(f"the test set {name} ({split} split) has no samples: nothing to evaluate"
                     f"{f'; {kept} is left as it was' if kept.exists() else ''}")  # fmt: skip


def _report(dataset: Any, batches: list[tuple[list[int], dict[str, list[float]]]], output_dir: str) -> None:
    result: dict[str, list[float]] = {}
    for _, batch_result in sorted(batches, key=lambda batch: batch[0][0]):  # sample order, whatever the ranks
        for metric, values in batch_result.items():
            result.setdefault(metric, []).extend(float(v) for v in values)
    table, json_path = dataset.report(result, output_dir)
    print(table)
    print(f"metrics written to {json_path}")
