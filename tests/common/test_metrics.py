"""Evaluation metrics against independent computations (an SVD Umeyama written here) and hand-built errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import svd
from scipy.spatial.transform import Rotation

from common.body_models.joint_sets import SMPLX_SKELETON
from common.utils.metrics import (
    H36M_EVAL_JOINTS,
    H36M_JOINTS,
    METRIC_LABELS,
    MeshEvalSets,
    ehf_joint_metrics,
    h36m_joint_metrics,
    mean_point_error,
    mpvpe_metrics,
    pa_point_error,
    report,
)

NUM_VERTICES = 60
ROOTS = {"Pelvis": 0, "L_Wrist": 1, "R_Wrist": 2, "Neck": 3}  # vertex that each alignment joint sits on
LEFT, RIGHT, FACE = np.arange(10, 20), np.arange(20, 30), np.arange(30, 50)


def umeyama_error_mm(source: np.ndarray, target: np.ndarray) -> float:
    """Mean distance after the least-squares similarity fit of source onto target (Umeyama 1991), in mm."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    xs, xt = source - mu_s, target - mu_t
    u, sigma, vt = svd(xt.T @ xs / len(source))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])  # no reflection
    rotation = u @ d @ vt
    scale = np.trace(np.diag(sigma) @ d) / (xs**2).sum(1).mean()
    aligned = scale * xs @ rotation.T + mu_t
    return float(np.linalg.norm(aligned - target, axis=1).mean() * 1000)


@pytest.fixture
def sets() -> MeshEvalSets:
    """Toy vertex subsets; the alignment joints are single vertices (one-hot regressor rows)."""
    regressor = np.zeros((len(SMPLX_SKELETON), NUM_VERTICES), np.float32)
    for name, vertex in ROOTS.items():
        regressor[SMPLX_SKELETON.index(name), vertex] = 1.0
    return MeshEvalSets(regressor, {"left": LEFT, "right": RIGHT}, FACE)


def random_mesh(seed: int, count: int = NUM_VERTICES) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=0.3, size=(count, 3))


def test_mean_point_error_of_a_known_offset() -> None:
    gt = random_mesh(0)[None]
    assert mean_point_error(gt + [0.003, 0.004, 0.0], gt) == pytest.approx([5.0])


def test_pa_error_is_zero_for_similarity_transforms_and_matches_umeyama() -> None:
    gt = random_mesh(1)
    rotation = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix()
    moved = 1.7 * gt @ rotation.T + [0.5, -2.0, 3.0]
    assert pa_point_error(moved[None], gt[None]) == pytest.approx([0.0], abs=1e-6)
    noisy = np.stack([moved + np.random.default_rng(k).normal(scale=0.02, size=gt.shape) for k in range(3)])
    expected = [umeyama_error_mm(n, gt) for n in noisy]
    np.testing.assert_allclose(pa_point_error(noisy, np.stack([gt] * 3)), expected, rtol=1e-6)


def test_pa_error_never_uses_a_reflection() -> None:
    gt = random_mesh(2)
    mirrored = gt * [-1.0, 1.0, 1.0]  # a reflection would fit it exactly
    error = pa_point_error(mirrored[None], gt[None])[0]
    assert error > 10.0 and error == pytest.approx(umeyama_error_mm(mirrored, gt), rel=1e-6)


def test_mpvpe_aligns_each_part_at_its_joint(sets: MeshEvalSets) -> None:
    gt = random_mesh(3)
    shift = np.array([0.1, -0.2, 0.3])
    out = mpvpe_metrics((gt + shift)[None], gt[None], sets)
    for key, value in out.items():
        assert value == pytest.approx([0.0], abs=1e-6), f"{key}: a translation is aligned away"
    # the left hand (not its wrist vertex) moved by 6 mm: hands 3 mm on average of L and R, all vertices 10/60 of it
    pred = gt.copy()
    pred[LEFT] += [0.0, 0.006, 0.0]
    out = mpvpe_metrics(pred[None], gt[None], sets)
    assert out["mpvpe_hand"] == pytest.approx([3.0]) and out["mpvpe_all"] == pytest.approx([6.0 * 10 / 60])
    assert out["pa_mpvpe_hand"] == pytest.approx([0.0], abs=1e-6) and out["mpvpe_face"] == pytest.approx([0.0])


def test_mpvpe_face_and_pa_face_against_independent_values(sets: MeshEvalSets) -> None:
    gt = random_mesh(4)
    pred = gt.copy()
    neck = gt[ROOTS["Neck"]]
    pred[FACE] = neck + 1.1 * (gt[FACE] - neck)  # the face grown 10 % about the neck
    out = mpvpe_metrics(pred[None], gt[None], sets)
    expected = np.linalg.norm(0.1 * (gt[FACE] - neck), axis=1).mean() * 1000
    assert out["mpvpe_face"] == pytest.approx([expected]) and out["pa_mpvpe_face"] == pytest.approx([0.0], abs=1e-6)
    noisy = gt + np.random.default_rng(5).normal(scale=0.01, size=gt.shape)
    out = mpvpe_metrics(noisy[None], gt[None], sets)
    assert out["pa_mpvpe_all"] == pytest.approx([umeyama_error_mm(noisy, gt)], rel=1e-6)
    hands = (umeyama_error_mm(noisy[LEFT], gt[LEFT]) + umeyama_error_mm(noisy[RIGHT], gt[RIGHT])) / 2
    assert out["pa_mpvpe_hand"] == pytest.approx([hands], rel=1e-6)
    pelvis_shift = gt[ROOTS["Pelvis"]] - noisy[ROOTS["Pelvis"]]
    expected_all = np.linalg.norm(noisy + pelvis_shift - gt, axis=1).mean() * 1000
    assert out["mpvpe_all"] == pytest.approx([expected_all])


def test_h36m_metrics_against_independent_values() -> None:
    rng = np.random.default_rng(6)
    regressor = rng.random((len(H36M_JOINTS), NUM_VERTICES))
    regressor /= regressor.sum(1, keepdims=True)
    gt, pred = random_mesh(7), random_mesh(7) + rng.normal(scale=0.02, size=(NUM_VERTICES, 3))
    out = h36m_joint_metrics(pred[None] + [1.0, 2.0, 3.0], gt[None], regressor)
    joints_gt, joints_pred = regressor @ gt, regressor @ pred
    keep, pelvis = [H36M_JOINTS.index(n) for n in H36M_EVAL_JOINTS], H36M_JOINTS.index("Pelvis")
    assert len(keep) == 14
    rel_gt, rel_pred = joints_gt - joints_gt[pelvis], joints_pred - joints_pred[pelvis]
    assert out["mpjpe"] == pytest.approx([np.linalg.norm(rel_pred[keep] - rel_gt[keep], axis=1).mean() * 1000])
    assert out["pa_mpjpe"] == pytest.approx([umeyama_error_mm(joints_pred[keep], joints_gt[keep])], rel=1e-6)
    assert out["mpvpe"] == pytest.approx(
        [np.linalg.norm(pred - joints_pred[pelvis] - (gt - joints_gt[pelvis]), axis=1).mean() * 1000]
    )
    assert out["pa_mpvpe"] == pytest.approx([umeyama_error_mm(pred, gt)], rel=1e-6)
    smpl_regressor = rng.random((len(H36M_JOINTS), 40))  # a GT of another topology: joint metrics only
    assert set(h36m_joint_metrics(pred[None], random_mesh(8, 40)[None], regressor, smpl_regressor)) == {
        "mpjpe",
        "pa_mpjpe",
    }


def test_ehf_joint_metrics_against_independent_values() -> None:
    rng = np.random.default_rng(9)
    j14, hands = rng.random((14, NUM_VERTICES)), {s: rng.random((21, NUM_VERTICES)) for s in ("left", "right")}
    gt = random_mesh(10)
    pred = gt + rng.normal(scale=0.01, size=gt.shape)
    out = ehf_joint_metrics(pred[None], gt[None], j14, hands)
    assert out["pa_mpjpe_body"] == pytest.approx([umeyama_error_mm(j14 @ pred, j14 @ gt)], rel=1e-6)
    expected = np.mean([umeyama_error_mm(hands[s] @ pred, hands[s] @ gt) for s in ("left", "right")])
    assert out["pa_mpjpe_hand"] == pytest.approx([expected], rel=1e-6)


def test_report_writes_the_table_and_json(tmp_path: Path) -> None:
    table, path = report({"mpvpe_all": [10.0, 20.0], "pa_mpvpe_all": [1.0, 3.0]}, "EHF", tmp_path, split="test")
    assert path == tmp_path / "result" / "EHF" / "metrics.json"
    saved = json.loads(path.read_text())
    assert saved["metrics"] == {"mpvpe_all": 15.0, "pa_mpvpe_all": 2.0} and saved["split"] == "test"
    assert METRIC_LABELS["mpvpe_all"] in table and "15.00" in table and "2 samples" in table
