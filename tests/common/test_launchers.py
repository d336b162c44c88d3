"""Multi-process training under torchrun's and OpenMPI's variables (common/engine/distributed.py).

Two gloo processes started with either launcher's environment must end with the same weights as one process on
the combined batch; mpirun without a rendezvous address is a clear error; torch.distributed.launch's --local-rank
is accepted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.engine.cli import UsageError
from common.engine.distributed import adopt_launcher_environment, free_port
from main.train import build_parser

WORKER = Path(__file__).resolve().parent / "launcher_worker.py"
# Variables a launcher would set; removed from the inherited environment so that each run sees only its own.
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "OMPI_COMM_WORLD_RANK",
                      "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK")  # fmt: skip


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    return env | {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # gloo on the CPU


def _run_pair(tmp_path: Path, rank_env) -> np.ndarray:
    """Starts 2 worker processes with rank_env(rank, port) added to their environment; rank 0's weights."""
    out, port = tmp_path / "weights.npy", free_port()
    command = [sys.executable, str(WORKER), str(out)]
    procs = [subprocess.Popen(command, env=_base_env() | rank_env(rank, port), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]  # fmt: skip
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    assert "rank 0 of 2" in outputs[0]
    return np.load(out)


@pytest.fixture(scope="module")
def single_process_weights(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    out = tmp_path_factory.mktemp("single") / "weights.npy"
    result = subprocess.run([sys.executable, str(WORKER), str(out)], env=_base_env(), capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rank 0 of 1" in result.stdout
    return np.load(out)


def test_two_processes_under_torchrun_variables_equal_one_process(tmp_path: Path, single_process_weights) -> None:
    def torchrun(rank: int, port: int) -> dict[str, str]:
        return {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port)}  # fmt: skip

    np.testing.assert_allclose(_run_pair(tmp_path, torchrun), single_process_weights, rtol=0, atol=1e-6)


def test_two_processes_under_openmpi_variables_equal_one_process(tmp_path: Path, single_process_weights) -> None:
    def openmpi(rank: int, port: int) -> dict[str, str]:
        return {"OMPI_COMM_WORLD_RANK": str(rank), "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": str(rank),
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip

    np.testing.assert_allclose(_run_pair(tmp_path, openmpi), single_process_weights, rtol=0, atol=1e-6)


def test_openmpi_variables_map_onto_torchruns() -> None:
    env = {"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
           "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}  # fmt: skip
    assert adopt_launcher_environment(env) == "mpirun"
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]) == ("5", "8", "1")


def test_mpirun_without_a_rendezvous_address_names_the_variables() -> None:
    env = {"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "0"}
    with pytest.raises(UsageError, match="MASTER_ADDR and MASTER_PORT are not set"):
        adopt_launcher_environment(env)
    assert "RANK" not in env  # nothing half-adopted


def test_torchrun_variables_win_and_a_plain_run_is_none() -> None:
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "OMPI_COMM_WORLD_RANK": "0"}
    assert adopt_launcher_environment(env) == "torchrun" and env["RANK"] == "1"
    assert adopt_launcher_environment({}) is None


def test_torch_distributed_launch_local_rank_argument_is_accepted() -> None:
    for flag in ("--local-rank=3", "--local_rank=3"):
        assert build_parser().parse_args(["--gpu", "0", flag]).local_rank == 3
    env = {"RANK": "3", "WORLD_SIZE": "4"}
    assert adopt_launcher_environment(env, local_rank=3) == "torchrun" and env["LOCAL_RANK"] == "3"
