"""What every family's target builder provides to the shared per-sample pipeline (data/dataset.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from common.body_models.layers import BodyModels
from common.utils.augmentation import AugParams
from common.utils.targets import TargetSpace
from data.record import Record

if TYPE_CHECKING:
    from data.dataset import BaseDataset

__all__ = ["EvalExtra", "TargetBuilder"]

EvalExtra = tuple[str, str, str]
"""(where: 'targets' | 'meta_info', the key there, the key `evaluate` reads it under)."""


class TargetBuilder:
    """Turns a parsed, cropped record into one family's inputs, targets and masks (its sample contract).

    Subclasses set `crop` and implement `build`, `sample_shapes` and `evaluate`.

    Args:
        cfg: the whole config (reads cfg.model for the geometry).
        body_models: the body-model layers.
    """

    crop: ClassVar[str] = "body"  # what the crop box frames (data.record.CROPS)
    eval_extras: ClassVar[tuple[EvalExtra, ...]] = ()  # ground truth the tester hands `evaluate`

    def __init__(self, cfg: Any, body_models: BodyModels) -> None:
        self.cfg, self.body_models = cfg, body_models
        self.space = TargetSpace.from_model_config(cfg.model)

    def crop_box(self, dataset: BaseDataset, record: Record) -> np.ndarray:
        """(4,) x, y, w, h image pixels that the crop frames (before augmentation): the record's box by default."""
        return np.asarray(record.bbox_xywh_img, dtype=np.float64)

    def build(
        self, dataset: BaseDataset, record: Record, img2crop: np.ndarray, aug: AugParams
    ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(extra inputs beside 'img', targets, meta_info) of one record.

        Args:
            dataset: the dataset the record comes from (its class attributes say how its joints map).
            record: the record, labels loaded.
            img2crop: (2, 3) original-image pixels -> crop pixels, the flip included.
            aug: the sample's augmentation.
        """
        raise NotImplementedError

    def sample_shapes(self, split: str) -> dict[str, tuple[int, ...]]:
        """Every key of the contract and its shape (train split; other splits add the eval keys)."""
        raise NotImplementedError

    def evaluate(self, dataset: BaseDataset, outs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, list[float]]:
        """The family's default metrics of a batch (per-sample values in mm); datasets may override theirs."""
        raise NotImplementedError
