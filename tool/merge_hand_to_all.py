"""Put the hand-only model's backbone into the whole-body model (stage 2 -> stage 3 of Hand4Whole).

    python tool/merge_hand_to_all.py [--wholebody tool/snapshot_6_all.pth.tar]
        [--hand tool/snapshot_12_hand.pth.tar] [--out output/model_dump/snapshot_0.pth.tar]
        [--keep-hand-heads] [--force]

The hand backbone is read under either naming the released hand models use (`hand_backbone.*` or
Pose2Pose's `backbone.*`, with or without `module.`) and written to `hand_roi_net.backbone.*`. By
default the whole-body model's hand heads are dropped, as Hand4Whole does, so that stage 3
re-initialises them; the snapshot says so (`partial`), and training lists them when it starts.
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`

import torch

from common.engine.cli import run_cli
from common.engine.snapshot import SnapshotError, read_snapshot, write_snapshot
from common.paths import REPO_ROOT

HAND_BACKBONE_PREFIXES = ("hand_backbone.", "backbone.")  # older release naming, then the Pose2Pose branch's
TARGET_PREFIX = "hand_roi_net.backbone."
HAND_HEAD_PREFIXES = ("hand_position_net.", "hand_rotation_net.")


def merge_hand_into_wholebody(
    wholebody: Mapping[str, torch.Tensor], hand: Mapping[str, torch.Tensor], keep_hand_heads: bool = False
) -> tuple[OrderedDict[str, torch.Tensor], list[str], list[str]]:
    """Copy the hand model's backbone into the whole-body state_dict.

    Args:
        wholebody: whole-body state_dict, no ``module.`` prefix.
        hand: hand-only model's state_dict, no ``module.`` prefix.
        keep_hand_heads: keep the whole-body hand position/rotation heads instead of dropping them.

    Returns:
        (merged state_dict, copied destination keys, dropped keys).

    Raises:
        SnapshotError: when the hand model has no backbone under a known naming, or a copied tensor's
            shape differs from the whole-body one (naming the key).
    """
    prefix = next((p for p in HAND_BACKBONE_PREFIXES if any(k.startswith(p) for k in hand)), None)
    if prefix is None:
        raise SnapshotError(f"no hand backbone in the hand model: expected keys starting with {HAND_BACKBONE_PREFIXES}")
    merged = OrderedDict(wholebody)
    copied = []
    for key, value in hand.items():
        if not key.startswith(prefix):
            continue
        target = TARGET_PREFIX + key[len(prefix) :]
        if target not in merged:
            raise SnapshotError(f"hand backbone key {key!r} has no counterpart {target!r} in the whole-body model")
        if merged[target].shape != value.shape:
            raise SnapshotError(f"{key!r}: hand {tuple(value.shape)} vs whole-body {tuple(merged[target].shape)}")
        merged[target] = value.clone()
        copied.append(target)
    dropped = [] if keep_hand_heads else [k for k in merged if k.startswith(HAND_HEAD_PREFIXES)]
    for key in dropped:
        del merged[key]
    return merged, copied, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wholebody", type=Path, default=REPO_ROOT / "tool" / "snapshot_6_all.pth.tar")
    parser.add_argument("--hand", type=Path, default=REPO_ROOT / "tool" / "snapshot_12_hand.pth.tar")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "output" / "model_dump" / "snapshot_0.pth.tar")
    parser.add_argument("--keep-hand-heads", action="store_true", help="keep the whole-body hand heads")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    wholebody, hand = read_snapshot(args.wholebody), read_snapshot(args.hand)
    merged, copied, dropped = merge_hand_into_wholebody(wholebody["network"], hand["network"], args.keep_hand_heads)
    snapshot = {"epoch": 0, "network": merged, "partial": bool(dropped),
                "source": f"merge_hand_to_all: {args.wholebody} + hand backbone of {args.hand}"}  # fmt: skip
    write_snapshot(snapshot, args.out, overwrite=args.force)
    print(f"copied {len(copied)} tensors into {TARGET_PREFIX}* (e.g. {copied[0]})")
    print(f"dropped {len(dropped)} tensors: " + (", ".join(sorted({k.split(".")[0] for k in dropped})) or "none"))
    print(f"wrote {args.out} (epoch 0: training with --continue starts at epoch 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="merge_hand_to_all.py"))
