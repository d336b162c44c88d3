"""The shared pipeline: the contract, flips, in-plane rotation, augmentation ranges, mixing and the builders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import data
from common.body_models import get_body_models
from common.body_models.joint_sets import JOINT_IDX, JOINTS
from common.body_models.synthetic import MIRROR_IDS_FILE
from common.utils.augmentation import AugParams, process_bbox, sample_augmentation
from common.utils.image_io import ImageReadError
from common.utils.smplx_targets import CameraParams, SMPLXParams
from common.utils.targets import TargetSpace, in_plane_rotation, mirror_sample_targets, relative_joint_cam
from data import build_dataset, build_trainset
from data.dataset import (
    BaseDataset,
    EvalMetaInfo,
    EvalTargets,
    Inputs,
    MetaInfo,
    MultipleDatasets,
    Targets,
    sample_shapes,
)
from data.record import Record
from main.config import load_config

IMAGE_HW = (240, 320)
GT_JOINTS = ("Pelvis", "L_Wrist", "R_Wrist", "L_Ankle", "Nose", "L_Thumb_4")  # a dataset's own joint set


class ToyDataset(BaseDataset):
    """Two people with SMPL-X parameters, hand/face boxes and dataset GT joints, on one written image."""

    NAME = "Toy"
    JOINT_NAMES = GT_JOINTS

    def load_records(self) -> list[Record]:
        path = self.root / "image.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            noise = np.random.default_rng(0).integers(0, 255, size=(*IMAGE_HW, 3), dtype=np.uint8)
            cv2.imwrite(str(path), noise)
        cam = CameraParams(focal=np.array([300.0, 310.0]), princpt=np.array([150.0, 125.0]))
        records = []
        for k, x in enumerate((-0.4, 0.5)):
            rng = np.random.default_rng(k)
            params = SMPLXParams(
                root_pose=np.array([np.pi, 0.0, 0.0]) + rng.normal(scale=0.2, size=3),
                body_pose=rng.normal(scale=0.3, size=63),
                shape=rng.normal(size=10),
                trans=np.array([x, 0.1, 4.0]),
                lhand_pose=rng.normal(scale=0.3, size=45),
                rhand_pose=rng.normal(scale=0.3, size=45),
                jaw_pose=np.array([0.2, 0.0, 0.0]),
                expr=rng.normal(size=10),
            )
            joints_xy = rng.uniform(100, 200, size=(len(GT_JOINTS), 2))
            joints_cam = np.concatenate([rng.normal(scale=0.3, size=(len(GT_JOINTS), 2)), np.full((6, 1), 4.0)], 1)
            boxes = {
                "lhand": np.array([120.0, 110.0, 140.0, 130.0]),
                "rhand": np.array([170.0, 100.0, 185.0, 125.0]),
                "face": None if k else np.array([145.0, 60.0, 165.0, 85.0]),
            }
            records.append(
                Record(
                    img_path=path,
                    img_hw=IMAGE_HW,
                    bbox_xywh_img=process_bbox([90, 40, 120, 170], 320, 240),
                    cam=cam,
                    smplx=params,
                    joints_xy_img=joints_xy,
                    joints_cam=joints_cam,
                    joints_valid=np.array([1, 1, 1, 0, 1, 1.0]),
                    part_boxes_xyxy_img=boxes,
                    is_3D=True,
                )
            )
        return records


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> ToyDataset:
    root = tmp_path_factory.mktemp("toy")
    cfg = load_config(None, [f"human_model_path={synthetic_body_model_dir}", f"data.dataset_roots={{Toy: {root}}}"])
    return ToyDataset("train", cfg)


def _smplx_mesh(toy: ToyDataset, targets: dict) -> np.ndarray:
    """(V, 3) mesh of a sample's SMPL-X parameter targets (neutral layer, no translation), straight from smplx."""
    pose = torch.from_numpy(targets["smplx_pose"]).reshape(-1, 3)  # (53, 3)
    with torch.no_grad():
        out = get_body_models(toy.cfg.human_model_path).smplx("neutral")(
            global_orient=pose[None, 0],
            body_pose=pose[None, 1:22].reshape(1, -1),
            left_hand_pose=pose[None, 22:37].reshape(1, -1),
            right_hand_pose=pose[None, 37:52].reshape(1, -1),
            jaw_pose=pose[None, 52],
            leye_pose=torch.zeros(1, 3),
            reye_pose=torch.zeros(1, 3),
            betas=torch.from_numpy(targets["smplx_shape"])[None],
            expression=torch.from_numpy(targets["smplx_expr"])[None],
            transl=torch.zeros(1, 3),
        )
    return out.vertices[0].numpy().astype(np.float64), out.joints[0].numpy().astype(np.float64)[JOINT_IDX]


def test_contract_keys_equal_the_typed_dicts(toy: ToyDataset) -> None:
    def keys(*dicts: type) -> set[str]:
        return set().union(*(d.__required_keys__ | d.__optional_keys__ for d in dicts))

    num_vertices = toy.body_models.vertex_count
    assert keys(Inputs, Targets, MetaInfo) == set(sample_shapes(toy.space, num_vertices, "train"))
    assert keys(Inputs, EvalTargets, EvalMetaInfo) == set(sample_shapes(toy.space, num_vertices, "test"))
    inputs, targets, meta = toy[0]
    assert set(inputs) == keys(Inputs) and set(targets) == keys(Targets) and set(meta) == keys(MetaInfo)


def test_dataset_joints_are_mapped_by_name(toy: ToyDataset) -> None:
    _, targets, meta = toy.get_sample(0, aug=AugParams())
    valid = meta["joint_valid"][:, 0]
    assert valid.sum() == 5 and valid[JOINTS.index("L_Ankle")] == 0 and valid[JOINTS.index("L_Thumb_4")] == 1
    # joint_cam: the body relative to the pelvis, a finger relative to its wrist
    cam = toy.records[0].joints_cam
    np.testing.assert_allclose(targets["joint_cam"][JOINTS.index("Pelvis")], 0.0)
    np.testing.assert_allclose(targets["joint_cam"][JOINTS.index("L_Wrist")], cam[1] - cam[0], atol=1e-6)
    np.testing.assert_allclose(targets["joint_cam"][JOINTS.index("L_Thumb_4")], cam[5] - cam[1], atol=1e-6)


@pytest.mark.parametrize("index", [0, 1])
def test_flip_is_the_mirror_and_flipping_twice_is_the_identity(toy: ToyDataset, index: int) -> None:
    plain = toy.get_sample(index, aug=AugParams(scale=1.1))
    flipped = toy.get_sample(index, aug=AugParams(scale=1.1, flip=True))
    mirrored = mirror_sample_targets(plain[1], plain[2], toy.space)
    for ours, theirs in ((flipped[1], mirrored[0]), (flipped[2], mirrored[1])):
        for key in ours:
            np.testing.assert_allclose(ours[key], theirs[key], atol=1e-4, err_msg=key)
    twice = mirror_sample_targets(*mirror_sample_targets(flipped[1], flipped[2], toy.space), toy.space)
    for ours, theirs in ((twice[0], flipped[1]), (twice[1], flipped[2])):
        for key in ours:
            np.testing.assert_allclose(ours[key], theirs[key], atol=1e-5, err_msg=key)
    assert flipped[2]["lhand_bbox_valid"] == 1 and flipped[2]["face_bbox_valid"] == float(index == 0)


def test_flipped_parameters_give_the_mirrored_mesh(toy: ToyDataset) -> None:
    mirror_ids = np.load(Path(toy.cfg.human_model_path) / "smplx" / MIRROR_IDS_FILE)
    plain, _ = _smplx_mesh(toy, toy.get_sample(0, aug=AugParams())[1])
    flipped, _ = _smplx_mesh(toy, toy.get_sample(0, aug=AugParams(flip=True))[1])
    np.testing.assert_allclose(flipped, plain[mirror_ids] * [-1.0, 1.0, 1.0], atol=1e-4)


def test_in_plane_rotation_turns_the_root_pose_and_joint_cam_together(toy: ToyDataset) -> None:
    rot = 40.0
    _, plain, _ = toy.get_sample(1, aug=AugParams())
    _, turned, meta = toy.get_sample(1, aug=AugParams(rot=rot, flip=True))
    _, flip_only, _ = toy.get_sample(1, aug=AugParams(flip=True))
    np.testing.assert_allclose(
        turned["smplx_joint_cam"], flip_only["smplx_joint_cam"] @ in_plane_rotation(rot).T.astype(np.float32), atol=1e-5
    )
    # the layer posed with the sample's root pose gives its joint_cam (smplx picks the face contour landmarks by
    # the head's global rotation, so those move by a fraction of a millimetre: hence 0.5 mm)
    _, joints = _smplx_mesh(toy, turned)
    np.testing.assert_allclose(relative_joint_cam(joints), turned["smplx_joint_cam"], atol=5e-4)
    assert not np.allclose(turned["smplx_pose"][:3], plain["smplx_pose"][:3])


def test_augmentation_ranges_by_sampling() -> None:
    draws = [sample_augmentation(np.random.default_rng([7, k])) for k in range(4000)]
    scale = np.array([a.scale for a in draws])
    rot = np.array([a.rot for a in draws])
    color = np.array([a.color for a in draws])
    flip = np.array([a.flip for a in draws])
    assert (
        scale.min() >= 0.75 and scale.max() <= 1.25 and np.isclose(scale.min(), 0.75) and np.isclose(scale.max(), 1.25)
    )
    assert abs(np.mean(np.isclose(np.abs(scale - 1), 0.25)) - 0.317) < 0.03, "N(0, 1) clipped at +-1"
    assert np.abs(rot).max() <= 60 and np.isclose(np.abs(rot).max(), 60) and abs(np.mean(rot != 0) - 0.6) < 0.03
    assert color.min() >= 0.8 and color.max() <= 1.2 and abs(color.mean() - 1.0) < 0.01
    assert abs(flip.mean() - 0.5) < 0.03


def test_augmentation_is_reproducible_per_sample_and_epoch(toy: ToyDataset) -> None:
    first = [toy.augmentation(k) for k in range(8)]
    assert first == [toy.augmentation(k) for k in range(8)] and len(set(first)) == 8
    toy.set_epoch(1)
    try:
        assert [toy.augmentation(k) for k in range(8)] != first
    finally:
        toy.set_epoch(0)
    assert toy.get_sample(0, key=3)[1]["smplx_pose"].tolist() == toy.get_sample(0, key=3)[1]["smplx_pose"].tolist()


def test_colour_factors_scale_the_crop(toy: ToyDataset) -> None:
    plain = toy.get_sample(0, aug=AugParams())[0]["img"]
    tinted = toy.get_sample(0, aug=AugParams(color=(0.8, 1.0, 1.2)))[0]["img"]
    np.testing.assert_allclose(tinted[0], plain[0] * 0.8, atol=1e-6)
    np.testing.assert_allclose(tinted[2], torch.clamp(plain[2] * 1.2, max=1.0), atol=1e-6)


def test_unreadable_image_is_an_error_or_skipped(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    overrides = [f"human_model_path={synthetic_body_model_dir}", f"data.dataset_roots={{Toy: {tmp_path}}}"]
    ds = ToyDataset("train", load_config(None, overrides))
    (tmp_path / "image.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="image.png"):
        ds[0]
    skipping = ToyDataset("train", load_config(None, [*overrides, "data.skip_bad_images=true"]))
    with pytest.raises(ImageReadError):  # every record shares the image: nothing left to substitute
        skipping[0]
    assert skipping.skipped_unreadable == 2


class Numbers(Dataset):
    def __init__(self, tag: str, length: int) -> None:
        self.items = [(tag, i) for i in range(length)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.items[index]


def test_multiple_datasets_concatenate_and_mix_in_equal_shares() -> None:
    short, long = Numbers("a", 3), Numbers("b", 7)
    concatenated = MultipleDatasets([short, long], make_same_len=False)
    assert [concatenated[i] for i in range(len(concatenated))] == short.items + long.items
    mixed = MultipleDatasets([short, long], make_same_len=True, seed=1)
    drawn = [mixed[i] for i in range(len(mixed))]
    assert len(mixed) == 14 and [d[0] for d in drawn] == ["a"] * 7 + ["b"] * 7
    assert drawn[:6] == short.items * 2 and drawn[7:] == long.items  # whole repeats, then one random draw
    mixed.set_epoch(0)
    assert [mixed[i] for i in range(len(mixed))] == drawn, "reproducible per epoch"
    with pytest.raises(IndexError):
        mixed[14]


def test_build_trainset_mixes_the_3d_and_2d_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    lengths = {"A": 4, "B": 2, "C": 3}
    monkeypatch.setattr(data, "DATASETS", data.DATASETS | {name: object for name in lengths})  # known to the config
    monkeypatch.setattr(data, "build_dataset", lambda name, split, cfg: Numbers(name, lengths[name]))
    cfg = load_config(None, ["data.trainset_3d=[A]", "data.trainset_2d=[B,C]"])
    mixed = build_trainset(cfg)
    tags = [mixed[i][0] for i in range(len(mixed))]
    assert len(mixed) == 10 and tags[:5].count("A") == 5 and set(tags[5:]) == {"B", "C"}
    only_3d = build_trainset(load_config(None, ["data.trainset_3d=[A,B]", "data.trainset_2d=[]"]))
    assert [only_3d[i][0] for i in range(len(only_3d))] == ["A"] * 4 + ["B"] * 2
    with pytest.raises(ValueError, match="both empty"):
        build_trainset(load_config(None, ["data.trainset_3d=[]", "data.trainset_2d=[]"]))


def test_unknown_dataset_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as raised:
        build_dataset("H36M", "train", load_config())
    assert "'H36M'" in str(raised.value) and all(name in str(raised.value) for name in data.DATASETS)


def test_base_evaluate_scores_only_samples_with_a_gt_mesh(toy: ToyDataset) -> None:
    mesh = _smplx_mesh(toy, toy.get_sample(0, aug=AugParams())[1])[0].astype(np.float32)
    outs = [
        {"smplx_mesh_cam": mesh + 0.01, "smplx_mesh_cam_target": mesh, "smplx_mesh_valid": np.float32(valid)}
        for valid in (1, 0)
    ]
    result = toy.evaluate(outs, [0, 1])
    assert all(len(v) == 1 for v in result.values()) and result["pa_mpvpe_all"][0] == pytest.approx(0.0, abs=1e-3)
    assert TargetSpace.from_model_config(toy.cfg.model) == toy.space


_FORK_AFTER_PARALLEL_CV2 = """
import multiprocessing, sys
import cv2, numpy as np
from data.dataset import single_thread_opencv, worker_init_fn
cv2.setNumThreads(4)
image = np.random.rand(1500, 1500, 3).astype(np.float32)
warp = np.array([[1.0, 0.1, 3.0], [0.1, 1.0, 2.0]], np.float32)
for _ in range(3):  # the parent's pool threads now exist
    cv2.warpAffine(image, warp, (1500, 1500))
if sys.argv[1] == "fixed":
    single_thread_opencv()  # what BaseDataset.__init__ does
def worker(queue):
    worker_init_fn(0)
    cv2.warpAffine(image, warp, (1500, 1500))
    queue.put("done")
context = multiprocessing.get_context("fork")
queue = context.Queue()
child = context.Process(target=worker, args=(queue,))
child.start()
child.join(float(sys.argv[2]))
hung = child.is_alive()
if hung:
    child.kill()
print("hung" if hung else queue.get())
"""


def test_forked_loader_workers_do_not_hang_on_the_parents_opencv_pool() -> None:
    # Regression: DataLoader workers forked after the main process ran parallel cv2 code waited forever in
    # cv2.setNumThreads (the test suite itself hung in a loader test). With the fix the child finishes.
    import subprocess
    import sys

    from common.paths import REPO_ROOT

    def run(mode: str, seconds: float) -> str:
        result = subprocess.run([sys.executable, "-c", _FORK_AFTER_PARALLEL_CV2, mode, str(seconds)], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
        return result.stdout.strip()

    assert run("fixed", 60) == "done"  # ("unfixed" hangs with opencv-python-headless 5.0, as found by hand)
