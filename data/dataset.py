"""The sample contract, the shared per-sample pipeline (`BaseDataset`) and Hand4Whole's dataset mixing.

Sample contract
---------------
Every dataset returns ``(inputs, targets, meta_info)``, three dicts with Hand4Whole's names, documented
here once (`Inputs`, `Targets`, `MetaInfo`). Arrays are float32 numpy (``img`` a torch tensor); the
DataLoader's default collate stacks them into (B, ...) tensors. Units and spaces:

* heatmap units: the (D, H, W) = (8, 8, 6) body heatmap over the 512x384 crop; x in [0, 6), y in [0, 8)
  (x_hm = x_crop * 6 / 384, y_hm = y_crop * 8 / 512); z in [0, 8) is relative depth, z_hm = (z / (S / 2)
  + 1) / 2 * 8 with S = body_3d_size 2 m (body), hand_3d_size 0.3 m (hands), face_3d_size 0.3 m (face);
* camera metres: OpenCV axes, joint_cam relative to the pelvis (body), the wrist (each hand), the neck
  (face), turned with the in-plane augmentation;
* joints: Hand4Whole's 137 supervision joints (`common.body_models.joint_sets.JOINTS`); rotations: its
  53 rotation joints (`ORIG_JOINTS`) as axis-angle radians, 159 = 53 x 3.

A missing label is zeros with its mask 0 (never a missing key, never an ``if`` in the model). The test
split adds `EvalTargets`/`EvalMetaInfo`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypedDict

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from common.body_models import get_body_models
from common.body_models.joint_sets import JOINTS, remap_joints
from common.paths import resolve_repo_path
from common.utils.augmentation import (
    NO_AUGMENTATION,
    AugParams,
    compose_affine,
    crop_affine,
    crop_image,
    invert_affine,
    sample_augmentation,
)
from common.utils.image_io import ImageReadError, read_image
from common.utils.metrics import MeshEvalSets, mpvpe_metrics
from common.utils.metrics import report as report_metrics
from common.utils.smplx_targets import empty_smplx_targets, smplx_in_camera, smplx_targets
from common.utils.targets import TargetSpace, box_targets, relative_joint_cam, transform_joints
from data.record import MissingAnnotationError, Record

logger = logging.getLogger(__name__)

__all__ = ["BaseDataset", "EvalMetaInfo", "EvalTargets", "Inputs", "MetaInfo", "MissingAnnotationError",
           "MultipleDatasets", "Record", "Targets", "sample_shapes", "worker_init_fn"]  # fmt: skip


class Inputs(TypedDict):
    img: torch.Tensor  # (3, 512, 384) float32 RGB in [0, 1]: the augmented body crop


class Targets(TypedDict):
    joint_img: np.ndarray  # (137, 3) heatmap units: the dataset's GT joints (AGORA: the SMPL-X GT)
    joint_cam: np.ndarray  # (137, 3) relative camera metres, dataset GT; zeros for 2D datasets (is_3D 0)
    smplx_joint_img: np.ndarray  # (137, 3) heatmap units, joints of the SMPL-X (pseudo-)GT mesh
    smplx_joint_cam: np.ndarray  # (137, 3) relative camera metres, SMPL-X (pseudo-)GT
    smplx_pose: np.ndarray  # (159,) axis-angle radians: root (camera frame, crop turn folded in), 21 body,
    #                          15 left hand, 15 right hand, jaw; flipped with the image
    smplx_shape: np.ndarray  # (10,) betas (all zero when any |beta| > 3, as Hand4Whole)
    smplx_expr: np.ndarray  # (10,) expression coefficients
    lhand_bbox_center: np.ndarray  # (2,) heatmap units (x, y) of the subject's left-hand box
    lhand_bbox_size: np.ndarray  # (2,) heatmap units (w, h)
    rhand_bbox_center: np.ndarray  # (2,)
    rhand_bbox_size: np.ndarray  # (2,)
    face_bbox_center: np.ndarray  # (2,)
    face_bbox_size: np.ndarray  # (2,)


class MetaInfo(TypedDict):
    joint_valid: np.ndarray  # (137, 1) 1 where joint_img / joint_cam are labelled
    joint_trunc: np.ndarray  # (137, 1) joint_valid and inside the heatmap volume
    smplx_joint_valid: np.ndarray  # (137, 1)
    smplx_joint_trunc: np.ndarray  # (137, 1)
    smplx_pose_valid: np.ndarray  # (159,) per rotation joint, repeated x3
    smplx_shape_valid: np.ndarray  # () 0 or 1
    smplx_expr_valid: np.ndarray  # () 0 or 1 (jaw and expression annotated)
    is_3D: np.ndarray  # () 1 when joint_cam and the depth of joint_img are supervised
    lhand_bbox_valid: np.ndarray  # ()
    rhand_bbox_valid: np.ndarray  # ()
    face_bbox_valid: np.ndarray  # ()


class EvalTargets(Targets):
    smplx_mesh_cam: np.ndarray  # (V, 3) camera metres, un-augmented SMPL-X GT mesh; zeros when none (test split)


class EvalMetaInfo(MetaInfo):
    smplx_mesh_valid: np.ndarray  # () 1 when smplx_mesh_cam is a GT mesh
    bb2img_trans: np.ndarray  # (2, 3) crop pixels -> original-image pixels (`Record.orig2img_trans`)
    img2bb_trans: np.ndarray  # (2, 3) original-image pixels -> crop pixels


def sample_shapes(space: TargetSpace, num_vertices: int, split: str = "train") -> dict[str, tuple[int, ...]]:
    """Every key of the contract and its shape, for checking samples (a test keeps it equal to the TypedDicts)."""
    joints, hm = (len(JOINTS), 3), tuple(space.input_hw)
    shapes: dict[str, tuple[int, ...]] = {"img": (3, *hm), "smplx_pose": (159,), "smplx_shape": (10,),
                                          "smplx_expr": (10,), "smplx_pose_valid": (159,)}  # fmt: skip
    shapes |= {k: joints for k in ("joint_img", "joint_cam", "smplx_joint_img", "smplx_joint_cam")}
    shapes |= {k: (len(JOINTS), 1) for k in ("joint_valid", "joint_trunc", "smplx_joint_valid", "smplx_joint_trunc")}
    shapes |= {f"{p}_bbox_{s}": (2,) for p in ("lhand", "rhand", "face") for s in ("center", "size")}
    shapes |= {k: () for k in ("smplx_shape_valid", "smplx_expr_valid", "is_3D")}
    shapes |= {f"{p}_bbox_valid": () for p in ("lhand", "rhand", "face")}
    if split != "train":
        shapes |= {"smplx_mesh_cam": (num_vertices, 3), "smplx_mesh_valid": (), "bb2img_trans": (2, 3),
                   "img2bb_trans": (2, 3)}  # fmt: skip
    return shapes


def single_thread_opencv() -> None:
    """One OpenCV thread in this process: call it in a process before it forks DataLoader workers.

    OpenCV's thread pool is not fork-safe: a forked worker that touches it (cv2.setNumThreads, or any parallel
    cv2 call) waits forever on a pool whose threads only existed in the parent, which hung training and
    benchmarks after the main process had warped an image. With one thread in the parent there is no pool to
    inherit. Each worker is single-threaded anyway; the main process's own cv2 work is small.
    """
    cv2.setNumThreads(1)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker set-up: one OpenCV and one torch thread per worker, so workers do not oversubscribe."""
    single_thread_opencv()
    torch.set_num_threads(1)


class BaseDataset(Dataset):
    """The shared per-sample pipeline over a dataset module's `Record` list.

    A dataset module subclasses this, sets the class attributes and implements `load_records` (and, for
    labels stored per sample, `load_labels`); the crop, augmentation, SMPL-X pseudo-GT, joint remapping
    by name and target building all happen here. Augmentation is drawn from a generator seeded with
    (cfg.train.seed, epoch, sample key), so a sample is reproducible; call `set_epoch` every epoch.

    Args:
        split: one of ``SPLITS``; 'train' augments, any other split does not and adds the eval keys.
        cfg: the whole config (main.config.Config).
    """

    NAME: ClassVar[str] = ""  # the dataset's name in data.DATASETS, and its folder under data_dir
    # The default root is <data_dir>/<NAME>/<DEFAULT_SUBDIR>, where Hand4Whole's README puts each dataset: most in
    # a `data` folder, Human3.6M and MSCOCO directly in theirs (an empty DEFAULT_SUBDIR).
    DEFAULT_SUBDIR: ClassVar[str] = "data"
    DOWNLOAD_PAGE: ClassVar[str] = ""  # named in missing-file errors
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "test")
    TEST_SPLIT: ClassVar[str] = "test"  # the split data.build_testset evaluates on
    JOINT_NAMES: ClassVar[tuple[str, ...]] = ()  # names of the record's joints_*, mapped to JOINTS by name
    JOINTS_FROM_SMPLX: ClassVar[bool] = False  # joint_* targets are the SMPL-X GT (AGORA, synthetic)
    SMPLX_INVALID_ROTATIONS: ClassVar[tuple[str, ...]] = ()  # ORIG_JOINTS names the pseudo-GT gets wrong
    SMPLX_INVALID_JOINTS: ClassVar[tuple[str, ...]] = ()  # JOINTS names the pseudo-GT gets wrong

    def __init__(self, split: str, cfg: Any) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"{self.NAME}: unknown split {split!r}; accepted: {', '.join(self.SPLITS)}")
        self.split, self.is_train, self.cfg = split, split == "train", cfg
        single_thread_opencv()  # before any DataLoader forks workers from this process
        configured = cfg.data.dataset_roots.get(self.NAME)
        default_root = Path(cfg.data_dir) / self.NAME / self.DEFAULT_SUBDIR
        self.root = resolve_repo_path(configured) if configured else default_root
        self.space = TargetSpace.from_model_config(cfg.model)
        self.body_models = get_body_models(cfg.human_model_path)
        self.seed, self.epoch = cfg.train.seed, 0
        self.skip_bad_images = cfg.data.skip_bad_images
        self.skipped_missing: list[Path] = []  # dropped at start-up (skip_bad_images)
        self.skipped_unreadable = 0  # replaced at load time in this process (skip_bad_images)
        records = self.load_records()
        if self.skip_bad_images:
            records = self._drop_missing_images(records)
        self.records = records
        logger.info("%s %s: %d samples from %s", self.NAME, split, len(self.records), self.root)

    # --- what a dataset module implements -------------------------------------------------------
    def load_records(self) -> list[Record]:
        """Parse the dataset's own annotation files into records (called once, in __init__)."""
        raise NotImplementedError

    def load_labels(self, record: Record) -> Record:
        """Complete a record with labels stored per sample (e.g. AGORA's parameter files); default: as is."""
        return record

    # --- helpers for dataset modules ----------------------------------------------------------------
    def annotation_file(self, relpath: str | os.PathLike[str]) -> Path:
        """``root / relpath``, which must exist; MissingAnnotationError names it and the download page."""
        path = self.root / relpath
        if not path.is_file():
            raise MissingAnnotationError(path, self.NAME, self.DOWNLOAD_PAGE)
        return path

    # --- evaluation (a dataset module may override both) --------------------------------------------
    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """The MPVPE family (common.utils.metrics.mpvpe_metrics) of the samples that have a GT mesh.

        Args:
            outs: per sample, the model's test-mode output without the batch dimension merged with the
                sample's eval keys: 'smplx_mesh_cam' (V, 3) metres predicted, 'smplx_mesh_cam_target' (V, 3)
                metres GT and 'smplx_mesh_valid' () (a sample without it counts as having a GT mesh).
            indices: the dataset index of each output (unused here; overrides use it to find records).

        Returns:
            Metric key -> per-sample values in mm, for the samples with smplx_mesh_valid; empty lists when none.
        """
        keys = ("mpvpe_all", "mpvpe_hand", "mpvpe_face", "pa_mpvpe_all", "pa_mpvpe_hand", "pa_mpvpe_face")
        kept = [out for out in outs if float(np.asarray(out.get("smplx_mesh_valid", 1.0))) > 0]
        if not kept:
            return {key: [] for key in keys}
        pred = np.stack([np.asarray(out["smplx_mesh_cam"]) for out in kept])  # (B, V, 3)
        gt = np.stack([np.asarray(out["smplx_mesh_cam_target"]) for out in kept])  # (B, V, 3)
        metrics = mpvpe_metrics(pred, gt, MeshEvalSets.from_body_models(self.body_models))
        return {key: [float(v) for v in metrics[key]] for key in keys}

    def report(
        self, eval_result: Mapping[str, Sequence[float]], output_dir: str | os.PathLike[str]
    ) -> tuple[str, Path]:
        """The table of `evaluate`'s accumulated results, also written to <output_dir>/result/<NAME>/metrics.json."""
        return report_metrics(eval_result, self.NAME, output_dir, split=self.split)

    # --- the pipeline ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        return self.get_sample(idx)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch that seeds augmentation (with persistent workers, recreate the loader instead)."""
        self.epoch = int(epoch)

    def augmentation(self, key: int) -> AugParams:
        """The augmentation of the sample with this key in the current epoch (none outside 'train')."""
        if not self.is_train:
            return NO_AUGMENTATION
        return sample_augmentation(np.random.default_rng([self.seed, self.epoch, int(key)]))

    def get_sample(self, idx: int, key: int | None = None, aug: AugParams | None = None) -> tuple[dict, dict, dict]:
        """Sample ``idx`` with the augmentation of ``key`` (default ``idx``) or the given ``aug``."""
        aug = self.augmentation(idx if key is None else key) if aug is None else aug
        for attempt in range(len(self.records)):
            record = self.records[(idx + attempt) % len(self.records)]
            try:
                image = read_image(record.img_path, record.img_hw)
            except ImageReadError:
                if not self.skip_bad_images:
                    raise
                self.skipped_unreadable += 1
                logger.warning("%s: skipping unreadable image %s (%d in this process)", self.NAME, record.img_path,
                               self.skipped_unreadable)  # fmt: skip
                continue
            return self.build_sample(self.load_labels(record), image, aug)
        raise ImageReadError(self.records[idx].img_path, "unreadable")

    def build_sample(self, record: Record, image: np.ndarray, aug: AugParams) -> tuple[dict, dict, dict]:
        """Crop, augment and build every target of one record (`Inputs`, `Targets`, `MetaInfo`)."""
        space = self.space
        img2crop = crop_affine(record.bbox_xywh_img, space.input_hw, aug, img_width=record.img_hw[1])
        inputs = {"img": torch.from_numpy(crop_image(image, img2crop, space.input_hw, aug))}
        gt = None
        if record.smplx is not None:
            if record.cam is None:
                raise ValueError(f"{self.NAME}: a record with SMPL-X parameters needs a camera ({record.img_path})")
            gt = smplx_in_camera(record.smplx, record.cam, self.body_models)
            targets, meta = smplx_targets(gt, record.cam, img2crop, aug, space, self.SMPLX_INVALID_ROTATIONS,
                                          self.SMPLX_INVALID_JOINTS)  # fmt: skip
        else:
            targets, meta = empty_smplx_targets()
        targets |= self._joint_targets(record, img2crop, aug, targets, meta)
        meta["joint_valid"], meta["joint_trunc"] = targets.pop("joint_valid"), targets.pop("joint_trunc")
        boxes = box_targets(record.part_boxes_xyxy_img, img2crop, aug.flip, space)
        targets |= {k: v for k, v in boxes.items() if not k.endswith("_valid")}
        meta |= {k: v for k, v in boxes.items() if k.endswith("_valid")}
        meta["is_3D"] = np.asarray(float(record.is_3D), np.float32)
        if not self.is_train:
            mesh = gt.mesh_cam if gt is not None else np.zeros((self.body_models.vertex_count, 3), np.float32)
            targets["smplx_mesh_cam"] = mesh
            meta["smplx_mesh_valid"] = np.asarray(float(gt is not None), np.float32)
            orig2crop = img2crop if record.orig2img_trans is None else compose_affine(img2crop, record.orig2img_trans)
            meta["img2bb_trans"] = orig2crop.astype(np.float32)
            meta["bb2img_trans"] = invert_affine(orig2crop).astype(np.float32)
        return inputs, targets, meta

    def _joint_targets(
        self, record: Record, img2crop: np.ndarray, aug: AugParams, smplx_t: dict, smplx_m: dict
    ) -> dict:
        if record.joints_xy_img is not None:
            xy, valid = remap_joints(np.asarray(record.joints_xy_img, np.float64), self.JOINT_NAMES, JOINTS)
            valid = valid * remap_joints(np.asarray(record.joints_valid, np.float64).reshape(-1, 1), self.JOINT_NAMES,
                                         JOINTS)[0][:, 0]  # fmt: skip
            cam = np.zeros((len(JOINTS), 3))
            if record.joints_cam is not None:
                cam = relative_joint_cam(remap_joints(np.asarray(record.joints_cam, np.float64), self.JOINT_NAMES,
                                                      JOINTS)[0])  # fmt: skip
            joints = transform_joints(xy, cam, valid, img2crop, aug.rot, aug.flip, self.space)
            return {"joint_img": joints.joint_img, "joint_cam": joints.joint_cam, "joint_valid": joints.joint_valid,
                    "joint_trunc": joints.joint_trunc}  # fmt: skip
        if self.JOINTS_FROM_SMPLX:
            return {
                "joint_img": smplx_t["smplx_joint_img"].copy(),
                "joint_cam": smplx_t["smplx_joint_cam"].copy(),
                "joint_valid": smplx_m["smplx_joint_valid"].copy(),
                "joint_trunc": smplx_m["smplx_joint_trunc"].copy(),
            }
        zeros3, zeros1 = np.zeros((len(JOINTS), 3), np.float32), np.zeros((len(JOINTS), 1), np.float32)
        return {"joint_img": zeros3, "joint_cam": zeros3.copy(), "joint_valid": zeros1, "joint_trunc": zeros1.copy()}

    def _drop_missing_images(self, records: list[Record]) -> list[Record]:
        kept = [r for r in records if os.path.isfile(r.img_path)]
        # extend: a loader may already have dropped samples whose other per-sample files are missing
        self.skipped_missing += [r.img_path for r in records if not os.path.isfile(r.img_path)]
        if self.skipped_missing:
            logger.warning("%s %s: dropped %d samples whose image file is missing, e.g. %s", self.NAME, self.split,
                           len(self.skipped_missing), self.skipped_missing[0])  # fmt: skip
        return kept


class MultipleDatasets(Dataset):
    """Datasets concatenated, or mixed in equal shares (Hand4Whole's ``MultipleDatasets``).

    With ``make_same_len`` every dataset counts as long as the longest, so one epoch draws each about
    equally often: Hand4Whole combines its 3D group and its 2D group (each concatenated) this way, ~50/50.
    A shorter dataset is repeated whole as often as fits; the rest of its share is drawn at random, from a
    generator seeded with (seed, epoch, index) so that it is reproducible.

    Args:
        dbs: the datasets (BaseDataset, MultipleDatasets or any map-style dataset), none empty.
        make_same_len: mix in equal shares (True) or concatenate (False).
        seed: seeds the random part of the equal-share mixing.
    """

    def __init__(self, dbs: Sequence[Dataset], make_same_len: bool = True, seed: int = 0) -> None:
        if not dbs or any(len(db) == 0 for db in dbs):  # type: ignore[arg-type]
            raise ValueError(f"MultipleDatasets needs non-empty datasets, got lengths {[len(db) for db in dbs]}")  # type: ignore[arg-type]
        self.dbs, self.make_same_len, self.seed, self.epoch = list(dbs), make_same_len, seed, 0
        self.lengths = np.array([len(db) for db in dbs])  # type: ignore[arg-type]
        self.cumsum = np.cumsum(self.lengths)

    def __len__(self) -> int:
        return int(self.lengths.max() * len(self.dbs) if self.make_same_len else self.cumsum[-1])

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and in every dataset (augmentation and the random part of the mixing)."""
        self.epoch = int(epoch)
        for db in self.dbs:
            if hasattr(db, "set_epoch"):
                db.set_epoch(epoch)

    def locate(self, index: int) -> tuple[int, int]:
        """(dataset position, index within it) of a global index."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        if not self.make_same_len:
            db_idx = int(np.searchsorted(self.cumsum, index, side="right"))
            return db_idx, int(index - (self.cumsum[db_idx - 1] if db_idx else 0))
        longest = int(self.lengths.max())
        db_idx, offset = divmod(index, longest)
        length = int(self.lengths[db_idx])
        if offset < length * (longest // length):  # whole repeats of the shorter dataset
            return db_idx, offset % length
        return db_idx, int(np.random.default_rng([self.seed, self.epoch, index]).integers(length))

    def get_sample(self, index: int, key: int | None = None, aug: AugParams | None = None) -> tuple[dict, dict, dict]:
        """The sample at a global index; ``key`` (default the index) seeds its augmentation."""
        db_idx, data_idx = self.locate(index)
        db = self.dbs[db_idx]
        if hasattr(db, "get_sample"):
            return db.get_sample(data_idx, key=index if key is None else key, aug=aug)
        return db[data_idx]

    def __getitem__(self, index: int) -> tuple[dict, dict, dict]:
        return self.get_sample(index)
