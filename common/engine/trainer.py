"""The training loop: one process per device, Adam with Hand4Whole's step schedule, a snapshot every epoch.

A plain loop (build, loop, log, checkpoint). Each process builds the model from the same seed, takes its share of
every epoch through a DistributedSampler, and DistributedDataParallel averages the gradients. Rank 0 writes the
text log (output/log/train_logs.txt), TensorBoard scalars and mesh images (output/log/tensorboard/) and the
snapshots (output/model_dump/snapshot_{epoch}.pth.tar). Loss values reach the host only every
`train.log_interval` steps; NaN/inf losses are caught without a per-step synchronisation, and the weights are
checked (finite, |w| <= 1e20) once before each snapshot, so no snapshot holds diverged weights
(common/engine/nonfinite). Temporary files of snapshot writes that a kill interrupted are removed when training
starts and after each snapshot.

The model is called as Hand4Whole's: `model(inputs, targets, meta_info, 'train')` returns a dict of scalar loss
terms. Everything family-specific comes through the job's hooks (main/family.py): the model and training set
builders, the training picture, the parameter groups and the collate function; this loop names no family's keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from common.engine.acceleration import autocast, make_optimizer, prepare_model
from common.engine.checkpoint import load_network_state
from common.engine.cli import UsageError
from common.engine.distributed import LaunchPlan, WorkerContext, all_gather_objects, barrier, launch
from common.engine.nonfinite import NonFiniteGuard, TrainingDivergedError, check_weights, describe_nonfinite
from common.engine.resume import is_training_snapshot, load_weights, read_resume_snapshot, set_aside
from common.engine.run_log import RunPaths, attach_log_file, detach_log_file, open_tensorboard
from common.engine.schedule import make_scheduler
from common.engine.seeding import capture_rng_state, restore_rng_state, seed_everything
from common.engine.snapshot import (
    latest_snapshot,
    prune_snapshots,
    remove_partial_snapshots,
    snapshot_path,
    write_snapshot,
)

__all__ = ["TrainJob", "run_training", "set_train_mode", "to_device", "train_worker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """Everything a training process needs; pickled to spawned processes, so the callables are module-level.

    Attributes:
        cfg: the experiment config (main.config.Config).
        config_dict: the same as plain data (main.config.config_to_dict), embedded in every snapshot.
        build_model: cfg -> the network in training mode with its initial weights, on the CPU.
        build_trainset: cfg -> the map-style training dataset (set_epoch(epoch) is called when it has one).
        resume: `--continue`: start from the highest snapshot in output/model_dump.
        resume_last_good: `--continue-from-last-good`: when that snapshot cannot be read, start from the newest one
            that can (otherwise that is an error naming both).
        worker_init_fn: DataLoader worker set-up (data.dataset.worker_init_fn).
        make_picture: cfg -> the family's training picture (main.family.TrainingPicture), or None for none.
        param_groups: (model, cfg) -> the optimizer's parameters or parameter groups; None for all parameters.
        collate_fn: the DataLoader's collate function; None for the default stacking.
    """

    cfg: Any
    config_dict: dict[str, Any]
    build_model: Callable[[Any], nn.Module]
    build_trainset: Callable[[Any], Dataset]
    resume: bool = False
    resume_last_good: bool = False
    worker_init_fn: Callable[[int], None] | None = None
    make_picture: Callable[[Any], Any] | None = None
    param_groups: Callable[[nn.Module, Any], Any] | None = None
    collate_fn: Callable[[Any], Any] | None = None


@dataclass
class _Progress:
    """Loss terms summed on the device between two host readings, and the time of the last reading."""

    names: list[str]
    total: Tensor
    steps: int = 0
    since: float = field(default_factory=time.perf_counter)


def run_training(job: TrainJob, plan: LaunchPlan, user_errors: tuple[type[BaseException], ...] = ()) -> None:
    """Trains in every process of the plan (see common.engine.distributed.launch for the errors raised)."""
    launch(train_worker, plan, (job,), user_errors=user_errors, reported=(TrainingDivergedError,))


def train_worker(ctx: WorkerContext, job: TrainJob) -> None:
    """One process's training run (the `launch` worker)."""
    paths = RunPaths(job.cfg.output_dir)
    handler = attach_log_file(paths.log_dir / "train_logs.txt", ctx.is_main)
    try:
        _Trainer(ctx, job, paths).fit()
    finally:
        detach_log_file(handler)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Moves a collated dict's tensors (not its other values) to the device, asynchronously from pinned memory."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def set_train_mode(model: nn.Module, batchnorm: str) -> None:
    """model.train(), with BatchNorm layers in eval mode (fixed running statistics) when batchnorm is 'frozen'."""
    model.train()
    if batchnorm == "frozen":
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                module.train(False)  # fixed running statistics


class _Trainer:
    """One process's model, optimizer, schedule and data, built (and resumed) in __init__; `fit` trains."""

    def __init__(self, ctx: WorkerContext, job: TrainJob, paths: RunPaths) -> None:
        self.ctx, self.job, self.cfg, self.paths = ctx, job, job.cfg, paths
        train = self.cfg.train
        seed_everything(train.seed)  # the same initial weights in every process
        model = job.build_model(self.cfg)
        seed_everything(train.seed + ctx.rank)  # from here on, a stream of its own (e.g. loader worker seeds)
        if train.batchnorm == "sync":
            if ctx.device.type != "cuda":
                raise UsageError("train.batchnorm='sync' needs CUDA devices (SyncBatchNorm); use 'batch' or 'frozen'")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = prepare_model(model, ctx.device, train.channels_last, train.compile)
        params = self.model.parameters() if job.param_groups is None else job.param_groups(self.model, self.cfg)
        self.optimizer = make_optimizer(params, train.lr, ctx.device, train.optimizer)
        if ctx.is_main:  # the one process that writes snapshots, before it writes any
            self._remove_partial_snapshots()
        self.start_epoch, snapshot = self._resume()
        self.scheduler = make_scheduler(self.optimizer, train.lr_dec_epoch, train.lr_dec_factor, self.start_epoch)
        if snapshot is not None:
            self.scheduler.load_state_dict(snapshot["scheduler"])
        self.dataset = job.build_trainset(self.cfg)
        self.sampler = DistributedSampler(self.dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                          seed=train.seed, drop_last=True)  # fmt: skip
        self.loader = DataLoader(
            self.dataset, batch_size=train.train_batch_size, sampler=self.sampler, num_workers=self.cfg.data.num_thread,
            pin_memory=ctx.device.type == "cuda", drop_last=True, worker_init_fn=job.worker_init_fn,
            collate_fn=job.collate_fn,
        )  # fmt: skip
        if len(self.loader) == 0:
            raise UsageError(f"the training set has {len(self.dataset)} samples: fewer than one batch of "
                             f"{train.train_batch_size} per process x {ctx.world_size} process(es)")  # fmt: skip
        self.ddp = (
            DistributedDataParallel(self.model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
            if ctx.world_size > 1 else self.model
        )  # fmt: skip
        if snapshot is not None:  # last, after everything that draws random numbers while being built
            self._restore_rng(snapshot["rng_states"])

    def _resume(self) -> tuple[int, dict[str, Any] | None]:
        """(first epoch to train, the training snapshot whose schedule and RNG are still to restore, if any)."""
        if not self.job.resume:
            leftover = latest_snapshot(self.paths.model_dir)
            if leftover is not None and self.ctx.is_main:
                logger.warning("Training from epoch 0 into %s, which holds snapshots of an earlier run (up to %s): "
                               "they are overwritten epoch by epoch, and --continue would resume from the highest",
                               self.paths.model_dir, leftover.name)  # fmt: skip
            return 0, None
        point = read_resume_snapshot(self.paths.model_dir, self.job.resume_last_good)
        path, snapshot = point.path, point.snapshot
        if point.skipped and self.ctx.is_main:
            logger.warning("Skipping the unreadable newest snapshot (%s); resuming from the newest good one, %s",
                           point.problem, path)  # fmt: skip
            for moved in set_aside(point.skipped):
                logger.warning("Renamed the unreadable %s to %s", moved.with_suffix(""), moved.name)
        start_epoch = int(snapshot["epoch"]) + 1
        if not is_training_snapshot(snapshot):
            load_weights(self.model, snapshot, str(path))
            logger.info("Starting at epoch %d from the weights of %s (fresh optimizer)", start_epoch, path)
            return start_epoch, None
        load_network_state(self.model, snapshot["network"])
        self.optimizer.load_state_dict(snapshot["optimizer"])
        saved_lr = self.optimizer.param_groups[0]["initial_lr"]
        if saved_lr != self.cfg.train.lr:
            logger.warning("Resuming with the snapshot's base lr %g, not train.lr %g", saved_lr, self.cfg.train.lr)
        logger.info("Resuming at epoch %d from %s (network, optimizer, schedule, RNG)", start_epoch, path)
        return start_epoch, snapshot

    def _restore_rng(self, rng_states: list[dict[str, Any]]) -> None:
        if len(rng_states) == self.ctx.world_size:
            restore_rng_state(rng_states[self.ctx.rank])
        else:  # another process count: each process gets a reproducible stream of its own instead
            logger.warning("The snapshot has RNG states of %d processes, this run has %d: reseeding", len(rng_states),
                           self.ctx.world_size)  # fmt: skip
            seed_everything(self.cfg.train.seed + 1000 * self.start_epoch + self.ctx.rank)

    def fit(self) -> None:
        train, ctx = self.cfg.train, self.ctx
        if self.start_epoch >= train.end_epoch:
            logger.info("Nothing to train: start epoch %d >= train.end_epoch %d", self.start_epoch, train.end_epoch)
            return
        steps = len(self.loader)
        logger.info("Training epochs %d-%d: %d steps of %d x %d process(es) on %s", self.start_epoch,
                    train.end_epoch - 1, steps, train.train_batch_size, ctx.world_size, ctx.device)  # fmt: skip
        writer = open_tensorboard(self.paths.tensorboard_dir) if ctx.is_main else None
        drawing = ctx.is_main and train.vis_interval > 0 and self.job.make_picture is not None
        painter = self.job.make_picture(self.cfg) if drawing else None
        try:
            with logging_redirect_tqdm():  # console log lines go above the progress bar, not through it
                for epoch in range(self.start_epoch, train.end_epoch):
                    self._train_epoch(epoch, steps, writer, painter)
                    self.scheduler.step()
                    self._save(epoch)
        finally:
            if painter is not None:
                painter.close()
            if writer is not None:
                writer.close()

    def _train_epoch(self, epoch: int, steps: int, writer: Any, painter: Any) -> None:
        train, device = self.cfg.train, self.ctx.device
        self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        set_train_mode(self.model, train.batchnorm)
        progress: _Progress | None = None
        guard: NonFiniteGuard | None = None
        bar = tqdm(self.loader, total=steps, desc=f"epoch {epoch}/{train.end_epoch - 1}", disable=not self.ctx.is_main,
                   dynamic_ncols=True)  # fmt: skip
        for iteration, (inputs, targets, meta_info) in enumerate(bar):
            step = epoch * steps + iteration
            inputs, targets, meta_info = (to_device(d, device) for d in (inputs, targets, meta_info))
            with autocast(device, train.precision):
                losses = self.ddp(inputs, targets, meta_info, "train")
            if progress is None:
                names = list(losses)
                progress = _Progress(names, torch.zeros(len(names), device=device))
                guard = NonFiniteGuard(names, device, steps)
            terms = torch.stack([losses[name].float() for name in progress.names])  # (T,)
            total = terms.sum()
            self.optimizer.zero_grad(set_to_none=True)
            if train.skip_nonfinite and not self._all_finite(total):
                logger.warning("Skipped step %d (epoch %d, iteration %d): non-finite loss: %s", step, epoch, iteration,
                               describe_nonfinite(progress.names, terms.tolist()))  # fmt: skip
                continue
            assert guard is not None
            guard.record(terms, total, step)
            total.backward()
            if train.grad_clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.grad_clip_norm)
            self.optimizer.step()
            guard.check()
            progress.total += terms.detach()
            progress.steps += 1
            if (iteration + 1) % train.log_interval == 0 or iteration + 1 == steps:
                self._log(progress, epoch, iteration, steps, step, bar, writer)
            if painter is not None and writer is not None and step % train.vis_interval == 0:
                self._draw(inputs, step, writer, painter)
        if guard is not None:
            guard.check(wait=True)  # no snapshot of weights that a NaN step has touched

    def _all_finite(self, total: Tensor) -> bool:
        """Whether every process's loss is finite (one synchronisation; all processes must skip together)."""
        finite = torch.isfinite(total.detach()).float()
        if self.ctx.world_size > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite.item())

    def _log(self, progress: _Progress, epoch: int, iteration: int, steps: int, step: int, bar: tqdm,
             writer: Any) -> None:  # fmt: skip
        """Reads the averaged loss terms on the host (one synchronisation per log interval) and writes them."""
        means = (progress.total / max(progress.steps, 1)).tolist()
        now = time.perf_counter()
        images_per_s = progress.steps * self.cfg.train.train_batch_size * self.ctx.world_size / (now - progress.since)
        lr = self.optimizer.param_groups[0]["lr"]
        total = sum(means)
        progress.total.zero_()
        progress.steps, progress.since = 0, now
        if not self.ctx.is_main:
            return
        bar.set_postfix(loss=f"{total:.4f}", img_s=f"{images_per_s:.1f}")
        terms = " ".join(f"{name} {value:.4f}" for name, value in zip(progress.names, means, strict=True))
        logger.info("epoch %d/%d iter %d/%d lr %.2e %.1f img/s loss %.4f: %s", epoch, self.cfg.train.end_epoch - 1,
                    iteration + 1, steps, lr, images_per_s, total, terms)  # fmt: skip
        if writer is not None:
            for name, value in zip(progress.names, means, strict=True):
                writer.add_scalar(f"loss/{name}", value, step)
            writer.add_scalar("loss/total", total, step)
            writer.add_scalar("lr", lr, step)
            writer.add_scalar("throughput/images_per_s", images_per_s, step)

    @torch.no_grad()
    def _draw(self, inputs: dict[str, Any], step: int, writer: Any, painter: Any) -> None:
        """The family's picture of the first inputs of this batch with the current weights (eval mode, unwrapped)."""
        count = self.cfg.train.vis_images
        first = {key: value[:count] for key, value in inputs.items() if isinstance(value, Tensor)}
        self.model.train(False)
        try:
            picture = painter.draw(self.model, first)
        except (RuntimeError, ValueError) as exc:  # e.g. early eval-mode BatchNorm statistics give absurd boxes
            logger.warning("Training picture skipped at step %d: %s", step, exc)
            return
        finally:
            set_train_mode(self.model, self.cfg.train.batchnorm)
        if picture is not None:
            writer.add_image("predictions", picture, step, dataformats="HWC")

    def _remove_partial_snapshots(self) -> None:
        """Deletes (and logs) what interrupted snapshot writes left: never read, and as large as a snapshot."""
        for partial in remove_partial_snapshots(self.paths.model_dir):
            logger.info("Deleted %s: the temporary file of a snapshot write that was interrupted", partial)

    def _save(self, epoch: int) -> None:
        path = snapshot_path(self.paths.model_dir, epoch)
        # Every process checks (the same weights under DDP), so all stop together instead of waiting for rank 0.
        check_weights(self.model.state_dict(), when=f"at the end of epoch {epoch}, before writing {path.name}")
        rng_states = all_gather_objects(capture_rng_state())  # every process's, for an exact resume
        if self.ctx.is_main:
            snapshot = {
                "epoch": epoch,
                "network": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": None,  # fp32 and bf16 train without loss scaling; the key keeps the documented layout
                "rng_states": rng_states,
                "config": self.job.config_dict,
            }
            write_snapshot(snapshot, path)
            logger.info("Wrote %s", path)
            self._remove_partial_snapshots()
            for stale in prune_snapshots(self.paths.model_dir, self.cfg.train.keep_snapshots, current_epoch=epoch):
                logger.info("Deleted %s (train.keep_snapshots=%d)", stale, self.cfg.train.keep_snapshots)
        barrier()
