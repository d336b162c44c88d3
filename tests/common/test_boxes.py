"""Box formats: xywh <-> xyxy round trips on numpy and torch, with batch dimensions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.geometry import box_center_size, xywh_to_xyxy, xyxy_to_xywh


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_xywh_xyxy_round_trip_and_values(lib: str) -> None:
    boxes = np.array([[[10.0, 20.0, 30.0, 40.0], [0.5, 1.5, 2.0, 4.0]]])  # (1, 2, 4) xywh
    boxes = torch.as_tensor(boxes) if lib == "torch" else boxes
    xyxy = xywh_to_xyxy(boxes)
    assert type(xyxy) is type(boxes) and tuple(xyxy.shape) == (1, 2, 4)
    np.testing.assert_allclose(np.asarray(xyxy)[0, 0], [10.0, 20.0, 40.0, 60.0])
    np.testing.assert_allclose(np.asarray(xyxy_to_xywh(xyxy)), np.asarray(boxes))
    center, size = box_center_size(xyxy)
    np.testing.assert_allclose(np.asarray(center)[0, 0], [25.0, 40.0])
    np.testing.assert_allclose(np.asarray(size)[0, 1], [2.0, 4.0])
