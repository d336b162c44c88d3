"""A dataset with one split (FFHQ) is tested on a held-out folder through data.test_split=train: as a test set,
without augmentation and with the evaluation keys, while the same split trains with augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data import build_dataset, build_testset
from main.config import load_config


def test_a_train_named_split_under_test_is_not_augmented_and_carries_the_ground_truth(
    tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    from data.Synthetic import make_ffhq

    make_ffhq(tmp_path, 2, seed=5, human_model_path=synthetic_body_model_dir, progress=False)
    roots = f"data.dataset_roots={{FFHQ: {tmp_path / 'data'}}}"
    overrides = [f"human_model_path={synthetic_body_model_dir}", roots, "data.test_split=train"]
    cfg = load_config("pose2pose_face", overrides)
    testset, trainset = build_testset(cfg), build_dataset("FFHQ", "train", cfg)
    assert not testset.is_train and trainset.is_train
    shapes = testset.targets.sample_shapes("test")
    _, targets, meta = testset[0]
    assert targets["flame_mesh_cam"].shape == shapes["flame_mesh_cam"] and float(meta["flame_mesh_valid"]) == 1.0
    seen = []
    for epoch in (0, 1, 2):
        testset.set_epoch(epoch)
        trainset.set_epoch(epoch)
        seen.append((testset[0][0]["img"].numpy(), trainset[0][0]["img"].numpy()))
    assert all(np.array_equal(seen[0][0], test_img) for test_img, _ in seen)  # no augmentation under test
    assert not all(np.array_equal(seen[0][1], train_img) for _, train_img in seen)  # augmented in training
