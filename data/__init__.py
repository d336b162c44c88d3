"""Datasets by Hand4Whole's names, chosen through one explicit dict, and the train/test set builders.

Whole-body sets (person crops: Hand4Whole, the Pose2Pose body model): AGORA, EHF, Human36M, MPII, MSCOCO,
PW3D, MPI_INF_3DHP. Part sets (Pose2Pose): FreiHAND and InterHand26M (hands), FFHQ (faces); MSCOCO also makes
hand and face crops.

`DATASETS` maps each name of ``cfg.data.trainset_3d``, ``trainset_2d`` and ``testset`` to its class
(data/<NAME>/<NAME>.py, a `data.dataset.BaseDataset`). Nothing is selected by exec/eval or by a
registry that import order fills.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from data.AGORA.AGORA import AGORA
from data.CMUPanoptic.CMUPanoptic import CMUPanoptic
from data.dataset import BaseDataset, MultipleDatasets
from data.EHF.EHF import EHF
from data.FFHQ.FFHQ import FFHQ
from data.FreiHAND.FreiHAND import FreiHAND
from data.Human36M.Human36M import Human36M
from data.Human36MMultiView.Human36MMultiView import Human36MMultiView
from data.InterHand26M.InterHand26M import InterHand26M
from data.MPI_INF_3DHP.MPI_INF_3DHP import MPI_INF_3DHP
from data.MPII.MPII import MPII
from data.MSCOCO.MSCOCO import MSCOCO
from data.MSRA.MSRA import MSRA
from data.PW3D.PW3D import PW3D
from data.VoxelH5.VoxelH5 import VoxelH5

__all__ = ["DATASETS", "build_dataset", "build_testset", "build_trainset"]

DATASETS: dict[str, type[BaseDataset] | type[Dataset]] = {  # MSRA, VoxelH5, multi-view: torch Datasets of their own
    "AGORA": AGORA,
    "EHF": EHF,
    "Human36M": Human36M,
    "MPII": MPII,
    "MSCOCO": MSCOCO,
    "PW3D": PW3D,
    "MPI_INF_3DHP": MPI_INF_3DHP,
    "FFHQ": FFHQ,
    "FreiHAND": FreiHAND,
    "InterHand26M": InterHand26M,
    "MSRA": MSRA,  # depth maps (the v2v family), a torch Dataset of its own sample: data/MSRA/MSRA.py
    "VoxelH5": VoxelH5,  # HDF5 voxel grids (the v2v family): data/VoxelH5/VoxelH5.py
    "Human36MMultiView": Human36MMultiView,  # multi-view (triangulation family): data/multiview.py
    "CMUPanoptic": CMUPanoptic,  # multi-view (triangulation family): data/multiview.py
}
"""Dataset name (as in the config) -> its class."""


def build_dataset(name: str, split: str, cfg: Any, evaluation: bool = False) -> BaseDataset:
    """One dataset by name.

    Args:
        name: a key of `DATASETS`, e.g. 'AGORA'.
        split: one of the class's ``SPLITS``.
        cfg: the whole config (main.config.Config).
        evaluation: the split is tested (no augmentation, evaluation keys), even one named 'train'.

    Raises:
        ValueError: an unknown name (the message lists the known ones) or split.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](split, cfg, evaluation=evaluation)


def build_trainset(cfg: Any) -> Dataset:
    """Hand4Whole's training mixture of ``cfg.data.trainset_3d`` and ``cfg.data.trainset_2d`` ('train' split).

    Each group is concatenated; when both groups are non-empty they are mixed in equal shares
    (`MultipleDatasets` with make_same_len), so an epoch draws about as many 3D as 2D samples.

    Raises:
        ValueError: no training set configured, or an unknown name.
    """
    groups = [[build_dataset(name, "train", cfg) for name in names]
              for names in (cfg.data.trainset_3d, cfg.data.trainset_2d)]  # fmt: skip
    concatenated = [MultipleDatasets(dbs, make_same_len=False, seed=cfg.train.seed) for dbs in groups if dbs]
    if not concatenated:
        raise ValueError("no training set: data.trainset_3d and data.trainset_2d are both empty")
    if len(concatenated) == 1:
        return concatenated[0]
    return MultipleDatasets(concatenated, make_same_len=True, seed=cfg.train.seed)


def build_testset(cfg: Any) -> BaseDataset:
    """``cfg.data.testset`` on ``cfg.data.test_split``, by default its test split (the class's ``TEST_SPLIT``;
    AGORA: 'validation', as Hand4Whole)."""
    name = cfg.data.testset
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return build_dataset(name, cfg.data.test_split or DATASETS[name].TEST_SPLIT, cfg, evaluation=True)
