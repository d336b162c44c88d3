"""AGORA's raw release -> the parsed layout data/AGORA reads (Hand4Whole's tool/AGORA/agora2coco_smplx.py).

    python tool/AGORA/agora2coco_smplx.py --dataset_path DATA/AGORA/data --human_model_path HUMAN_MODELS [--out DIR]

Reads, under --dataset_path, the scene tables as json (SMPLX/*.json for train, validation_SMPLX/SMPLX/*.json for
validation; NOT the pandas pickles, see tool/AGORA/raw_inputs.py for the one-off extraction) and each person's
SMPL-X fit (the table's gt_path_smplx as .npz, or as .pkl holding numpy arrays only). Writes, under --out
(default: --dataset_path):

    AGORA_{train,validation}_SMPLX.json          COCO format, the fields data/AGORA/AGORA.py documents
    smplx_params_cam/<folder>/<image>/<k>.json   the fit in the camera frame (betas: the first 10)
    cam_params/<folder>/<image>.json             focal, princpt in 3840x2160 pixels

<folder> is the image folder: train_0..train_9 (from the table's name) or validation. Per person, as Hand4Whole
(tool/AGORA/conversion.py): pose the fit with the annotated gender's SMPL-X layer and its first 10 betas, map the
joints into the camera with AGORA's projection, solve the rigid fit-frame -> camera R, t from the joint pairs,
fold it into global_orient and transl, and draw the boxes around the projected joints x1.2 (body: the 127 joints
of SMPL-X without the face contour; hands: 15 finger joints + 5 tips; face: Face_5..Face_55). Hand4Whole took
the 2D joints for the boxes from the tables' gt_joints_2d; this tool projects the same joints itself.
agora2coco_smpl.py converts AGORA's SMPL fits the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.body_models.joint_sets import FACE_STATIC_LANDMARKS, SMPLX_FINGERS, SMPLX_OUTPUT
from common.body_models.layers import NUM_BETAS, BodyModels
from common.utils.augmentation import get_bbox
from tool.AGORA import conversion
from tool.AGORA.conversion import Conversion, fold_rigid_into_params, rigid_fit
from tool.AGORA.raw_inputs import EXTRACT_TABLES_SNIPPET, SMPLX_FIT_COLUMN, read_fit

__all__ = ["BOX_EXTEND", "SMPLX_CONVERSION", "SPLIT_TABLES", "convert_agora", "fold_rigid_into_params", "main",
           "part_boxes", "pose_fit", "rigid_fit"]  # fmt: skip

SPLIT_TABLES = {"train": "SMPLX", "validation": "validation_SMPLX/SMPLX"}  # where each split's tables are
BOX_EXTEND = 1.2  # Hand4Whole's get_bbox: the joints' extent x1.2 about its centre
_BODY_JOINTS = range(127)  # SMPL-X's output without the 17 face-contour points, as AGORA's tables have it
_HAND_JOINTS = {side: SMPLX_OUTPUT.indices(n for n in SMPLX_OUTPUT.names
                                           if n.startswith(f"{side}_") and n.split("_")[1] in SMPLX_FINGERS)
                for side in ("L", "R")}  # fmt: skip
_FACE_JOINTS = SMPLX_OUTPUT.indices(FACE_STATIC_LANDMARKS)
_FIT_SIZES = {"global_orient": 3, "body_pose": 63, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3,
              "left_hand_pose": 45, "right_hand_pose": 45, "betas": NUM_BETAS, "expression": 10}  # fmt: skip


def pose_fit(body_models: BodyModels, fit: Mapping[str, np.ndarray], gender: str) -> np.ndarray:
    """(144, 3) float64 SMPL-X output joints of a fit at zero translation (fit-frame metres, before transl)."""
    inputs = {k: torch.as_tensor(fit[k][:n], dtype=torch.float32).reshape(1, n) for k, n in _FIT_SIZES.items()}
    with torch.no_grad():
        output = body_models.smplx(gender)(**inputs, transl=torch.zeros(1, 3))
    return output.joints[0].numpy().astype(np.float64)


def part_boxes(joints_img: np.ndarray) -> dict[str, list[float]]:
    """The annotation's bbox, lhand_bbox, rhand_bbox, face_bbox (xywh pixels) from (144, 2) projected joints."""
    ones = np.ones(len(joints_img))
    groups = {"bbox": _BODY_JOINTS, "lhand_bbox": _HAND_JOINTS["L"], "rhand_bbox": _HAND_JOINTS["R"],
              "face_bbox": _FACE_JOINTS}  # fmt: skip
    return {key: get_bbox(joints_img[list(idx)], ones[list(idx)], BOX_EXTEND).tolist() for key, idx in groups.items()}


SMPLX_CONVERSION = Conversion(variant="smplx", split_tables=SPLIT_TABLES, fit_column=SMPLX_FIT_COLUMN,
                              snippet=EXTRACT_TABLES_SNIPPET, read_fit=read_fit, pose_fit=pose_fit,
                              boxes=part_boxes)  # fmt: skip


def convert_agora(
    dataset_path: str | Path,
    human_model_path: str | Path,
    out: str | Path | None = None,
    splits: Iterable[str] = ("train", "validation"),
) -> list[Path]:
    """Convert the given splits' SMPL-X fits (see the module docstring); returns the annotation files written."""
    return conversion.convert_agora(SMPLX_CONVERSION, dataset_path, human_model_path, out, splits)


def main(argv: list[str] | None = None) -> int:
    return conversion.main(SMPLX_CONVERSION, argv, __doc__.split("\n\n")[0], "agora2coco_smplx")


if __name__ == "__main__":
    raise SystemExit(main())
