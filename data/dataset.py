"""The shared per-sample pipeline (`BaseDataset`) and Hand4Whole's dataset mixing (`MultipleDatasets`).

A dataset module parses its own files into `Record`s (data/record.py). `BaseDataset` does everything generic after
that: image reading (and skipping bad ones), the crop with its augmentation, per-sample seeding. The targets are the
model family's: the builder `data.targets.make_targets(cfg, ...)` picks for `model.arch` (Hand4Whole's contract is
documented in data/targets/hand4whole.py, the Pose2Pose part models' in data/targets/pose2pose.py). So one dataset
serves several families, each with the crop it asks for (`BaseDataset.CROPS`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from common.body_models import get_body_models
from common.paths import resolve_repo_path
from common.utils.augmentation import NO_AUGMENTATION, AugParams, crop_affine, crop_image, sample_augmentation
from common.utils.image_io import ImageReadError, read_image
from common.utils.metrics import report as report_metrics
from data.record import AnnotationError, MissingAnnotationError, Record
from data.targets import TargetBuilder, make_targets
from data.targets.hand4whole import EvalMetaInfo, EvalTargets, Inputs, MetaInfo, Targets, sample_shapes

logger = logging.getLogger(__name__)

__all__ = ["AnnotationError", "BaseDataset", "EvalMetaInfo", "EvalTargets", "Inputs", "MetaInfo",
           "MissingAnnotationError", "MultipleDatasets", "Record", "Targets", "sample_shapes",
           "worker_init_fn"]  # fmt: skip


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
    labels stored per sample, `load_labels`); image reading, the crop and its augmentation happen here, and the
    family's target builder (`self.targets`, from `model.arch`) makes the targets, mapping joints by name.
    Augmentation is drawn from a generator seeded with (cfg.train.seed, epoch, sample key), so a sample is
    reproducible; call `set_epoch` every epoch.

    Args:
        split: one of ``SPLITS``; 'train' augments, any other split does not and adds the eval keys.
        cfg: the whole config (main.config.Config).
        targets: the target builder; None for the one of ``cfg.model.arch`` (`data.targets.make_targets`).
        evaluation: the split is tested, not trained on: no augmentation and the evaluation keys, whatever its name.
    """

    NAME: ClassVar[str] = ""  # the dataset's name in data.DATASETS, and its folder under data_dir
    # The default root is <data_dir>/<NAME>/<DEFAULT_SUBDIR>, where Hand4Whole's README puts each dataset: most in
    # a `data` folder, Human3.6M and MSCOCO directly in theirs (an empty DEFAULT_SUBDIR).
    DEFAULT_SUBDIR: ClassVar[str] = "data"
    DOWNLOAD_PAGE: ClassVar[str] = ""  # named in missing-file errors
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "test")
    TEST_SPLIT: ClassVar[str] = "test"  # the split data.build_testset evaluates on
    JOINT_NAMES: ClassVar[tuple[str, ...]] = ()  # names of the record's joints_*, mapped to JOINTS by name
    # The joint targets are the parametric GT's (posed SMPL-X or SMPL), for datasets whose only 3D label is the fit:
    # AGORA and the synthetic sets (whole-body and part targets), 3DPW (the body model's targets).
    JOINTS_FROM_PARAMS: ClassVar[bool] = False
    SMPLX_INVALID_ROTATIONS: ClassVar[tuple[str, ...]] = ()  # ORIG_JOINTS names the pseudo-GT gets wrong
    SMPLX_INVALID_JOINTS: ClassVar[tuple[str, ...]] = ()  # JOINTS names the pseudo-GT gets wrong
    # What this dataset's records can frame (data.record.CROPS): a family asks for one through its targets, and
    # `load_records` reads `self.crop` to make person, hand or face records.
    CROPS: ClassVar[tuple[str, ...]] = ("body",)
    # Names of this dataset's metric keys where they differ from common.utils.metrics.METRIC_LABELS.
    METRIC_LABELS: ClassVar[dict[str, str]] = {}

    def __init__(self, split: str, cfg: Any, targets: TargetBuilder | None = None, evaluation: bool = False) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"{self.NAME}: unknown split {split!r}; accepted: {', '.join(self.SPLITS)}")
        # A split is augmented and left without evaluation keys when it is trained on: the 'train' split, unless it
        # is evaluated (a held-out folder of a dataset with one split, e.g. FFHQ, tested with data.test_split=train).
        self.split, self.is_train, self.cfg = split, split == "train" and not evaluation, cfg
        single_thread_opencv()  # before any DataLoader forks workers from this process
        configured = cfg.data.dataset_roots.get(self.NAME)
        default_root = Path(cfg.data_dir) / self.NAME / self.DEFAULT_SUBDIR
        self.root = resolve_repo_path(configured) if configured else default_root
        self.body_models = get_body_models(cfg.human_model_path)
        self.targets = make_targets(cfg, self.body_models) if targets is None else targets
        self.space, self.crop = self.targets.space, self.targets.crop
        if self.crop not in self.CROPS:
            raise ValueError(f"{self.NAME} has no {self.crop} crops for model.arch={cfg.model.arch} (it makes "
                             f"{', '.join(self.CROPS)} crops); choose other datasets for this family")  # fmt: skip
        self.seed, self.epoch = cfg.train.seed, 0
        self.skip_bad_images = cfg.data.skip_bad_images
        self.skipped_missing: list[Path] = []  # dropped at start-up (skip_bad_images)
        self.skipped_unreadable = 0  # replaced at load time in this process (skip_bad_images)
        self.annotation_files: list[Path] = []  # what `annotation_file` handed out while loading, named in errors
        self._loading = True
        records = self._load_checked()
        self._loading = False
        if self.skip_bad_images:
            records = self._drop_missing_images(records)
        if not records:
            raise AnnotationError(self._no_samples_message())
        self.records = records
        logger.info("%s %s: %d samples from %s", self.NAME, split, len(self.records), self.root)

    def _load_checked(self) -> list[Record]:
        """`load_records`, with a malformed entry that no loader check caught reported as an AnnotationError.

        The loaders check the keys and types they read (data/annotation_io.py, data/fits.py); a KeyError,
        TypeError or IndexError escaping them still comes from a file's content, so it is reported in one line
        naming the files read, the original error kept as the cause.
        """
        try:
            return self.load_records()
        except (KeyError, TypeError, IndexError) as err:
            files = ", ".join(str(path) for path in self.annotation_files) or str(self.root)
            raise AnnotationError(f"{self.NAME} {self.split}: a malformed entry in {files} "
                                  f"({type(err).__name__}: {err})") from err  # fmt: skip

    def _no_samples_message(self) -> str:
        where = self.annotation_files[0] if self.annotation_files else self.root
        if self.skipped_missing:
            return (
                f"{self.NAME} {self.split}: no samples left: all {len(self.skipped_missing)} were dropped "
                f"because their image file is missing (data.skip_bad_images), e.g. {self.skipped_missing[0]}"
            )
        return (
            f"{where}: no {self.crop} samples for {self.NAME} split {self.split!r}: the annotation list is "
            "empty, or no entry is usable (a labelled person whose box lies in the image)"
        )

    # --- what a dataset module implements -------------------------------------------------------
    def load_records(self) -> list[Record]:
        """Parse the dataset's own annotation files into records (called once, in __init__)."""
        raise NotImplementedError

    def load_labels(self, record: Record) -> Record:
        """Complete a record with labels stored per sample (e.g. AGORA's parameter files); default: as is."""
        return record

    # --- helpers for dataset modules ----------------------------------------------------------------
    def annotation_file(self, relpath: str | os.PathLike[str]) -> Path:
        """``root / relpath``, which must exist; MissingAnnotationError names it and the download page.

        ``relpath`` is the loader's own name for the file, or a path that `data.annotation_io.path_in_root` checked
        (then already under the root). Files asked for while loading are remembered for the errors of malformed or
        empty annotations.
        """
        path = self.root / relpath
        if not path.is_file():
            raise MissingAnnotationError(path, self.NAME, self.DOWNLOAD_PAGE)
        if getattr(self, "_loading", False) and path not in self.annotation_files:  # not per-sample files (AGORA)
            self.annotation_files.append(path)
        return path

    # --- evaluation (a dataset module may override both) --------------------------------------------
    @property
    def eval_extras(self) -> tuple[tuple[str, str, str], ...]:
        """The ground truth the tester passes to `evaluate` beside the predictions: (where, key, name there)."""
        return self.targets.eval_extras

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """The family's default metrics (its target builder's `evaluate`, e.g. Hand4Whole's MPVPE family).

        Args:
            outs: per sample, the model's test-mode output without the batch dimension, merged with the sample's
                ground truth named by `eval_extras`.
            indices: the dataset index of each output (unused here; overrides use it to find records).

        Returns:
            Metric key -> per-sample values in mm.
        """
        return self.targets.evaluate(self, outs)

    def report(
        self, eval_result: Mapping[str, Sequence[float]], output_dir: str | os.PathLike[str]
    ) -> tuple[str, Path]:
        """The table of `evaluate`'s accumulated results, also written to <output_dir>/result/<NAME>/metrics.json."""
        return report_metrics(eval_result, self.NAME, output_dir, labels=self.METRIC_LABELS, split=self.split)

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
        """Crop and augment one record; the family's builder makes the targets (`data.targets`)."""
        box = self.targets.crop_box(self, record)  # the family decides what the crop frames
        img2crop = crop_affine(box, self.space.input_hw, aug, img_width=record.img_hw[1])
        inputs = {"img": torch.from_numpy(crop_image(image, img2crop, self.space.input_hw, aug))}
        extra_inputs, targets, meta = self.targets.build(self, record, img2crop, aug)
        return inputs | extra_inputs, targets, meta

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
