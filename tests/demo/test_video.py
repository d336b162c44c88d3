"""Video: IoU tracking through crossings, the causal One-Euro smoothing (jitter and lag measured against ground
truth), and the video demo on a tiny synthetic clip (overlay mp4, parameter table, JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from common.engine.cli import run_cli
from common.engine.snapshot import read_snapshot
from demo import video
from demo.full_image_camera import image_camera
from demo.inference import build_model
from demo.smoothing import OneEuroFilter, OneEuroSettings, ParamSmoother, SmoothingSettings
from demo.tracking import IoUTracker, TrackerOptions, associate, box_iou
from main.config import Config
from main.model import get_family
from tool.make_synthetic_video import pose_synthetic_people, render_synthetic_video, write_synthetic_video

REPO_ROOT = Path(__file__).resolve().parents[2]
FPS = 30.0


# --- tracking -------------------------------------------------------------------------------------------------


def test_box_iou_hand_computed() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [20, 20, 5, 5], [0, 0, 0, 10]], dtype=float)
    iou = box_iou(boxes, boxes)
    assert iou[0, 1] == pytest.approx(25 / 175) and iou[1, 0] == pytest.approx(25 / 175)
    assert iou[0, 0] == 1.0 and iou[0, 2] == 0.0 and iou[3, 3] == 0.0 and iou[0, 3] == 0.0


def test_hungarian_maximises_the_total_where_greedy_takes_the_best_pair_first() -> None:
    iou = np.array([[0.9, 0.6], [0.7, 0.0]])
    assert associate(iou, 0.3, "greedy") == [(0, 0)]  # then row 1 only has 0.0 < min_iou left
    assert associate(iou, 0.3, "hungarian") == [(0, 1), (1, 0)]  # 1.3 > 0.9
    assert associate(iou, 0.65, "hungarian") == [(1, 0)]  # (0, 1) falls below min_iou


@pytest.mark.parametrize("method", ["hungarian", "greedy"])
def test_ids_survive_two_equal_boxes_crossing(method: str) -> None:
    """Two equal boxes moving in opposite directions coincide at frame 10: each must keep its id after it."""
    tracker = IoUTracker(TrackerOptions(method=method))
    for t in range(21):
        left_to_right = [40.0 + 6.0 * t, 50.0, 30.0, 60.0]
        right_to_left = [160.0 - 6.0 * t, 50.0, 30.0, 60.0]
        update = tracker.update([np.array(left_to_right), np.array(right_to_left)])
        assert update.track_ids == [0, 1], (t, update)


def test_tracks_end_after_max_missed_frames_and_new_ones_start() -> None:
    tracker = IoUTracker(TrackerOptions(max_missed=2))
    box = np.array([10.0, 10.0, 20.0, 40.0])
    assert tracker.update([box]).track_ids == [0]
    assert tracker.update([]).ended == [] and tracker.update([]).ended == []  # missed 1, 2: still alive
    assert tracker.update([box]).track_ids == [0]  # back within max_missed: the same person
    for _ in range(2):
        assert tracker.update([]).ended == []
    assert tracker.update([]).ended == [0]  # the third frame in a row without it
    assert tracker.update([box]).track_ids == [1]  # a new track, never a reused id


def test_ids_follow_the_synthetic_people_through_their_crossing(synthetic_body_model_dir: Path) -> None:
    people = pose_synthetic_people(synthetic_body_model_dir, frames=48, people=2, size_hw=(240, 320))
    boxes = people.boxes_xywh  # (T, 2, 4) ground truth per person
    overlap = [box_iou(frame[:1], frame[1:])[0, 0] for frame in boxes]
    assert max(overlap) > 0.3  # they do cross
    tracker = IoUTracker()
    ids = np.array([tracker.update(list(frame)).track_ids for frame in boxes])  # (T, 2)
    assert (ids[:, 0] == ids[0, 0]).all() and (ids[:, 1] == ids[0, 1]).all() and ids[0, 0] != ids[0, 1]


# --- smoothing ------------------------------------------------------------------------------------------------


def _rotation_track(frames: int) -> np.ndarray:
    """(T, 6) ground truth: two joints' axis-angle moving smoothly (peak speed about 2 rad/s at 30 fps)."""
    t = np.arange(frames) / FPS
    joint = np.stack([0.6 * np.sin(2 * np.pi * 0.5 * t), 0.3 * np.cos(2 * np.pi * 0.3 * t) + 0.2, 0.1 * t], -1)
    return np.concatenate([joint, 0.8 * joint[:, ::-1]], axis=1)


def _acceleration(track: np.ndarray) -> np.ndarray:
    return track[2:] - 2.0 * track[1:-1] + track[:-2]  # per frame squared


def test_smoothing_is_causal() -> None:
    rng = np.random.default_rng(0)
    params = [
        {
            "pose": rng.normal(size=6),
            "shape": rng.normal(size=10),
            "cam_trans": [0.1, 0.2, 5.0] + rng.normal(size=3) / 99,
        }
        for _ in range(20)
    ]
    changed = [dict(p) for p in params]
    changed[11] = {"pose": params[11]["pose"] + 1.0, "shape": params[11]["shape"] - 1.0, "cam_trans": [1.0, 0.0, 9.0]}
    outputs = []
    for sequence in (params, changed):
        smoother = ParamSmoother(SmoothingSettings(), ["pose"], "cam_trans")
        outputs.append([smoother(p, i / FPS) for i, p in enumerate(sequence)])
    for t in range(20):
        same = all(np.array_equal(outputs[0][t][k], outputs[1][t][k]) for k in params[0])
        assert same == (t <= 10), t  # frame 11 changes the outputs from frame 11 on, never before


def test_smoothing_cuts_jitter_and_follows_a_step() -> None:
    frames, noise = 300, 0.03  # 0.03 rad is about 2 degrees per component
    truth = _rotation_track(frames)
    noisy = truth + np.random.default_rng(0).normal(scale=noise, size=truth.shape)
    smoother = ParamSmoother(SmoothingSettings(), ["pose"], "cam_trans")
    smoothed = np.stack([smoother({"pose": noisy[i]}, i / FPS)["pose"] for i in range(frames)])

    def acceleration_error(track: np.ndarray) -> float:
        return float(np.linalg.norm((_acceleration(track) - _acceleration(truth)).reshape(-1, 2, 3), axis=-1).mean())

    factor = acceleration_error(noisy) / acceleration_error(smoothed)
    assert factor > 3.0, factor  # measured 3.7 (3.66-3.73 over seeds 0-3)
    position_error = np.linalg.norm((smoothed - truth).reshape(-1, 2, 3), axis=-1).mean()
    assert position_error < 1.1 * np.linalg.norm((noisy - truth).reshape(-1, 2, 3), axis=-1).mean()  # no big lag

    # A 0.5 rad step at frame 30: frames until the output is within 10 % of it.
    step = np.zeros((60, 6))
    step[30:, 0] = 0.5
    smoother = ParamSmoother(SmoothingSettings(), ["pose"], "cam_trans")
    response = np.stack([smoother({"pose": step[i]}, i / FPS)["pose"] for i in range(60)])
    lag = int(np.argmax(np.abs(response[30:, 0] - 0.5) < 0.05))
    assert 1 <= lag <= 3, lag  # measured 2 frames at 30 fps

    # The translation, in the image camera: depth jitter of 3 % on a person walking across at 4 m.
    t = np.arange(frames) / FPS
    walk = np.stack([-1.0 + 0.4 * t, np.full(frames, 0.3), 4.0 + 0.2 * np.sin(t)], axis=-1)  # metres
    rng = np.random.default_rng(1)
    jittery = walk * np.exp(rng.normal(scale=0.03, size=(frames, 1))) + rng.normal(scale=0.01, size=walk.shape)
    smoother = ParamSmoother(SmoothingSettings(), [], "cam_trans")
    followed = np.stack([smoother({"cam_trans": jittery[i]}, t[i])["cam_trans"] for i in range(frames)])
    translation_factor = (
        np.abs(_acceleration(jittery) - _acceleration(walk)).mean()
        / np.abs(_acceleration(followed) - _acceleration(walk)).mean()
    )
    assert translation_factor > 3.0, translation_factor  # measured 5.4 (5.0-5.4 over seeds 1-4)


def test_one_euro_filter_hand_computed() -> None:
    """Two steps of the filter by hand: dt = 0.1 s, cutoffs 1 Hz (value and speed), beta 0."""
    one_euro = OneEuroFilter(OneEuroSettings(min_cutoff_hz=1.0, beta=0.0, d_cutoff_hz=1.0))
    assert one_euro(np.array([2.0]), 0.0)[0] == 2.0
    a = 1.0 / (1.0 + 1.0 / (2.0 * np.pi * 1.0) / 0.1)  # 1 / (1 + tau / dt)
    assert one_euro(np.array([3.0]), 0.1)[0] == pytest.approx(2.0 + a * 1.0)
    with pytest.raises(ValueError, match="times must increase"):
        one_euro(np.array([3.0]), 0.1)


# --- the video demo -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(synthetic_body_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Six frames of two people crossing, 160x120 at 5 frames per second, written by tool/make_synthetic_video.py."""
    people = pose_synthetic_people(synthetic_body_model_dir, frames=6, people=2, size_hw=(120, 160), fps=5.0)
    return write_synthetic_video(render_synthetic_video(people), tmp_path_factory.mktemp("clip"))


def test_video_demo_writes_the_overlay_the_table_and_the_lines(
    clip: dict[str, Path], snapshot_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["--video", str(clip["video"]), "--bboxes", str(clip["boxes"]), "--ckpt", str(snapshot_file)]
    assert run_cli(video.main, [*argv, "--out", str(out)], prog="video.py", user_errors=video.USER_ERRORS) == 0
    captured = capsys.readouterr()
    assert "video.py: device cpu" in captured.err and "6 frames" in captured.out

    with av.open(str(out / "overlay.mp4")) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (120, 160, 3)

    table = dict(np.load(out / "params.npz", allow_pickle=False))
    gt = np.load(clip["params"], allow_pickle=False)
    np.testing.assert_array_equal(table["frame"], np.repeat(np.arange(6), 2))  # every frame, both people
    np.testing.assert_allclose(table["bbox_xywh"], gt["bbox_xywh"], atol=0.01)  # the boxes file, in its order
    tracks = table["track"].reshape(6, 2)
    assert (tracks == tracks[0]).all() and tracks[0, 0] != tracks[0, 1]  # each person keeps its id
    camera = image_camera((120, 160))
    np.testing.assert_allclose(table["focal"], camera.focal)
    np.testing.assert_allclose(table["princpt"], camera.princpt)
    sizes = {"root_pose": 3, "body_pose": 63, "lhand_pose": 45, "rhand_pose": 45, "jaw_pose": 3, "shape": 10,
             "expr": 10, "cam_trans": 3}  # fmt: skip
    for name, size in sizes.items():
        assert table[name].shape == (12, size) and table[f"raw_{name}"].shape == (12, size), name
        # The first frame of a track passes the filter unchanged; later frames are smoothed.
        np.testing.assert_allclose(table[name][:2], table[f"raw_{name}"][:2], atol=1e-5, err_msg=name)
    assert not np.allclose(table["cam_trans"][2:], table["raw_cam_trans"][2:], atol=1e-6)

    lines = [json.loads(line) for line in (out / "params.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    for row, line in enumerate(lines):
        assert (line["frame"], line["track"]) == (table["frame"][row], table["track"][row])
        np.testing.assert_allclose(line["cam_trans"], table["cam_trans"][row], rtol=1e-6)
        np.testing.assert_allclose(line["body_pose"], table["body_pose"][row], rtol=1e-6)


def test_iterate_video_results_reads_no_frame_ahead(
    tiny_cfg: Config, snapshot_file: Path, clip: dict[str, Path]
) -> None:
    view = get_family(tiny_cfg).mesh_view(tiny_cfg)
    model = build_model(tiny_cfg, read_snapshot(snapshot_file)["network"], torch.device("cpu"))
    predictor = video.VideoPredictor(model, tiny_cfg, view, torch.device("cpu"), video.MESH_FROM_PARAMS["hand4whole"])
    boxes = video.per_frame_boxes(clip["boxes"])
    with av.open(str(clip["video"])) as container:
        clip_frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)][:2]
    read = []

    def frames(images):
        for image in images:
            read.append(image)
            yield image

    results = []
    settings = SmoothingSettings()
    for result in video.iterate_video_results(frames(clip_frames), predictor, boxes, fps=FPS, smoothing=settings):
        assert len(read) == result.index + 1  # yielded before the next frame is read
        results.append(result)
    # Another second frame changes nothing before it.
    read.clear()
    other = [clip_frames[0], np.zeros_like(clip_frames[1])]
    again = list(video.iterate_video_results(frames(other), predictor, boxes, fps=FPS, smoothing=settings))
    for a, b in zip(results[0].people, again[0].people, strict=True):
        np.testing.assert_array_equal(a.mesh_m, b.mesh_m)
        np.testing.assert_array_equal(a.params["smplx_body_pose"], b.params["smplx_body_pose"])
    assert not np.allclose(results[1].people[0].mesh_m, again[1].people[0].mesh_m)


def test_bad_video_inputs_end_with_one_line(
    clip: dict[str, Path], snapshot_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*argv: str) -> str:
        out = ["--out", str(tmp_path / "out"), "--ckpt", str(snapshot_file)]
        assert run_cli(video.main, [*argv, *out], prog="video.py", user_errors=video.USER_ERRORS) == 2
        return capsys.readouterr().err.strip().splitlines()[-1]

    assert "video not found" in run("--video", str(tmp_path / "none.mp4"))
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_bytes(b"not a video at all")
    assert "clip.mp4: not a readable video" in run("--video", str(not_a_video))
    assert "--camera 99: cannot open the camera" in run("--camera", "99")
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"0": [[1, 2, 3, 4]], "first": [[1, 2, 3, 4]]}')
    assert "boxes.json: key 'first' is not a frame index" in run("--video", str(clip["video"]), "--bboxes", str(boxes))
    boxes.write_text('{"0": [[1, 2, 3, 4]], "3": [[1, 2, 3, 4], [5, 6]]}')
    assert "boxes.json frame 3: entry 1 is not [x, y, w, h]" in run(
        "--video", str(clip["video"]), "--bboxes", str(boxes)
    )
    assert "--focal/--fov" in run("--video", str(clip["video"]), "--fov", "200")
    assert not (tmp_path / "out" / "overlay.mp4").exists()
