"""MSRA hand gesture files (data/MSRA/msra_files.py), their synthetic writer (data/Synthetic/msra_writer.py) and
tool/gen_gt.py.

The reader is checked against fixtures written here with struct/numpy from the format's description (notes §1.9,
§1.3): joint.txt stores (x, y up, z negative), V2V maps a world point to the pixel u = cx + fx x / z,
v = cy - fy y / z with z the positive depth, and a _depth.bin holds 6 little-endian uint32 then the box's float32.
The writer is read back through the reader and checked against its own geometry (joints on the rendered hand).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from data.MSRA.msra_files import (
    GESTURES,
    MSRA_INTRINSICS,
    MSRA_JOINTS,
    list_fold_frames,
    list_frames,
    load_fold,
    read_depth_bin,
    read_depth_box,
    read_joint_txt,
    read_refined_centers,
)
from data.record import AnnotationError, MissingAnnotationError
from tool.gen_gt import main as gen_gt_main
from tool.gen_gt import write_gt_files

FX = FY = 241.42
CX, CY = 160.0, 120.0


# --- fixtures written from the specification ------------------------------------------------------------------------
def write_joint_file(path: Path, joints_file: np.ndarray) -> None:
    """(N, 21, 3) values exactly as joint.txt stores them (MSRA's signs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [" ".join(repr(float(v)) for v in frame.reshape(-1)) for frame in joints_file]
    path.write_text("\n".join([str(len(joints_file)), *rows]) + "\n")


def write_bin(path: Path, header: tuple[int, ...], box: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<6I", *header) + np.asarray(box, dtype="<f4").tobytes())


def upstream_pixels(joints_file: np.ndarray) -> np.ndarray:
    """V2V's world2pixel on joint.txt values: z negated to the depth, then u = cx + fx x/z, v = cy - fy y/z."""
    depth = -joints_file[..., 2]
    return np.stack([CX + FX * joints_file[..., 0] / depth, CY - FY * joints_file[..., 1] / depth], axis=-1)


def random_hand_file(rng: np.random.Generator) -> np.ndarray:
    """(21, 3) joint.txt values of a hand-sized point cloud 250-450 mm in front of the camera (z negative)."""
    centre = np.array([rng.uniform(-30, 30), rng.uniform(-30, 30), -rng.uniform(250, 450)])
    return centre + rng.uniform(-70, 70, (21, 3)) * (1.0, 1.0, 0.3)


def write_blob_frame(path: Path, joints_file: np.ndarray) -> np.ndarray:
    """A depth file whose 'hand' is one pixel at each joint's upstream pixel, with the joint's depth.

    Returns:
        (21, 2) int pixel (u, v) of each joint.
    """
    pixels = np.rint(upstream_pixels(joints_file)).astype(int)
    left, top = pixels.min(axis=0) - 3
    right, bottom = pixels.max(axis=0) + 4  # exclusive, with a background margin
    box = np.zeros((bottom - top, right - left), dtype=np.float32)
    for (u, v), z in zip(pixels, joints_file[:, 2], strict=True):
        box[v - top, u - left] = -z  # a pixel two joints share keeps the later one's depth
    write_bin(path, (320, 240, left, top, right, bottom), box)
    return pixels


def write_center_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def write_tree(root: Path, counts: dict[tuple[int, str], int], seed: int = 0) -> dict[tuple[int, str], np.ndarray]:
    """All 9 x 17 gesture folders; ``counts`` frames (blob depth files) where given, 0 elsewhere.

    Returns:
        (subject, gesture) -> (N, 21, 3) joint.txt values.
    """
    rng = np.random.default_rng(seed)
    written = {}
    for subject in range(9):
        for gesture in GESTURES:
            count = counts.get((subject, gesture), 0)
            joints = np.array([random_hand_file(rng) for _ in range(count)]).reshape(count, 21, 3)
            folder = root / f"P{subject}" / gesture
            write_joint_file(folder / "joint.txt", joints)
            for frame in range(count):
                write_blob_frame(folder / f"{frame:06d}_depth.bin", joints[frame])
            written[(subject, gesture)] = joints
    return written


# --- constants and single files -------------------------------------------------------------------------------------
def test_constants_follow_the_release() -> None:
    fingers = [f"{finger}_{k}" for finger in ("Index", "Middle", "Ring", "Pinky", "Thumb") for k in (1, 2, 3, 4)]
    assert MSRA_JOINTS.names == ("Wrist", *fingers)  # wrist, index..little, thumb; MCP, PIP, DIP, TIP
    assert GESTURES == ("1", "2", "3", "4", "5", "6", "7", "8", "9", "I", "IP", "L", "MP", "RP", "T", "TIP", "Y")
    intrinsics = (MSRA_INTRINSICS.fx, MSRA_INTRINSICS.fy, MSRA_INTRINSICS.cx, MSRA_INTRINSICS.cy)
    assert intrinsics == (FX, FY, CX, CY)
    assert (MSRA_INTRINSICS.width, MSRA_INTRINSICS.height) == (320, 240)
    np.testing.assert_array_equal(MSRA_INTRINSICS.as_array(), np.float32([FX, FY, CX, CY]))


def test_joint_txt_is_converted_to_our_camera_frame(tmp_path: Path) -> None:
    joints_file = np.arange(2 * 21 * 3, dtype=np.float64).reshape(2, 21, 3) - 300.0
    path = tmp_path / "joint.txt"
    write_joint_file(path, joints_file)
    joints = read_joint_txt(path)
    assert joints.shape == (2, 21, 3) and joints.dtype == np.float32
    np.testing.assert_allclose(joints[..., 0], joints_file[..., 0])
    np.testing.assert_allclose(joints[..., 1], -joints_file[..., 1])  # y up -> y down
    np.testing.assert_allclose(joints[..., 2], -joints_file[..., 2])  # z negative -> the depth


def test_depth_box_paste_hand_computed(tmp_path: Path) -> None:
    box = np.arange(1, 7, dtype=np.float32).reshape(2, 3) * 100.0
    path = tmp_path / "000000_depth.bin"
    write_bin(path, (320, 240, 5, 7, 8, 9), box)  # left 5, top 7, right 8, bottom 9: 2 rows x 3 columns
    depth = read_depth_bin(path)
    assert depth.shape == (240, 320) and depth.dtype == np.float32
    assert depth[7, 5] == 100.0 and depth[7, 7] == 300.0 and depth[8, 5] == 400.0 and depth[8, 7] == 600.0
    assert np.count_nonzero(depth) == 6 and depth.sum() == box.sum()
    header, stored = read_depth_box(path)
    assert header == (320, 240, 5, 7, 8, 9)
    np.testing.assert_array_equal(stored, box)


def test_joints_project_onto_their_depth_pixels(tmp_path: Path) -> None:
    """The paste offsets and both axis flips together: our joints, projected with our pinhole camera, land on the
    pixels that V2V's world2pixel gives the file's values, and the depth there is the joint's."""
    rng = np.random.default_rng(7)
    for index in range(3):
        joints_file = random_hand_file(rng)
        while len(np.unique(np.rint(upstream_pixels(joints_file)), axis=0)) < 21:  # one joint per pixel
            joints_file = random_hand_file(rng)
        pixels = write_blob_frame(tmp_path / f"{index:06d}_depth.bin", joints_file)
        write_joint_file(tmp_path / "joint.txt", joints_file[None])
        joints = read_joint_txt(tmp_path / "joint.txt")[0]
        depth = read_depth_bin(tmp_path / f"{index:06d}_depth.bin")
        uv = MSRA_INTRINSICS.project(joints)
        u = CX + FX * joints[:, 0] / joints[:, 2]  # the pinhole written out: y down, z forward
        np.testing.assert_allclose(uv[:, 0], u, rtol=1e-6)
        np.testing.assert_array_equal(np.rint(uv).astype(int), pixels)
        np.testing.assert_allclose(depth[pixels[:, 1], pixels[:, 0]], joints[:, 2], rtol=1e-6)
        assert np.count_nonzero(depth) == 21  # nothing else was pasted


def test_refined_centres_signs_and_invalid_lines(tmp_path: Path) -> None:
    path = tmp_path / "center_test_0_refined.txt"
    write_center_lines(path, ["11.5 -8.25 260.5", "invalid", "-3 4 300", ""])
    centers = read_refined_centers(path)
    assert centers.shape == (3, 3) and centers.dtype == np.float32
    np.testing.assert_allclose(centers[0], [11.5, 8.25, 260.5])  # y up -> y down; z is already the depth
    assert np.isnan(centers[1]).all()
    np.testing.assert_allclose(centers[2], [-3.0, -4.0, 300.0])


# --- frames and folds -----------------------------------------------------------------------------------------------
@pytest.fixture
def small_tree(tmp_path: Path) -> tuple[Path, dict]:
    counts = {(0, "1"): 2, (0, "TIP"): 1, (1, "5"): 2, (2, "IP"): 1, (2, "Y"): 2}
    return tmp_path, write_tree(tmp_path, counts)


def test_frames_follow_the_upstream_order(small_tree) -> None:
    root, _ = small_tree
    frames = list_frames(root, 2)
    assert [(f.subject, f.gesture, f.frame) for f in frames] == [(2, "IP", 0), (2, "Y", 0), (2, "Y", 1)]
    assert frames[2].depth_path == root / "P2" / "Y" / "000001_depth.bin"
    train = list_fold_frames(root, 1, "train")
    assert [(f.subject, f.gesture, f.frame) for f in train] == [
        (0, "1", 0), (0, "1", 1), (0, "TIP", 0), (2, "IP", 0), (2, "Y", 0), (2, "Y", 1)
    ]  # fmt: skip


def test_fold_aligns_joints_and_centres_and_invalid_lines_still_count(small_tree) -> None:
    root, written = small_tree
    order = [(0, "1", 0), (0, "1", 1), (0, "TIP", 0), (2, "IP", 0), (2, "Y", 0), (2, "Y", 1)]
    lines = ["1 2 301", "invalid", "3 4 303", "5 6 305", "invalid", "7 8 307"]
    write_center_lines(root / "center" / "center_train_1_refined.txt", lines)
    fold = load_fold(root, 1, "train")
    assert len(fold.frames) == 6 and fold.joints_mm.shape == (6, 21, 3)
    for i, (subject, gesture, frame) in enumerate(order):
        expected = written[(subject, gesture)][frame] * (1.0, -1.0, -1.0)
        np.testing.assert_allclose(fold.joints_mm[i], expected, rtol=1e-6)
    np.testing.assert_array_equal(fold.valid, [True, False, True, True, False, True])
    np.testing.assert_allclose(fold.centers_mm[fold.valid], [[1, -2, 301], [3, -4, 303], [5, -6, 305], [7, -8, 307]])


def test_centre_file_elsewhere_and_test_split(small_tree, tmp_path_factory) -> None:
    root, written = small_tree
    centres = tmp_path_factory.mktemp("centres")
    write_center_lines(centres / "center_test_1_refined.txt", ["0 0 400", "1 1 401"])
    fold = load_fold(root, 1, "test", center_dir=centres)
    assert [(f.subject, f.gesture) for f in fold.frames] == [(1, "5"), (1, "5")]
    np.testing.assert_allclose(fold.joints_mm, written[(1, "5")] * (1.0, -1.0, -1.0), rtol=1e-6)
    assert fold.valid.all()


def test_centre_line_count_must_match_the_frames(small_tree) -> None:
    root, _ = small_tree
    path = root / "center" / "center_test_2_refined.txt"
    write_center_lines(path, ["0 0 400", "invalid"])  # subject 2 has 3 frames
    with pytest.raises(AnnotationError, match=r"center_test_2_refined\.txt: 2 centre lines.*3"):
        load_fold(root, 2, "test")


def test_gen_gt_writes_valid_frames_in_the_upstream_convention(small_tree, tmp_path_factory) -> None:
    root, written = small_tree
    write_center_lines(
        root / "center" / "center_train_2_refined.txt", ["1 1 300", "invalid", "2 2 300", "3 3 300", "4 4 300"]
    )
    write_center_lines(root / "center" / "center_test_2_refined.txt", ["1 1 300", "2 2 300", "3 3 300"])
    out = tmp_path_factory.mktemp("gt")
    assert gen_gt_main(["--root", str(root), "--test-subject", "2", "--out", str(out)]) == 0
    train = np.loadtxt(out / "train_s2_gt.txt", ndmin=2)
    test = np.loadtxt(out / "test_s2_gt.txt", ndmin=2)
    upstream = {k: v * (1.0, 1.0, -1.0) for k, v in written.items()}  # joint.txt with z negated, as V2V loads it
    expected_train = np.stack([upstream[(0, "1")][0], upstream[(0, "TIP")][0], upstream[(1, "5")][0],
                               upstream[(1, "5")][1]])  # fmt: skip  # (0, '1', 1) has an invalid centre
    expected_test = np.concatenate([upstream[(2, "IP")], upstream[(2, "Y")]])
    np.testing.assert_allclose(train, expected_train.reshape(4, 63), atol=5e-5)
    np.testing.assert_allclose(test, expected_test.reshape(3, 63), atol=5e-5)
    assert write_gt_files(root, 2, out)["test"] == out / "test_s2_gt.txt"


# --- malformed files ------------------------------------------------------------------------------------------------
GOOD_LINE = " ".join(["1.0"] * 63)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"empty file"),
        ("two\n" + GOOD_LINE + "\n", r"line 1: expected the frame count"),
        ("2\n" + GOOD_LINE + "\n", r"line 1 says 2 frames, the file has 1"),
        ("2\n" + GOOD_LINE + "\n" + " ".join(["1.0"] * 62) + "\n", r"line 3: 62 values, expected 63"),
        ("1\n" + GOOD_LINE.replace("1.0", "x", 1) + "\n", r"line 2: not all values are numbers"),
        ("1\n" + GOOD_LINE.replace("1.0", "nan", 1) + "\n", r"line 2: a value is not finite"),
    ],
)
def test_malformed_joint_txt_names_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "P0" / "1" / "joint.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(AnnotationError, match=match) as info:
        read_joint_txt(path)
    assert str(path) in str(info.value)


def test_missing_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MissingAnnotationError, match=r"P0.1.joint\.txt"):
        list_frames(tmp_path, 0)
    with pytest.raises(MissingAnnotationError, match=r"000003_depth\.bin"):
        read_depth_bin(tmp_path / "000003_depth.bin")


def test_truncated_depth_file_names_the_file_and_expected_size(tmp_path: Path) -> None:
    path = tmp_path / "000000_depth.bin"
    write_bin(path, (320, 240, 10, 20, 14, 23), np.ones((3, 4)))
    path.write_bytes(path.read_bytes()[:-5])
    expected = 24 + 4 * 12
    with pytest.raises(AnnotationError, match=rf"000000_depth\.bin: truncated depth file: expected {expected} bytes"):
        read_depth_bin(path)
    path.write_bytes(b"\x01\x02")
    with pytest.raises(AnnotationError, match=r"000000_depth\.bin: truncated depth file: 2 bytes"):
        read_depth_bin(path)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ((320, 240, 10, 20, 8, 23), r"does not fit"),  # right < left
        ((320, 240, 318, 20, 321, 23), r"does not fit"),  # beyond the image
        ((640, 480, 10, 20, 13, 23), r"states a 640 x 480 image, expected 320 x 240"),
    ],
)
def test_bad_depth_header_names_the_file(tmp_path: Path, header: tuple, match: str) -> None:
    path = tmp_path / "000001_depth.bin"
    width, height = max(header[4] - header[2], 0), max(header[5] - header[3], 0)
    write_bin(path, header, np.ones((height, width)))
    with pytest.raises(AnnotationError, match=match) as info:
        read_depth_bin(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("line", ["1 2", "1 2 x", "invalid 3", "", "1 2 inf"])
def test_bad_centre_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "center_train_0_refined.txt"
    write_center_lines(path, ["1 2 3", line, "4 5 6"])
    with pytest.raises(AnnotationError, match=r"center_train_0_refined\.txt, line 2"):
        read_refined_centers(path)


# --- the synthetic writer, read back ---------------------------------------------------------------------------------
def test_synthetic_msra_reads_back_with_joints_on_the_hand(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    from data.Synthetic.msra_writer import make_msra

    gestures = ("1", "5", "T")
    summary = make_msra(tmp_path / "a", subjects=(0, 1), frames_per_gesture=2, gestures=gestures, seed=3,
                        human_model_path=synthetic_body_model_dir, progress=False)  # fmt: skip
    assert summary["images"] == 12
    root = tmp_path / "a"
    tip = np.array([name.endswith("_4") for name in MSRA_JOINTS.names])
    for split in ("train", "test"):
        fold = load_fold(root, 0, split)
        assert len(fold.frames) == 6  # 3 gestures x 2 frames of subject 1 (train) or 0 (test)
        assert {f.gesture for f in fold.frames} == set(gestures)
        if split == "train":
            assert not fold.valid.all()  # some 'invalid' lines, as V2V's train files have
        else:
            assert fold.valid.all()
        palms = fold.joints_mm[:, [0, 1, 5, 9, 13]].mean(axis=1)  # wrist and the four finger MCPs
        offsets = np.linalg.norm(fold.centers_mm[fold.valid] - palms[fold.valid], axis=1)
        assert (offsets < 25.0).all() and offsets.mean() < 12.0  # about 5 mm of noise
        for frame, joints in zip(fold.frames, fold.joints_mm, strict=True):
            depth = read_depth_bin(frame.depth_path)
            palm_depth = joints[[0, 1, 5, 9, 13], 2].mean()
            assert 250.0 <= palm_depth <= 450.0 and joints[:, 2].min() > 100.0  # MSRA's joints: 122-599 mm
            uv = np.rint(MSRA_INTRINSICS.project(joints)).astype(int)
            for j, (u, v) in enumerate(uv):
                # a fingertip vertex is the apex of the silhouette, which may stop up to 2 px short of it
                reach = 2 if tip[j] else 1
                window = depth[v - reach : v + reach + 1, u - reach : u + reach + 1]
                assert (window > 0).any(), (frame, MSRA_JOINTS.names[j])
                # a joint lies inside the hand: the surface seen at its pixel is no farther than the joint
                assert window[window > 0].min() <= joints[j, 2] + 3.0, (frame, MSRA_JOINTS.names[j])
            seen = depth[uv[:, 1], uv[:, 0]]
            near = np.abs(seen[seen > 0] - joints[seen > 0, 2])
            assert np.median(near) < 20.0
    # seeded per frame: the same frame whatever the other gestures written
    make_msra(tmp_path / "b", subjects=(0,), frames_per_gesture=1, gestures=("5",), seed=3,
              human_model_path=synthetic_body_model_dir, progress=False)  # fmt: skip
    assert (root / "P0/5/000000_depth.bin").read_bytes() == (tmp_path / "b/P0/5/000000_depth.bin").read_bytes()
    lines_a, lines_b = ((r / "P0/5/joint.txt").read_text().splitlines() for r in (root, tmp_path / "b"))
    assert lines_b == ["1", lines_a[1]]


def test_make_synthetic_dataset_cli_writes_msra(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    from common.engine.cli import run_cli
    from tool.make_synthetic_dataset import main as make_main

    common = ["--out", str(tmp_path), "--num-images", "2", "--format", "msra", "--human-model-path",
              str(synthetic_body_model_dir)]  # fmt: skip
    assert run_cli(make_main, [*common, "--gestures", "1,Q"]) == 2  # an unknown gesture is a usage error
    assert run_cli(make_main, [*common, "--subjects", "0,9"]) == 2  # MSRA's subjects are 0..8
    assert make_main([*common, "--gestures", "L", "--subjects", "4"]) == 0
    assert [f.gesture for f in list_frames(tmp_path, 4)] == ["L", "L"]
    assert list_frames(tmp_path, 0) == []
    assert len(read_refined_centers(tmp_path / "center" / "center_test_4_refined.txt")) == 2
