"""Start the body backbone from a SimpleBaseline 2D pose network (stage 1 of Hand4Whole).

    python tool/convert_simple_to_pose2pose.py [--src tool/body_pose_resnet_50_256x192.pth.tar]
        [--out output/model_dump/snapshot_0.pth.tar] [--force]

SimpleBaseline's ResNet keys become `backbone.*`; its deconvolution head and final layer have no
counterpart and are dropped (and listed). The snapshot is `partial`: every other module of the
model starts from its own initialisation, which training lists when it starts.
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`

import torch

from common.engine.checkpoint import strip_module_prefix
from common.engine.cli import run_cli
from common.engine.snapshot import SnapshotError, load_tensor_file, write_snapshot
from common.paths import REPO_ROOT

RESNET_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")


def simplebaseline_to_backbone(
    state_dict: Mapping[str, torch.Tensor],
) -> tuple[OrderedDict[str, torch.Tensor], list[str]]:
    """Map a SimpleBaseline state_dict (plain, or wrapped in {'state_dict': ...}) to ``backbone.*`` keys.

    Returns:
        (the network state_dict, the dropped keys).
    """
    state_dict = strip_module_prefix(state_dict)
    network = OrderedDict(
        ("backbone." + k, v.detach().cpu()) for k, v in state_dict.items() if k.startswith(RESNET_PREFIXES)
    )
    if not network:
        raise SnapshotError(f"no ResNet keys ({', '.join(RESNET_PREFIXES)}) in the SimpleBaseline file")
    return network, [k for k in state_dict if not k.startswith(RESNET_PREFIXES)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO_ROOT / "tool" / "body_pose_resnet_50_256x192.pth.tar")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "output" / "model_dump" / "snapshot_0.pth.tar")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    loaded = load_tensor_file(args.src, "SimpleBaseline weights")  # weights only: a file that runs code is refused
    state_dict = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    network, dropped = simplebaseline_to_backbone(state_dict)
    snapshot = {"epoch": 0, "network": network, "partial": True, "source": f"SimpleBaseline {args.src}"}
    write_snapshot(snapshot, args.out, overwrite=args.force)
    print(f"converted {len(network)} backbone tensors; dropped {len(dropped)}: "
          + ", ".join(sorted({k.split('.')[0] for k in dropped})))  # fmt: skip
    print(f"wrote {args.out} (epoch 0: training with --continue starts at epoch 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="convert_simple_to_pose2pose.py"))
