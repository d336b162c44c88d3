"""Human3.6M protocols against independent computations (scipy's orthogonal Procrustes, a hand-written Umeyama),
hand-computed per-action tables, result-file round trips and the flip test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from common.utils.h36m_protocols import (
    ACTION_NAMES,
    AVERAGE_ACTIONS_ROW,
    AVERAGE_FRAMES_ROW,
    EVAL_JOINTS,
    FLIP_PAIRS,
    PROTOCOL_NOTE,
    RESULT_FILES,
    action_index_from_folder,
    align_prediction,
    flip_test_average,
    format_action_tables,
    mirror_joints_cam,
    mirror_joints_hm,
    parse_action_tables,
    per_action_table,
    protocol_errors,
    read_kpt_file,
    write_result_files,
)

NUM_JOINTS = 18  # 17 Human3.6M joints + Thorax


def _skeletons(seed: int, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Seeded GT skeletons (metres, ~4 m in front of the camera) and noisy, rotated, shifted predictions."""
    rng = np.random.default_rng(seed)
    gt = rng.normal(scale=0.3, size=(n, NUM_JOINTS, 3)) + np.array([0.0, 0.0, 4.0])
    gt[:, 17] = (gt[:, 11] + gt[:, 14]) / 2  # Thorax = mean of the shoulders
    rot = Rotation.random(n, random_state=seed).as_matrix()
    pred = np.einsum("nij,nkj->nki", rot, gt) * rng.uniform(0.8, 1.2, size=(n, 1, 1))
    pred += rng.normal(scale=0.03, size=pred.shape) + rng.normal(scale=0.5, size=(n, 1, 3))
    return pred, gt


def _reference_errors(pred: np.ndarray, gt: np.ndarray, align: str) -> np.ndarray:
    """Per-sample mm, written independently: root-align, fit on all 18 joints, average over the 17."""
    out = []
    for p, g in zip(pred, gt, strict=True):
        p, g = p - p[0], g - g[0]
        if align != "none":
            mu_p, mu_g = p.mean(0), g.mean(0)
            a, b = p - mu_p, g - mu_g
            if align == "rigid":
                # scipy: R minimising ||a R - b||_F over orthogonal R (no scale); a proper rotation for these inputs.
                r, _ = orthogonal_procrustes(a, b)
                assert np.linalg.det(r) > 0
                p = a @ r + mu_g
            else:
                # Umeyama 1991, by hand: cov = b^T a / n, U D V^T = svd(cov), S fixes reflections.
                cov = b.T @ a / len(a)
                u, d, vt = np.linalg.svd(cov)
                s = np.eye(3)
                s[2, 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
                rot = u @ s @ vt
                scale = np.trace(np.diag(d) @ s) / (a**2).sum(1).mean()
                p = scale * a @ rot.T + mu_g
        out.append(np.linalg.norm(p[:17] - g[:17], axis=-1).mean() * 1000.0)
    return np.array(out)


@pytest.mark.parametrize("align", ["none", "rigid", "similarity"])
@pytest.mark.parametrize("seed", [0, 1])
def test_protocol_errors_match_independent_computation(align: str, seed: int) -> None:
    pred, gt = _skeletons(seed)
    ours = protocol_errors(pred, gt, root_index=0, align=align)
    assert ours.shape == (len(pred),)
    np.testing.assert_allclose(ours, _reference_errors(pred, gt, align), rtol=1e-9, atol=1e-9)


def test_protocol_errors_torch_float32_input_matches() -> None:
    pred, gt = _skeletons(2)
    ours = protocol_errors(
        torch.tensor(pred, dtype=torch.float32), torch.tensor(gt, dtype=torch.float32), align="rigid"
    )
    np.testing.assert_allclose(ours, _reference_errors(pred, gt, "rigid"), atol=1e-3)


def test_rigid_motion_of_gt_gives_zero_only_after_alignment() -> None:
    _, gt = _skeletons(3)
    rot = Rotation.random(len(gt), random_state=3).as_matrix()
    moved = np.einsum("nij,nkj->nki", rot, gt) + np.array([0.3, -0.2, 1.0])
    assert np.all(protocol_errors(moved, gt, align="rigid") < 1e-6)
    assert np.all(protocol_errors(moved, gt, align="similarity") < 1e-6)
    assert np.all(protocol_errors(moved, gt, align="none") > 1.0)


def test_scaled_gt_gives_zero_only_for_similarity() -> None:
    _, gt = _skeletons(4)
    scaled = gt * 1.1 + np.array([0.1, 0.0, 0.0])
    assert np.all(protocol_errors(scaled, gt, align="similarity") < 1e-6)
    assert np.all(protocol_errors(scaled, gt, align="rigid") > 1.0)
    # The root-aligned error of a 10 % larger skeleton is 10 % of the mean root-relative joint distance.
    expected = 0.1 * np.linalg.norm(gt[:, :17] - gt[:, :1], axis=-1).mean(-1) * 1000.0
    np.testing.assert_allclose(protocol_errors(scaled, gt, align="none"), expected, rtol=1e-9)


def test_thorax_excluded_from_the_error_but_used_by_the_fit() -> None:
    pred, gt = _skeletons(5, n=1)
    moved = pred.copy()
    moved[:, 17] += 5.0  # a wild Thorax: no effect on MPJPE, an effect on the rigid fit
    np.testing.assert_allclose(protocol_errors(moved, gt), protocol_errors(pred, gt))
    assert not np.allclose(protocol_errors(moved, gt, align="rigid"), protocol_errors(pred, gt, align="rigid"))
    fit_17 = protocol_errors(moved, gt, align="rigid", fit_joints=EVAL_JOINTS)
    np.testing.assert_allclose(fit_17, protocol_errors(pred, gt, align="rigid", fit_joints=EVAL_JOINTS))


def test_align_prediction_is_root_relative_and_validates() -> None:
    pred, gt = _skeletons(6, n=2)
    aligned, gt_rooted = align_prediction(pred, gt, align="none")
    np.testing.assert_allclose(aligned[:, 0], 0.0)
    np.testing.assert_allclose(gt_rooted, gt - gt[:, :1])
    with pytest.raises(ValueError, match="align"):
        align_prediction(pred, gt, align="scaled")
    with pytest.raises(ValueError, match="shape|must"):
        align_prediction(pred[:, :17], gt)


def test_action_names_and_folder_indices() -> None:
    assert len(ACTION_NAMES) == 15
    assert ACTION_NAMES[0] == "Directions" and ACTION_NAMES[10] == "Photo" and ACTION_NAMES[-1] == "WalkTogether"
    assert action_index_from_folder("s_11_act_02_subact_01_ca_01") == 0
    assert action_index_from_folder("data/s_09_act_16_subact_02_ca_04/s_09_act_16_subact_02_ca_04_000065.jpg") == 14
    with pytest.raises(ValueError):
        action_index_from_folder("s_11_act_01_subact_01_ca_01")
    with pytest.raises(ValueError):
        action_index_from_folder("image_000001.jpg")


def test_per_action_table_hand_computed() -> None:
    # 3 frames of action 0 (10, 20, 30 mm -> 20), 1 frame of action 2 (50 mm); the others absent.
    errors = np.array([10.0, 50.0, 20.0, 30.0])
    actions = np.array([0, 2, 0, 0])
    rows, frame_average, action_mean = per_action_table(errors, actions)
    assert len(rows) == 15
    assert rows[0] == ("Directions", 3, 20.0)
    assert rows[2] == ("Eating", 1, 50.0)
    assert rows[1].frames == 0 and np.isnan(rows[1].error_mm)
    assert frame_average == pytest.approx(27.5) == pytest.approx(errors.mean())  # (10+50+20+30)/4
    assert action_mean == pytest.approx(35.0)  # (20+50)/2: differs for unequal counts
    with pytest.raises(ValueError):
        per_action_table(errors, np.array([0, 15, 0, 0]))
    with pytest.raises(ValueError):
        per_action_table(errors, actions[:3])


def test_per_action_table_equal_counts_agree() -> None:
    rng = np.random.default_rng(7)
    errors = rng.uniform(20, 80, size=45)
    actions = np.repeat(np.arange(15), 3)
    table = per_action_table(errors, actions)
    assert table.frame_weighted_average == pytest.approx(errors.mean())
    assert table.action_mean == pytest.approx(errors.mean())


def _tables(seed: int) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    pred, gt = _skeletons(seed, n=30)
    actions = np.arange(30) % 15
    actions[:7] = 3  # unequal counts
    tables = {
        "P1_PA-MPJPE_S11": per_action_table(protocol_errors(pred, gt, align="rigid"), actions),
        "P2_MPJPE_S9+S11": per_action_table(protocol_errors(pred, gt, align="none"), actions),
    }
    return tables, pred, gt, actions


def test_format_and_parse_action_tables() -> None:
    tables, *_ = _tables(8)
    text = format_action_tables(tables)
    assert text.startswith(f"# {PROTOCOL_NOTE}\n")
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(body) == 1 + 15 + 2
    assert len({len(line) for line in body}) == 1  # fixed width
    parsed = parse_action_tables(text)
    assert set(parsed) == set(tables)
    for label, table in tables.items():
        for row in table.rows:
            assert parsed[label][row.name] == pytest.approx(round(row.error_mm, 2), abs=1e-9)
        assert parsed[label][AVERAGE_FRAMES_ROW] == pytest.approx(round(table.frame_weighted_average, 2), abs=1e-9)
        assert parsed[label][AVERAGE_ACTIONS_ROW] == pytest.approx(round(table.action_mean, 2), abs=1e-9)
    with pytest.raises(ValueError):
        format_action_tables({"has space": next(iter(tables.values()))})


def test_result_files_round_trip(tmp_path) -> None:
    tables, pred, gt, _ = _tables(9)
    pred_aligned, gt_rooted = align_prediction(pred, gt, align="rigid")
    pred_rooted = pred - pred[:, :1]
    text = format_action_tables(tables)
    paths = write_result_files(tmp_path / "result", pred_rooted * 1000, pred_aligned * 1000, gt_rooted * 1000, text)
    assert sorted(paths) == sorted(RESULT_FILES)
    for name, array in (("pred_3d_kpt.txt", pred_rooted), ("pred_3d_kpt_align.txt", pred_aligned),
                        ("gt_3d_kpt.txt", gt_rooted)):  # fmt: skip
        back = read_kpt_file(paths[name])
        assert back.shape == (30, NUM_JOINTS, 3)
        np.testing.assert_allclose(back, array * 1000, atol=5e-4 + 1e-9)  # '%.3f' rounds to 0.0005 mm
    first_line = paths["gt_3d_kpt.txt"].read_text().splitlines()[0]
    assert first_line.endswith(" ") and len(first_line.split()) == NUM_JOINTS * 3  # upstream's '%.3f ' format
    assert paths["eval_result.txt"].read_text() == text
    # The numbers recomputed from the files equal the printed ones (to the printed 2 decimals).
    errors = np.linalg.norm(read_kpt_file(paths["pred_3d_kpt_align.txt"])[:, :17]
                            - read_kpt_file(paths["gt_3d_kpt.txt"])[:, :17], axis=-1).mean(-1)  # fmt: skip
    printed = parse_action_tables(paths["eval_result.txt"].read_text())["P1_PA-MPJPE_S11"][AVERAGE_FRAMES_ROW]
    assert errors.mean() == pytest.approx(printed, abs=0.006)
    assert not [p for p in (tmp_path / "result").iterdir() if p.name not in RESULT_FILES]  # no temporary left
    with pytest.raises(ValueError):
        write_result_files(tmp_path, pred_rooted, pred_aligned[:3], gt_rooted, text)


def test_read_kpt_file_rejects_ragged(tmp_path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("1.000 2.000 3.000 \n1.000 2.000 \n")
    with pytest.raises(ValueError):
        read_kpt_file(path)


def test_mirror_cam_is_an_involution_and_swaps_pairs() -> None:
    pred, _ = _skeletons(10, n=3)
    rooted = pred - pred[:, :1]
    mirrored = mirror_joints_cam(rooted)
    np.testing.assert_allclose(mirror_joints_cam(mirrored), rooted)
    for i, j in FLIP_PAIRS:
        np.testing.assert_allclose(mirrored[:, i], rooted[:, j] * np.array([-1, 1, 1]))
    np.testing.assert_allclose(mirrored[:, [0, 7, 8, 9, 10, 17], 1:], rooted[:, [0, 7, 8, 9, 10, 17], 1:])
    assert isinstance(mirror_joints_cam(torch.tensor(rooted)), torch.Tensor)


def test_mirror_hm_conventions() -> None:
    joints = np.zeros((18, 3))
    joints[1] = [0.0, 5.0, 1.0]  # R-hip at the first column
    mirrored = mirror_joints_hm(joints, FLIP_PAIRS, 64)
    np.testing.assert_allclose(mirrored[4], [63.0, 5.0, 1.0])  # becomes L-hip at the last column (W - 1 - x)
    np.testing.assert_allclose(mirror_joints_hm(joints, FLIP_PAIRS, 64, index_centres=False)[4], [64.0, 5.0, 1.0])
    np.testing.assert_allclose(mirror_joints_hm(mirrored, FLIP_PAIRS, 64), joints)


@pytest.mark.parametrize("width", [None, 64])
def test_flip_average_of_own_mirror_returns_prediction(width) -> None:
    rng = np.random.default_rng(11)
    pred = rng.uniform(0, 63, size=(4, 18, 3))
    mirror = mirror_joints_cam(pred) if width is None else mirror_joints_hm(pred, FLIP_PAIRS, width)
    np.testing.assert_allclose(flip_test_average(pred, mirror, FLIP_PAIRS, width), pred, atol=1e-12)
    pred_t = torch.tensor(pred)
    out = flip_test_average(pred_t, torch.tensor(mirror), FLIP_PAIRS, width)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, pred_t)


def test_flip_average_is_the_mean_with_the_mirrored_flip_prediction() -> None:
    rng = np.random.default_rng(12)
    pred, flipped = rng.normal(size=(2, 3, 18, 3))
    expected = (pred + mirror_joints_cam(flipped)) / 2
    np.testing.assert_allclose(flip_test_average(pred, flipped), expected)
