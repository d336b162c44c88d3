"""MSRA hand gestures (Sun et al., CVPR 2015) for the V2V family: depth maps, V2V-PoseNet's reference points, 21
hand joints; evaluated by data/hand_joints.py's `HandJointsDataset`.

Layout under the root (`data.dataset_roots={MSRA: DIR}`, default <data_dir>/MSRA/data): the release's P0..P8
folders and V2V-PoseNet's refined centre files in ``center/`` (data/MSRA/msra_files.py). The protocol is
leave-one-subject-out: `data.msra_test_subject` = k (0..8) holds subject k out; the 'train' split is the other eight
subjects' frames and reads ``center_train_{k}_refined.txt``, the 'test' split is subject k's and reads
``center_test_{k}_refined.txt``. Frames whose centre is 'invalid' are skipped, as upstream.

The sample (a `torch.utils.data.Dataset` item; the model voxelises and augments on its device, main/v2v_model.py):
    inputs['depth_mm']      (240, 320) float32 depth, mm; 0 = no depth
    inputs['ref_point_mm']  (3,) float32 the cube centre: the frame's refined centre, camera mm
    inputs['cube_mm']       (3,) float32 the cube's sides, mm (`v2v.cube_mm`, V2V's 200 mm)
    inputs['intrinsics']    (4,) float32 fx, fy, cx, cy pixels (MSRA's: 241.42, 241.42, 160, 120)
    targets['joints_mm']    (21, 3) float32 camera mm (x right, y down, z forward), `MSRA_JOINTS` order
    meta_info['frame_index'] () int64 the frame's line in its fold's centre file (upstream frame order)
    meta_info['aug_seed']   () int64 the sample's augmentation seed, from (train.seed, epoch, index)

Evaluation (`HandJointsDataset`, data/hand_joints.py): per frame the mean and the largest Euclidean joint error
(mm); `report` prints their means and each joint's mean error, writes result/<NAME>/metrics.json and the upstream
result files: one line per frame of J x 3 numbers, `test_res.txt` for the test split and `fit_res.txt` for the
training split (the V2V port's "fit result on training data"; `data.test_split=train`), in V2V's world axes (x right,
y up, z forward, mm: the frame of the port's files and of tool/gen_gt.py's ground truth, which tool/show_acc.py
compares), and `test_res_uvd.txt` / `fit_res_uvd.txt` with the joints as pixel (u, v) and depth (mm): the input of the
hand-pose evaluation tool that the paper's numbers come from (awesome-hand-pose-estimation).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from data.hand_joints import HandJointsDataset
from data.MSRA.msra_files import (
    DOWNLOAD_PAGE,
    MSRA_INTRINSICS,
    MSRA_JOINTS,
    camera_to_msra_world,
    load_fold,
    read_depth_bin,
)
from data.record import AnnotationError

__all__ = ["MSRA", "MSRA_SKELETON"]

logger = logging.getLogger(__name__)

MSRA_SKELETON: tuple[tuple[int, int], ...] = tuple(
    (MSRA_JOINTS.names.index(parent), MSRA_JOINTS.names.index(f"{finger}_{k}"))
    for finger in ("Index", "Middle", "Ring", "Pinky", "Thumb")
    for k, parent in enumerate(("Wrist", *(f"{finger}_{k}" for k in (1, 2, 3))), start=1)
)
"""Bones of MSRA's hand: the wrist to each finger's MCP, then MCP -> PIP -> DIP -> TIP, as joint index pairs."""


class MSRA(HandJointsDataset):
    """MSRA hand gestures, one fold of the leave-one-subject-out protocol (module docstring)."""

    NAME = "MSRA"
    DOWNLOAD_PAGE = DOWNLOAD_PAGE
    SPLITS = ("train", "test")
    TEST_SPLIT = "test"

    def __init__(self, split: str, cfg: Any, evaluation: bool = False) -> None:
        super().__init__(split, cfg, evaluation)
        self.test_subject = int(cfg.data.msra_test_subject)
        if int(cfg.v2v.num_joints) != len(MSRA_JOINTS) and not cfg.v2v.global_heatmap:
            raise AnnotationError(f"MSRA has {len(MSRA_JOINTS)} joints, v2v.num_joints is {cfg.v2v.num_joints}")
        self.joint_names = MSRA_JOINTS.names
        self.fold = load_fold(self.root, self.test_subject, split)
        self.lines = np.flatnonzero(self.fold.valid)  # the frames with a centre, as upstream
        if len(self.lines) == 0:
            raise AnnotationError(f"{self.root}: no frame of fold {self.test_subject} ({split}) has a valid centre")
        self.cube_mm = np.asarray(cfg.v2v.cube_mm, dtype=np.float32)
        self.intrinsics = MSRA_INTRINSICS.as_array()
        logger.info("MSRA %s (test subject P%d): %d frames, %d skipped for an invalid centre, from %s", split,
                    self.test_subject, len(self.lines), len(self.fold.frames) - len(self.lines), self.root)  # fmt: skip

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        line = int(self.lines[index])
        frame = self.fold.frames[line]
        depth_mm = read_depth_bin(frame.depth_path, MSRA_INTRINSICS.width, MSRA_INTRINSICS.height)
        inputs = {"depth_mm": depth_mm, "ref_point_mm": self.fold.centers_mm[line].astype(np.float32),
                  "cube_mm": self.cube_mm, "intrinsics": self.intrinsics}  # fmt: skip
        targets = {"joints_mm": self.fold.joints_mm[line].astype(np.float32)}
        meta_info = {"frame_index": np.int64(line), "aug_seed": self.aug_seed(index)}
        return inputs, targets, meta_info

    def result_rows(self, pred_mm: np.ndarray) -> dict[str, np.ndarray]:
        """The V2V port's layout (V2V's world axes, mm) and the evaluation tool's (pixel u, v and depth mm)."""
        name = self.RESULT_FILES[self.split]
        uvd = np.concatenate((MSRA_INTRINSICS.project(pred_mm), pred_mm[..., 2:]), axis=-1)  # (N, J, 3)
        return {name: camera_to_msra_world(pred_mm).reshape(len(pred_mm), -1),
                name.replace(".txt", "_uvd.txt"): uvd.reshape(len(pred_mm), -1)}  # fmt: skip

    def report_facts(self) -> dict[str, Any]:
        return {"test_subject": self.test_subject, "root": str(self.root)}
