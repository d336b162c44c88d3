"""Train the config's model family (`model.arch`, default Hand4Whole): one process per listed GPU (DDP), or the CPU.

    cd main && python train.py --gpu 0-3 --lr 1e-4 [--continue] [--cfg agora_finetune] [train.end_epoch=10 ...]
    python -m main.train --gpu 0 ...          (the same, from the repository root)
    python train.py --gpu 0 --cfg pose2pose_hand      (another family: its yaml overlay sets model.arch)
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 main/train.py --gpu 0-3
    MASTER_ADDR=HOST MASTER_PORT=29500 mpirun -x MASTER_ADDR -x MASTER_PORT -n 8 python main/train.py --gpu 0-3

Writes output/model_dump/snapshot_{epoch}.pth.tar after every epoch, output/log/train_logs.txt, TensorBoard files
in output/log/tensorboard/ and the run's config as output/log/train_config.yaml (output/ = cfg.output_dir).
`--continue` resumes from the highest snapshot (README, Training and testing); when that file cannot be read
(truncated), it stops naming it and the newest good snapshot, and `--continue-from-last-good` resumes from that one.

Exit codes: 0 done; 2 bad input or an unwritable output (one line: an output folder that cannot be created or
written, checked before any work; a full disk when writing a snapshot, with the OS reason; an unreadable
snapshot); 1 training diverged (a NaN/inf loss, or weights that are NaN, inf or above 1e20 before a snapshot:
none is written).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`, `main`

import argparse
import functools
import logging
import os

from common.engine.cli import UsageError, parse_gpu_ids, run_cli
from common.engine.distributed import adopt_launcher_environment, plan_launch
from common.engine.nonfinite import TrainingDivergedError
from common.engine.resume import LAST_GOOD_FLAG
from common.engine.run_log import RunPaths, check_output_folders
from common.engine.snapshot import latest_snapshot
from common.engine.trainer import TrainJob, run_training
from main.config import ConfigError, config_to_dict, load_config, save_config
from main.model import get_family


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", default="", help="GPU ids: '0', '0,1,2,3' or '0-3' (default 0; ignored without CUDA)")
    parser.add_argument("--lr", type=float, help="learning rate (sets train.lr)")
    parser.add_argument("--continue", dest="resume", action="store_true", help="resume from the highest snapshot")
    parser.add_argument(LAST_GOOD_FLAG, dest="resume_last_good", action="store_true",
                        help="like --continue, but when the highest snapshot cannot be read (e.g. truncated), resume "
                             "from the newest one that can (the skipped file is named in the log)")  # fmt: skip
    parser.add_argument("--cfg", help="a yaml overlay: a name in main/configs/ or a path")
    # torch.distributed.launch passes --local-rank (older versions --local_rank); torchrun sets LOCAL_RANK instead
    parser.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.end_epoch=10")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    adopt_launcher_environment(local_rank=args.local_rank)  # torchrun's or mpirun's ranks, before RANK is read
    gpu_ids = parse_gpu_ids(args.gpu) if args.gpu else None
    overrides = [*args.overrides, *([f"train.lr={args.lr!r}"] if args.lr is not None else [])]
    cfg = load_config(args.cfg, overrides)
    paths = RunPaths(cfg.output_dir)
    writer = os.environ.get("RANK", "0") == "0"  # under torchrun, one process writes the outputs
    if writer:  # before anything is built, so an unwritable folder costs no data loading
        check_output_folders([paths.model_dir, paths.log_dir])
    resume = args.resume or args.resume_last_good
    if resume and latest_snapshot(paths.model_dir) is None:
        raise UsageError(f"--continue: no snapshot_<epoch>.pth.tar in {paths.model_dir}")
    plan = plan_launch(gpu_ids, cfg.train.cpu_processes)
    if writer:
        save_config(cfg, paths.log_dir / "train_config.yaml")
    from data import build_trainset  # here, not at the top: importing the datasets is not needed for --help
    from data.dataset import worker_init_fn

    family = get_family(cfg)
    job = TrainJob(cfg, config_to_dict(cfg), functools.partial(family.build_model, mode="train"), build_trainset,
                   resume=resume, resume_last_good=args.resume_last_good, worker_init_fn=worker_init_fn,
                   make_picture=family.make_picture, param_groups=family.param_groups,
                   collate_fn=family.collate_fn)  # fmt: skip
    try:
        run_training(job, plan, user_errors=(ConfigError,))
    except TrainingDivergedError as exc:
        print(f"train.py: training stopped: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, user_errors=(ConfigError,)))
