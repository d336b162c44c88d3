"""One process per device: planning, launching (spawn or torchrun) and the few collectives the engine needs.

Three ways a run starts (DESIGN.md, Distributed):

* one machine, `--gpu 0-3`: the entry script spawns one process per listed GPU (torch.multiprocessing) that
  meet over TCP on a free localhost port, DistributedDataParallel with NCCL; one GPU runs in the calling process;
* several machines: torchrun starts the processes and sets RANK, WORLD_SIZE and LOCAL_RANK; nothing is spawned
  and the process group is initialised from that environment. OpenMPI's `mpirun -n N python main/train.py ...`
  works the same way: `adopt_launcher_environment` (called first by train.py and test.py) maps its
  OMPI_COMM_WORLD_RANK, _SIZE and _LOCAL_RANK onto RANK, WORLD_SIZE and LOCAL_RANK, with MASTER_ADDR and
  MASTER_PORT taken from the environment (an error names them when absent: mpirun does not set them);
* no CUDA: the CPU with gloo, in `cpu_processes` processes (one by default), after a one-line notice.

A single process runs without a process group, and every collective here degrades to the identity, so the
training and test loops are written once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from common.engine.cli import USER_ERRORS, UsageError, user_message

__all__ = [
    "LaunchPlan",
    "adopt_launcher_environment",
    "WorkerContext",
    "all_gather_objects",
    "barrier",
    "free_port",
    "launch",
    "plan_launch",
    "torchrun_environment",
]

logger = logging.getLogger(__name__)

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# OpenMPI's names for the same three values, in the same order (mpirun sets them in every process it starts).
_OPENMPI_VARIABLES = ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK")
_RENDEZVOUS_VARIABLES = ("MASTER_ADDR", "MASTER_PORT")
# NCCL and gloo wait this long for a peer (a collective, or the rendezvous) before failing, instead of hanging.
_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class LaunchPlan:
    """Where the processes of a run go.

    Attributes:
        device_type: 'cuda' or 'cpu'.
        device_ids: the CUDA device of each local process, by local rank; empty on the CPU.
        nprocs: processes on this machine (under torchrun: 1, this one).
        backend: 'nccl' or 'gloo'.
        torchrun: True when torchrun started this process (the process group comes from the environment).
    """

    device_type: str
    device_ids: tuple[int, ...]
    nprocs: int
    backend: str
    torchrun: bool = False


@dataclass(frozen=True)
class WorkerContext:
    """What one process knows about its place in the run."""

    rank: int  # global rank, 0 .. world_size - 1
    world_size: int
    local_rank: int  # rank on this machine
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the logs, snapshots and results."""
        return self.rank == 0


def adopt_launcher_environment(environ: MutableMapping[str, str] | None = None, local_rank: int | None = None
                               ) -> str | None:  # fmt: skip
    """Names the launcher that started this process and gives the process group torchrun's variables.

    torchrun (and torch.distributed.launch) set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. OpenMPI's
    mpirun sets OMPI_COMM_WORLD_RANK, _SIZE and _LOCAL_RANK only: they are copied onto RANK, WORLD_SIZE and
    LOCAL_RANK, and MASTER_ADDR/MASTER_PORT must come from the user's environment (e.g. `mpirun -x MASTER_ADDR
    -x MASTER_PORT`, or a PBS/Slurm script that exports them), since every rank must meet at the same address.

    Args:
        environ: the environment to read and update (default os.environ).
        local_rank: torch.distributed.launch's `--local-rank` argument, used when LOCAL_RANK is not set.

    Returns:
        'torchrun', 'mpirun' or None (a plain run: train.py spawns its own processes).

    Raises:
        UsageError: an mpirun start without MASTER_ADDR or MASTER_PORT, or with non-integer rank variables.
    """
    env = os.environ if environ is None else environ
    if local_rank is not None and "LOCAL_RANK" not in env:
        env["LOCAL_RANK"] = str(local_rank)
    if all(name in env for name in _TORCHRUN_VARIABLES):
        return "torchrun"
    if not all(name in env for name in _OPENMPI_VARIABLES):
        return None
    missing = [name for name in _RENDEZVOUS_VARIABLES if not env.get(name)]
    if missing:
        raise UsageError(f"started by mpirun (OMPI_COMM_WORLD_RANK={env['OMPI_COMM_WORLD_RANK']}) but "
                         f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: export the address "
                         "and a free port of rank 0's host and pass them to every rank, e.g. `mpirun -x MASTER_ADDR "
                         "-x MASTER_PORT -n 8 python main/train.py ...` (README: Multi-node training)")  # fmt: skip
    for source, target in zip(_OPENMPI_VARIABLES, _TORCHRUN_VARIABLES, strict=True):
        if not env[source].strip().isdigit():
            raise UsageError(f"{source}={env[source]!r} is not a non-negative integer")
        env[target] = env[source].strip()
    return "mpirun"


def torchrun_environment() -> dict[str, int] | None:
    """RANK, WORLD_SIZE and LOCAL_RANK when torchrun (or another launcher) set them all, else None."""
    if not all(name in os.environ for name in _TORCHRUN_VARIABLES):
        return None
    return {name: int(os.environ[name]) for name in _TORCHRUN_VARIABLES}


def _check_cuda_ids(gpu_ids: Sequence[int]) -> None:
    count = torch.cuda.device_count()
    absent = [i for i in gpu_ids if i >= count]
    if absent:
        raise UsageError(f"GPU id(s) {absent} do not exist: this machine has {count} CUDA device(s), ids 0-{count - 1}")


def plan_launch(gpu_ids: Sequence[int] | None, cpu_processes: int = 1) -> LaunchPlan:
    """Decides the devices and process count of a run from --gpu and the machine.

    Args:
        gpu_ids: the parsed --gpu list (common.engine.cli.parse_gpu_ids), or None for GPU 0. Under torchrun it
            lists this machine's GPUs by local rank (default: GPU = LOCAL_RANK).
        cpu_processes: processes to start when there is no CUDA device (cfg.train.cpu_processes).

    Returns:
        The plan; without CUDA a one-line notice is logged.

    Raises:
        UsageError: a listed GPU does not exist, or torchrun's LOCAL_RANK has no GPU in the list.
    """
    env = torchrun_environment()
    if not torch.cuda.is_available():
        where = "this process (torchrun)" if env else f"{cpu_processes} process(es)"
        logger.warning("No CUDA device: running on the CPU with gloo in %s%s.", where,
                       f"; --gpu {','.join(map(str, gpu_ids))} is ignored" if gpu_ids else "")  # fmt: skip
        return LaunchPlan("cpu", (), 1 if env else cpu_processes, "gloo", torchrun=env is not None)
    if env is not None:
        local_rank = env["LOCAL_RANK"]
        ids = list(gpu_ids) if gpu_ids else list(range(local_rank + 1))
        if local_rank >= len(ids):
            raise UsageError(f"torchrun LOCAL_RANK={local_rank} but --gpu lists only {len(ids)} GPU(s): {ids}")
        _check_cuda_ids([ids[local_rank]])
        return LaunchPlan("cuda", tuple(ids), 1, "nccl", torchrun=True)
    ids = list(gpu_ids) if gpu_ids else [0]
    _check_cuda_ids(ids)
    return LaunchPlan("cuda", tuple(ids), len(ids), "nccl")


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (the OS picks it), for the spawned processes' rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _device(plan: LaunchPlan, local_rank: int) -> torch.device:
    if plan.device_type == "cpu":
        if plan.nprocs > 1:  # share the cores: oversubscribed OpenMP threads spin and slow every process down
            torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // plan.nprocs))
        return torch.device("cpu")
    device = torch.device("cuda", plan.device_ids[local_rank])
    torch.cuda.set_device(device)  # NCCL and all_gather_object use the current device
    return device


def _spawned_entry(
    local_rank: int,
    worker: Callable[..., None],
    plan: LaunchPlan,
    port: int,
    args: tuple[Any, ...],
    errors: Any,
    user_errors: tuple[type[BaseException], ...],
    reported: tuple[type[BaseException], ...],
) -> None:
    device = _device(plan, local_rank)
    with _process_group(plan, device, f"tcp://127.0.0.1:{port}", rank=local_rank, world_size=plan.nprocs):
        try:
            worker(WorkerContext(local_rank, plan.nprocs, local_rank, device), *args)
        except USER_ERRORS + user_errors as exc:
            # The parent re-raises it: the user gets one line, not the child's traceback. Sent as a UsageError
            # because not every exception type survives pickling (those with several constructor arguments).
            errors.put(UsageError(user_message(exc)))
            raise
        except reported as exc:
            errors.put(exc)
            raise


@contextmanager
def _process_group(plan: LaunchPlan, device: torch.device, init_method: str, **rendezvous: int) -> Iterator[None]:
    """The process group around one worker; torn down after it, only once every process has finished its own.

    Without the barrier a fast process may close its gloo connections (and rank 0 its rendezvous store) while a
    peer is still tearing down, and both then abort in C++ ("terminate called without an active exception"),
    after their results were written. A failed worker skips it: its peers may never reach the barrier.
    """
    bound_device = device if plan.device_type == "cuda" else None  # NCCL connects eagerly to its bound device
    dist.init_process_group(plan.backend, init_method=init_method, timeout=_TIMEOUT, device_id=bound_device,
                            **rendezvous)  # fmt: skip
    try:
        yield
    except BaseException:
        dist.destroy_process_group()
        raise
    dist.barrier()
    dist.destroy_process_group()


def launch(
    worker: Callable[..., None],
    plan: LaunchPlan,
    args: tuple[Any, ...] = (),
    user_errors: tuple[type[BaseException], ...] = (),
    reported: tuple[type[BaseException], ...] = (),
) -> None:
    """Runs ``worker(ctx: WorkerContext, *args)`` in every process of the plan and waits for all of them.

    Args:
        worker: a module-level function (spawned processes import it by name); ``args`` must pickle.
        plan: from `plan_launch`.
        args: further arguments of the worker.
        user_errors: exception types that mean bad input (besides common.engine.cli.USER_ERRORS): raised in a
            spawned process, they come back here as a UsageError with the same message.
        reported: further exception types re-raised here as they are (they must pickle: one message argument).

    Raises:
        UsageError or one of ``reported``: what the first failing spawned process raised; any other failure of
        a spawned process as torch.multiprocessing's ProcessRaisedException (with the child's traceback).
    """
    if plan.torchrun:
        env = torchrun_environment()
        assert env is not None  # plan_launch saw it
        device = _device(plan, env["LOCAL_RANK"])
        with _process_group(plan, device, "env://"):
            worker(WorkerContext(env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], device), *args)
        return
    if plan.nprocs == 1:
        worker(WorkerContext(0, 1, 0, _device(plan, 0)), *args)
        return
    errors = mp.get_context("spawn").SimpleQueue()
    spawn_args = (worker, plan, free_port(), args, errors, user_errors, reported)
    # When one process fails, torch terminates the others and logs a warning for each; the failure itself is
    # what the user needs to read, in one line.
    spawn_logger = logging.getLogger("torch.multiprocessing.spawn")
    level = spawn_logger.level
    spawn_logger.setLevel(logging.ERROR)
    try:
        mp.spawn(_spawned_entry, args=spawn_args, nprocs=plan.nprocs, join=True)
    except ProcessException as exc:
        if not errors.empty():
            raise errors.get() from exc
        raise
    finally:
        spawn_logger.setLevel(level)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), by rank; ``[obj]`` without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    """Waits for every process (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
