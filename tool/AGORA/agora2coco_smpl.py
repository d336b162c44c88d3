"""AGORA's raw release, SMPL fits -> the parsed SMPL layout data/AGORA reads for the Pose2Pose body model.

    python tool/AGORA/agora2coco_smpl.py --dataset_path DATA/AGORA/data --human_model_path HUMAN_MODELS [--out DIR]

Hand4Whole's Pose2Pose branch tool of the same name. Reads, under --dataset_path, the SMPL scene tables as json
(SMPL/*.json for train, validation_SMPL/SMPL/*.json for validation; NOT the pandas pickles: extract them once with
the snippet of --help, see tool/AGORA/raw_inputs.py) and each person's SMPL fit (the table's gt_path_smpl: AGORA's
.pkl of torch tensors root_pose, body_pose, betas, translation, read without running code from it, or a .npz
with those keys). Writes, under --out (default: --dataset_path):

    AGORA_{train,validation}_SMPL.json          COCO format, with smpl_param_path (data/AGORA/fits.py)
    smpl_params_cam/<folder>/<image>/<k>.json   global_orient 3, body_pose 69, betas (the first 10), transl 3,
                                                in the camera frame
    cam_params/<folder>/<image>.json            focal, princpt in 3840x2160 pixels (the SMPL-X tool's, the same)

Per person, as agora2coco_smplx.py (tool/AGORA/conversion.py): pose the fit with the annotated gender's SMPL
layer at zero translation, map its 45 output joints (24 skeleton + 21 keypoint vertices) into the camera with
AGORA's projection, solve the rigid R, t from the joint pairs and fold it into global_orient and transl. The
body box (bbox) is the extent of those 45 projected joints x1.2, as Hand4Whole drew it from the SMPL tables'
gt_joints_2d; there are no hand or face boxes (the body model does not use them). Unlike Hand4Whole's script,
the annotations are written (it never appended them to its list).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.body_models.layers import NUM_BETAS, BodyModels
from common.utils.augmentation import get_bbox
from tool.AGORA import conversion
from tool.AGORA.agora2coco_smplx import BOX_EXTEND
from tool.AGORA.conversion import Conversion
from tool.AGORA.raw_inputs import SMPL_FIT_COLUMN, extract_tables_snippet, read_smpl_fit

__all__ = ["SMPL_CONVERSION", "SPLIT_TABLES", "body_box", "convert_agora", "main", "pose_smpl_fit"]

SPLIT_TABLES = {"train": "SMPL", "validation": "validation_SMPL/SMPL"}  # where each split's SMPL tables are
_FIT_SIZES = {"global_orient": 3, "body_pose": 69, "betas": NUM_BETAS}


def pose_smpl_fit(body_models: BodyModels, fit: Mapping[str, np.ndarray], gender: str) -> np.ndarray:
    """(45, 3) float64 SMPL output joints of a fit at zero translation (fit-frame metres, before transl)."""
    inputs = {k: torch.as_tensor(fit[k][:n], dtype=torch.float32).reshape(1, n) for k, n in _FIT_SIZES.items()}
    with torch.no_grad():
        output = body_models.smpl(gender)(**inputs, transl=torch.zeros(1, 3))
    return output.joints[0].numpy().astype(np.float64)


def body_box(joints_img: np.ndarray) -> dict[str, list[float]]:
    """{'bbox': [x, y, w, h]}: the extent of the (45, 2) projected SMPL joints x1.2, pixels."""
    return {"bbox": get_bbox(joints_img, np.ones(len(joints_img)), BOX_EXTEND).tolist()}


SMPL_CONVERSION = Conversion(
    variant="smpl", split_tables=SPLIT_TABLES, fit_column=SMPL_FIT_COLUMN,
    snippet=extract_tables_snippet(("SMPL/*.pkl", "validation_SMPL/SMPL/*.pkl"), SMPL_FIT_COLUMN),
    read_fit=read_smpl_fit, pose_fit=pose_smpl_fit, boxes=body_box,
)  # fmt: skip


def convert_agora(
    dataset_path: str | Path,
    human_model_path: str | Path,
    out: str | Path | None = None,
    splits: Iterable[str] = ("train", "validation"),
) -> list[Path]:
    """Convert the given splits' SMPL fits (see the module docstring); returns the annotation files written."""
    return conversion.convert_agora(SMPL_CONVERSION, dataset_path, human_model_path, out, splits)


def main(argv: list[str] | None = None) -> int:
    return conversion.main(SMPL_CONVERSION, argv, __doc__.split("\n\n")[0], "agora2coco_smpl")


if __name__ == "__main__":
    raise SystemExit(main())
