"""Turn a trained snapshot into a starting point: epoch 0, network only (Hand4Whole's AGORA fine-tuning step).

    python tool/reset_epoch.py [--src tool/snapshot_6.pth.tar] [--out output/model_dump/snapshot_0.pth.tar]
        [--keep-optimizer] [--force]

Optimizer, scheduler and scaler states are dropped by default: resuming them would carry the old
learning-rate schedule into the new run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`

from common.engine.cli import run_cli
from common.engine.snapshot import read_snapshot, write_snapshot
from common.paths import REPO_ROOT

TRAINING_STATE_KEYS = ("optimizer", "scheduler", "scaler", "rng_states")  # what common/engine/trainer.py saves


def reset_epoch(snapshot: Mapping[str, Any], keep_optimizer: bool = False) -> dict[str, Any]:
    """A copy of ``snapshot`` with epoch 0 and, unless asked otherwise, no training state."""
    out = {k: v for k, v in snapshot.items() if keep_optimizer or k not in TRAINING_STATE_KEYS}
    out["epoch"] = 0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO_ROOT / "tool" / "snapshot_6.pth.tar")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "output" / "model_dump" / "snapshot_0.pth.tar")
    parser.add_argument("--keep-optimizer", action="store_true", help="keep optimizer/scheduler/scaler states")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    snapshot = read_snapshot(args.src)
    old_epoch = snapshot.get("epoch")
    write_snapshot(reset_epoch(snapshot, args.keep_optimizer), args.out, overwrite=args.force)
    print(f"wrote {args.out}: epoch {old_epoch} -> 0" + ("" if args.keep_optimizer else ", training state dropped"))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="reset_epoch.py"))
