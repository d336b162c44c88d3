"""Evaluate a snapshot on the config's test set over all listed GPUs (or the CPU); prints the metric table.

    cd main && python test.py --gpu 0-3 --test_epoch 6 [--cfg agora_finetune] [key=value ...]
    python -m main.test --gpu 0 --ckpt PATH    (any snapshot, e.g. a public Hand4Whole snapshot_6.pth.tar)

--test_epoch N reads output/model_dump/snapshot_N.pth.tar; the weights are loaded strictly (`module.` prefixes
accepted). The metrics go to output/result/<dataset>/metrics.json (written atomically) and output/log/test_logs.txt.
Bad input ends with one line and exit code 2: a missing or unreadable snapshot, an output folder that cannot be
created or written (checked before any work), an empty test set (an earlier metrics.json is kept as it was).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`, `main`

import argparse
import functools
import logging
import os

from common.engine.cli import parse_gpu_ids, run_cli
from common.engine.distributed import adopt_launcher_environment, plan_launch
from common.engine.run_log import RunPaths, check_output_folders
from common.engine.snapshot import SnapshotError, snapshot_path
from common.engine.tester import TestJob, run_test
from main.config import ConfigError, load_config
from main.model import get_family


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", default="", help="GPU ids: '0', '0,1,2,3' or '0-3' (default 0; ignored without CUDA)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--test_epoch", type=int, help="test output/model_dump/snapshot_{N}.pth.tar")
    which.add_argument("--ckpt", type=Path, help="test this snapshot file")
    parser.add_argument("--cfg", help="a yaml overlay: a name in main/configs/ or a path")
    # torch.distributed.launch passes --local-rank (older versions --local_rank); torchrun sets LOCAL_RANK instead
    parser.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.testset=EHF")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    adopt_launcher_environment(local_rank=args.local_rank)  # torchrun's or mpirun's ranks, before RANK is read
    gpu_ids = parse_gpu_ids(args.gpu) if args.gpu else None
    cfg = load_config(args.cfg, args.overrides)
    paths = RunPaths(cfg.output_dir)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, the one process that writes; before any work
        check_output_folders([paths.log_dir, paths.result_dir])
    if args.ckpt is not None:
        checkpoint = args.ckpt.expanduser()
        if not checkpoint.is_file():
            raise SnapshotError(f"--ckpt: snapshot not found: {checkpoint}")
    else:
        checkpoint = snapshot_path(paths.model_dir, args.test_epoch)
        if not checkpoint.is_file():
            raise SnapshotError(f"--test_epoch {args.test_epoch}: snapshot not found: {checkpoint}")
    plan = plan_launch(gpu_ids, cfg.train.cpu_processes)
    from data import build_testset  # here, not at the top: importing the datasets is not needed for --help
    from data.dataset import worker_init_fn

    family = get_family(cfg)
    job = TestJob(cfg, checkpoint, functools.partial(family.build_model, mode="test"), build_testset, worker_init_fn,
                  family.collate_fn)  # fmt: skip
    run_test(job, plan, user_errors=(ConfigError,))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, user_errors=(ConfigError,)))
