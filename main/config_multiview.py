"""Config section `multiview`: multi-view data (Human3.6M multi-view labels and CMU Panoptic readers).

Each field: a comment that says what it is, its unit and the seed's value; `__post_init__` checks every field
with main/config_checks.py's helpers so that a wrong value fails naming its dotted key (`multiview.<field>`).
"""

import re
from dataclasses import dataclass, field

from main.config_checks import _check_int, _int_tuple, _is_number, _require

__all__ = ["MultiViewDataConfig"]


# yaml reads an unquoted CMU camera name 00_22 as the integer 22, which arrives here as '22': no camera of either
# dataset has a name of 1-4 digits (Human3.6M's are 8-digit serial numbers), so such a name is refused with a hint.
_CMU_CAMERA = re.compile(r"\d\d_\d\d")
_MANGLED = re.compile(r"\d{1,4}")
_QUOTE_HINT = "CMU names 'PP_NN' quoted, e.g. ['00_22'] (yaml reads 00_22 unquoted as the number 22)"


def _check_names(key: str, value: object, pattern: re.Pattern[str] | None = None) -> list[str]:
    names = list(value) if isinstance(value, list | tuple) else None
    ok = names is not None and all(isinstance(v, str) and v != "" for v in names) and len(set(names)) == len(names)
    _require(ok, key, "a list of distinct non-empty names", value)
    assert names is not None  # for the type checker: _require raised otherwise
    bad = [n for n in names if (pattern is not None and not pattern.fullmatch(n)) or _MANGLED.fullmatch(n)]
    _require(not bad, key, f"camera names ({_QUOTE_HINT})", value)
    return names


@dataclass
class MultiViewDataConfig:
    """Multi-view data (the triangulation family's Human3.6M multi-view and CMU Panoptic readers)."""

    # Human3.6M multi-view: the labels file (upstream's generate-labels-npy-multiview.py output), relative to the
    # dataset root (data.dataset_roots['Human36MMultiView'] or <data_dir>/Human36MMultiView/data).
    labels_path: str = "extra/human36m-multiview-labels-GTbboxes.npy"
    # Human3.6M: read imageSequence-undistorted/ (undistorted offline, projections without distortion; the seed's
    # configs: true) instead of imageSequence/. CMU Panoptic: undistort each crop while cutting it.
    undistort_images: bool = True
    # Keep every n-th frame of the table in the test split (the seed: 1 in its configs, 13 for quick evaluation).
    retain_every_n_frames_in_test: int = 1
    # Human3.6M: keep S9's damaged actions Greeting-2, SittingDown-2, Waiting-1 (the seed's option).
    with_damaged_actions: bool = True
    image_shape: tuple[int, int] = (384, 384)  # (H, W) pixels of each view's crop (the seed: 384 x 384)
    scale_bbox: float = 1.0  # the squared person box is scaled by this before cropping (the seed: 1.0)
    # Training only: a random subset of between min_views and max_views of the available views per sample (the
    # seed's randomize_n_views); max_views 0 keeps every view.
    min_views: int = 1
    max_views: int = 0
    # Camera names left out of every sample: Human3.6M '54138969'..., CMU Panoptic 'PP_NN' (the seed's
    # ignore_cameras; the fork leaves out the faulty HD cameras 00_22, 00_23, 00_25, 00_26, 00_29 for CMU).
    ignore_cameras: list[str] = field(default_factory=list)
    # CMU Panoptic: the sequence folders of each split (e.g. 171204_pose1) and the HD cameras read ('PP_NN';
    # empty: every HD camera of each sequence's calibration file).
    cmu_train_sequences: list[str] = field(default_factory=list)
    cmu_test_sequences: list[str] = field(default_factory=list)
    cmu_cameras: list[str] = field(default_factory=list)
    # An algebraic run's results.pkl (output/result/<NAME>/results.pkl) whose pelvis places the volumetric cuboid,
    # for the train and test split; '' uses the GT pelvis (the seed's pred_results_path / use_gt_pelvis).
    pelvis_results_train: str = ""
    pelvis_results_test: str = ""

    def __post_init__(self) -> None:
        for name in ("labels_path", "pelvis_results_train", "pelvis_results_test"):
            value = getattr(self, name)
            _require(isinstance(value, str), f"multiview.{name}", "a path or ''", value)
        _require(self.labels_path != "", "multiview.labels_path", "a path relative to the dataset root", "")
        for name in ("undistort_images", "with_damaged_actions"):
            value = getattr(self, name)
            _require(isinstance(value, bool), f"multiview.{name}", "true or false", value)
        _check_int("multiview.retain_every_n_frames_in_test", self.retain_every_n_frames_in_test, 1)
        self.image_shape = _int_tuple("multiview.image_shape", self.image_shape, 2)  # type: ignore[assignment]
        scale = self.scale_bbox
        _require(_is_number(scale) and scale > 0, "multiview.scale_bbox", "a positive number", scale)
        self.scale_bbox = float(scale)
        _check_int("multiview.min_views", self.min_views, 1)
        _check_int("multiview.max_views", self.max_views, 0)
        if self.max_views:
            _require(self.max_views >= self.min_views, "multiview.max_views",
                     f"0 (every view) or >= multiview.min_views ({self.min_views})", self.max_views)  # fmt: skip
        self.ignore_cameras = _check_names("multiview.ignore_cameras", self.ignore_cameras)
        self.cmu_cameras = _check_names("multiview.cmu_cameras", self.cmu_cameras, _CMU_CAMERA)
        for name in ("cmu_train_sequences", "cmu_test_sequences"):
            value = getattr(self, name)
            ok = isinstance(value, list | tuple) and all(isinstance(v, str) and v != "" for v in value)
            _require(ok and len(set(value)) == len(value), f"multiview.{name}", "a list of distinct sequence names",
                     value)  # fmt: skip
            setattr(self, name, list(value))
