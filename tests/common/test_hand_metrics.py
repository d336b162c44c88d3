"""FreiHAND evaluation against independent computations: scipy's Procrustes, brute-force nearest neighbours, the
benchmark's per-keypoint PCK loop, and hand-built cases; pred.json round trips and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import procrustes
from scipy.spatial.transform import Rotation

from common.geometry import similarity_procrustes
from common.utils.hand_metrics import (
    FREIHAND_EVAL_SAMPLES,
    f_scores,
    freihand_metrics,
    freihand_procrustes,
    pck_auc,
    read_freihand_pred,
    write_freihand_pred,
)

KEYS = {"pa_mpjpe", "pa_mpvpe", "f5_mesh", "f15_mesh", "f5_joint", "f15_joint", "auc_joint", "auc_mesh"}


def random_hands(seed: int, batch: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(B, 21, 3) joints and (B, 778, 3) vertices, metres: hand-sized clouds about 3 cm across, 0.5 m away."""
    rng = np.random.default_rng(seed)
    joints = rng.normal(scale=0.03, size=(batch, 21, 3)) + [0.0, 0.0, 0.5]
    verts = rng.normal(scale=0.03, size=(batch, 778, 3)) + [0.0, 0.0, 0.5]
    return joints, verts


def similarity_moved(points: np.ndarray, seed: int) -> np.ndarray:
    """Each sample moved by its own random rotation, scale in [0.5, 2] and translation."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(points)
    for b, sample in enumerate(points):
        rotation = Rotation.random(random_state=rng.integers(1 << 30)).as_matrix()
        out[b] = rng.uniform(0.5, 2.0) * sample @ rotation.T + rng.normal(scale=1.0, size=3)
    return out


def benchmark_alignment(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The prediction aligned as the benchmark does, through scipy.spatial.procrustes (orthogonal, scaled).

    scipy centres both sets and divides each by its Frobenius norm; the fitted prediction it returns lives in the
    GT's normalised frame, so undoing the GT's normalisation gives metres in the GT's frame.
    """
    gt_std, pred_fit, disparity = procrustes(gt, pred)
    gt_norm = np.linalg.norm(gt - gt.mean(0))
    aligned = pred_fit * gt_norm + gt.mean(0)
    assert ((aligned - gt) ** 2).sum() == pytest.approx(disparity * gt_norm**2, rel=1e-9)  # the reading is right
    return aligned


def brute_force_f(pred: np.ndarray, gt: np.ndarray, threshold_m: float) -> float:
    distances = np.linalg.norm(pred[:, None] - gt[None], axis=-1)  # (P, G)
    precision = (distances.min(1) < threshold_m).mean()
    recall = (distances.min(0) < threshold_m).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def benchmark_auc(errors_m: np.ndarray) -> float:
    """The set's AUC as the benchmark's EvalUtil computes it: per point, PCK over all samples, then the mean."""
    thresholds = np.linspace(0.0, 0.05, 100)
    norm = np.trapezoid(np.ones_like(thresholds), thresholds)
    aucs = [
        np.trapezoid([np.mean(errors_m[:, k] <= t) for t in thresholds], thresholds) / norm
        for k in range(errors_m.shape[1])
    ]
    return float(np.mean(aucs))


def test_perfect_predictions_give_zero_error_and_full_scores() -> None:
    joints, verts = random_hands(0)
    out = freihand_metrics(joints, verts, joints, verts)
    assert set(out) == KEYS and all(v.shape == (3,) and v.dtype == np.float64 for v in out.values())
    np.testing.assert_allclose(out["pa_mpjpe"], 0.0, atol=1e-9)
    np.testing.assert_allclose(out["pa_mpvpe"], 0.0, atol=1e-9)
    for key in ("f5_mesh", "f15_mesh", "f5_joint", "f15_joint"):
        np.testing.assert_array_equal(out[key], 1.0, err_msg=key)
    assert_auc_of_exact_points(out)


def assert_auc_of_exact_points(out: dict[str, np.ndarray]) -> None:
    """Exact points after alignment: every error is float noise, below the second PCK threshold (0.5 mm).

    The benchmark's first threshold is 0 m and counts only errors that are exactly 0, which float noise rarely is,
    so its best reachable AUC is 1 - 0.5 / 99 ~ 0.995 (half of the first trapezoid missing), not 1.
    """
    for key in ("auc_joint", "auc_mesh"):
        assert np.all((out[key] >= 1.0 - 0.5 / 99 - 1e-12) & (out[key] <= 1.0)), (key, out[key])


def test_similarity_transforms_of_the_gt_are_aligned_away() -> None:
    joints, verts = random_hands(1)
    out = freihand_metrics(similarity_moved(joints, 2), similarity_moved(verts, 3), joints, verts)
    np.testing.assert_allclose(out["pa_mpjpe"], 0.0, atol=1e-6)
    np.testing.assert_allclose(out["pa_mpvpe"], 0.0, atol=1e-6)
    for key in ("f5_mesh", "f15_mesh", "f5_joint", "f15_joint"):
        np.testing.assert_array_equal(out[key], 1.0, err_msg=key)
    assert_auc_of_exact_points(out)


def test_perturbed_predictions_match_independent_computations() -> None:
    joints, verts = random_hands(4)
    rng = np.random.default_rng(5)
    noisy_joints = similarity_moved(joints + rng.normal(scale=0.006, size=joints.shape), 6)
    noisy_verts = similarity_moved(verts + rng.normal(scale=0.004, size=verts.shape), 7)
    # float32 tensors, as a model outputs them; the metrics still compute in float64
    out = freihand_metrics(torch.from_numpy(noisy_joints).float(), torch.from_numpy(noisy_verts).float(), joints, verts)
    noisy_joints, noisy_verts = (torch.from_numpy(a).float().double().numpy() for a in (noisy_joints, noisy_verts))
    for part, pred, gt, pa_key in (
        ("joint", noisy_joints, joints, "pa_mpjpe"),
        ("mesh", noisy_verts, verts, "pa_mpvpe"),
    ):
        aligned = np.stack([benchmark_alignment(p, g) for p, g in zip(pred, gt, strict=True)])
        errors_m = np.linalg.norm(aligned - gt, axis=-1)  # (B, N)
        np.testing.assert_allclose(out[pa_key], errors_m.mean(1) * 1000, rtol=1e-9)
        for threshold_mm in (5, 15):
            expected = [brute_force_f(a, g, threshold_mm / 1000) for a, g in zip(aligned, gt, strict=True)]
            np.testing.assert_allclose(out[f"f{threshold_mm}_{part}"], expected, rtol=1e-12)
        np.testing.assert_allclose(out[f"auc_{part}"], [benchmark_auc(e[None]) for e in errors_m], rtol=1e-12)
        assert out[f"auc_{part}"].mean() == pytest.approx(benchmark_auc(errors_m), rel=1e-12)
    # the case is not degenerate: errors of a few mm and F-scores strictly between 0 and 1
    assert np.all((out["pa_mpvpe"] > 3) & (out["pa_mpvpe"] < 15)) and np.all(out["pa_mpjpe"] > 3)
    assert np.all((out["f5_mesh"] > 0.1) & (out["f5_mesh"] < 0.9)) and np.all(out["f15_mesh"] > out["f5_mesh"])
    assert np.all((out["auc_mesh"] > 0.5) & (out["auc_mesh"] < 1.0))


def test_f_score_of_a_hand_computed_case() -> None:
    gt = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0]])
    pred = np.array(
        [
            [0.001, 0.0, 0.0],  # 1 mm from GT 0
            [0.1, 0.004, 0.0],  # 4 mm from GT 1
            [0.0, 0.1, 0.02],  # 20 mm from GT 2, its only neighbour: unmatched both ways
            [0.0, 0.0, 0.003],  # 3 mm from GT 0 (a second match of the same GT point counts for precision)
        ]
    )
    scores = f_scores(pred[None], gt[None], [0.005, 0.015, 0.025])
    np.testing.assert_allclose(scores.precision, [[3 / 4, 3 / 4, 1.0]])
    np.testing.assert_allclose(scores.recall, [[2 / 3, 2 / 3, 1.0]])
    np.testing.assert_allclose(scores.f, [[12 / 17, 12 / 17, 1.0]])  # 2 (3/4)(2/3) / (3/4 + 2/3)
    # a distance equal to the threshold does not count (the benchmark's d < th); 2^-8 m is exact in binary
    exact = f_scores(np.array([[[0.0, 0.0, 2.0**-8]]]), np.zeros((1, 1, 3)), [2.0**-8, 2.0**-7])
    for value in exact:  # f, precision and recall each
        np.testing.assert_array_equal(value, [[0.0, 1.0]])


def test_f_score_matches_nearest_points_not_indices() -> None:
    joints, verts = random_hands(8, batch=1)
    pred = verts + np.random.default_rng(9).normal(scale=0.002, size=verts.shape)
    shuffled = pred[:, np.random.default_rng(10).permutation(verts.shape[1])]
    scores, scores_shuffled = f_scores(pred, verts, [0.005]), f_scores(shuffled, verts, [0.005])
    np.testing.assert_array_equal(scores.f, scores_shuffled.f)
    # the vertex error, which is index-matched, does see the shuffle
    out = freihand_metrics(joints, shuffled, joints, verts)
    assert out["pa_mpvpe"][0] > 20.0 and out["f5_mesh"][0] == pytest.approx(
        brute_force_f(benchmark_alignment(shuffled[0], verts[0]), verts[0], 0.005)
    )


def test_far_predictions_score_zero() -> None:
    gt = np.zeros((1, 4, 3)) + np.arange(4)[None, :, None] * 0.01
    scores = f_scores(gt + 1.0, gt, [0.005, 0.015])
    np.testing.assert_array_equal(scores.f, [[0.0, 0.0]])
    assert pck_auc(np.full((1, 5), 0.06))[0] == 0.0


def test_a_mirrored_prediction_is_aligned_by_a_reflection_like_the_benchmark() -> None:
    joints, verts = random_hands(11, batch=1)
    mirrored = verts * [-1.0, 1.0, 1.0]
    out = freihand_metrics(joints, mirrored, joints, verts)
    assert out["pa_mpvpe"][0] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(freihand_procrustes(mirrored, verts)[0], benchmark_alignment(mirrored[0], verts[0]))
    # Hand4Whole's rotation-only alignment (common.geometry) cannot undo the mirror: the two really differ here
    proper = similarity_procrustes(torch.from_numpy(mirrored), torch.from_numpy(verts)).numpy()
    assert np.linalg.norm(proper - verts, axis=-1).mean() * 1000 > 10.0


def test_a_collapsed_prediction_maps_to_the_gt_centroid() -> None:
    joints, verts = random_hands(12, batch=1)
    collapsed = np.zeros_like(verts) + [0.1, 0.2, 0.3]
    aligned = freihand_procrustes(collapsed, verts)
    np.testing.assert_allclose(aligned, np.broadcast_to(verts.mean(1, keepdims=True), verts.shape), atol=1e-12)
    out = freihand_metrics(joints, collapsed, joints, verts)
    expected_mm = np.linalg.norm(verts[0] - verts[0].mean(0), axis=-1).mean() * 1000
    assert out["pa_mpvpe"][0] == pytest.approx(expected_mm) and np.isfinite(list(out.values())).all()


def test_pck_auc_of_hand_computed_curves() -> None:
    step = 0.05 / 99  # the benchmark's 100 thresholds over 0-50 mm
    errors = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],  # all correct at every threshold
            [0.0, 0.0, 1.0, 1.0],  # half the points always, half never
            [step, step, step, step],  # correct from the second threshold on (error <= threshold counts)
        ]
    )
    np.testing.assert_allclose(pck_auc(errors), [1.0, 0.5, 1.0 - 0.5 * step / 0.05], rtol=1e-12)


def test_shapes_are_checked() -> None:
    joints, verts = random_hands(13, batch=2)
    with pytest.raises(ValueError, match=r"prediction \(2, 20, 3\) and GT \(2, 21, 3\)"):
        freihand_metrics(joints[:, :20], verts, joints, verts)
    with pytest.raises(ValueError, match=r"expected \(B, N, 3\)"):
        freihand_metrics(joints[0], verts, joints, verts)


def test_pred_json_round_trips_in_the_server_layout(tmp_path: Path) -> None:
    joints, verts = random_hands(14, batch=2)
    path = tmp_path / "result" / "FreiHAND" / "pred.json"
    assert write_freihand_pred(path, joints, verts) == path
    raw = json.loads(path.read_text())
    assert len(raw) == 2 and np.shape(raw[0]) == (2, 21, 3) and np.shape(raw[1]) == (2, 778, 3)
    read_joints, read_verts = read_freihand_pred(path, expected_samples=2)
    np.testing.assert_array_equal(read_joints, joints)  # exact: json keeps float64's shortest repr
    np.testing.assert_array_equal(read_verts, verts)
    assert sorted(p.name for p in path.parent.iterdir()) == ["pred.json"]  # no temporary left
    # float32 tensors (a model's output) are written as their float64 values
    write_freihand_pred(path, torch.from_numpy(joints).float(), torch.from_numpy(verts).float())
    np.testing.assert_array_equal(read_freihand_pred(path)[0], torch.from_numpy(joints).float().double().numpy())


def test_the_writer_refuses_what_the_server_cannot_read(tmp_path: Path) -> None:
    joints, verts = random_hands(15, batch=2)
    path = tmp_path / "pred.json"
    with pytest.raises(ValueError, match=r"vertices \(verts_list\) have shape \(2, 777, 3\), expected \(N, 778, 3\)"):
        write_freihand_pred(path, joints, verts[:, :777])
    with pytest.raises(ValueError, match="2 joint sets but 1 vertex sets"):
        write_freihand_pred(path, joints, verts[:1])
    with pytest.raises(ValueError, match="no samples"):
        write_freihand_pred(path, joints[:0], verts[:0])
    joints[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_freihand_pred(path, joints, verts)
    assert list(tmp_path.iterdir()) == []


def _sample(joints: int = 21, verts: int = 778) -> tuple[list, list]:
    return [[0.0, 0.0, 0.5]] * joints, [[0.0, 0.01, 0.5]] * verts


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[[1, 2", "not valid JSON"),
        ('{"xyz": [], "verts": []}', r"expected a JSON list \[xyz_list, verts_list\], got dict"),
        (json.dumps([[_sample()[0]], [_sample()[1]], []]), "got a list of 3"),
        (json.dumps([[_sample(joints=20)[0]], [_sample()[1]]]), r"joints \(xyz_list\) have shape \(1, 20, 3\)"),
        (json.dumps([[_sample()[0]], [_sample()[1][:-1] + [[0.0, 0.0]]]]), r"vertices \(verts_list\) are not"),
        (json.dumps([[_sample()[0]], [[["a", "b", "c"]] * 778]]), r"vertices \(verts_list\) are not"),
        (json.dumps([[_sample()[0]] * 2, [_sample()[1]]]), "2 joint sets but 1 vertex sets"),
        ("[[], []]", r"joints \(xyz_list\) have shape \(0,\)"),
        (json.dumps([[_sample()[0]], [_sample()[1]]]).replace("0.5", "NaN", 1), "NaN or infinite"),
        (json.dumps([[_sample()[0]], [_sample()[1]]]), f"1 samples, expected {FREIHAND_EVAL_SAMPLES}"),
    ],
)
def test_a_malformed_pred_json_names_the_file_and_the_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "my_submission.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem) as caught:
        read_freihand_pred(path, expected_samples=FREIHAND_EVAL_SAMPLES)
    assert "my_submission.json" in str(caught.value)
