"""common/body_models/export_lbs.py against the smplx package's own SMPL-X forward (the oracle), on the stand-in.

The stand-in's pose-corrective blend shapes are zero, so one test fills them with random values (in both models)
to check that path too; another sweeps the neck's yaw across the contour table's rows and both clamps.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from torch import Tensor, nn

from common.body_models import get_body_models
from common.body_models.export_lbs import ExportSMPLX, rodrigues

VERTEX_TOLERANCE_M = 1e-5
# smplx's keyword arguments and their sizes (10 betas, 10 expressions, full 45-D hand poses)
INPUTS = {
    "betas": 10, "expression": 10, "global_orient": 3, "body_pose": 63, "left_hand_pose": 45,
    "right_hand_pose": 45, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3,
}  # fmt: skip


@pytest.fixture(scope="module")
def smplx_layer(synthetic_body_model_dir: Path) -> nn.Module:
    return get_body_models(synthetic_body_model_dir).smplx("neutral")


def random_inputs(batch: int, seed: int, pose_scale: float = 0.6) -> dict[str, Tensor]:
    """Shapes and expressions N(0, 1.5), joint rotations N(0, pose_scale) rad, the root anywhere up to ~pi."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {}
    for name, size in INPUTS.items():
        scale = 1.5 if name in ("betas", "expression") else (1.5 if name == "global_orient" else pose_scale)
        inputs[name] = torch.randn(batch, size, generator=generator) * scale
    return inputs


def assert_same_as_smplx(layer: nn.Module, inputs: dict[str, Tensor]) -> None:
    with torch.no_grad():
        expected = layer(**inputs)
        got = ExportSMPLX(layer)(**inputs)
    assert got.vertices.shape == expected.vertices.shape and got.joints.shape == expected.joints.shape
    assert (got.vertices - expected.vertices).abs().max() < VERTEX_TOLERANCE_M
    assert (got.joints - expected.joints).abs().max() < VERTEX_TOLERANCE_M


def test_rodrigues_matches_scipy() -> None:
    generator = torch.Generator().manual_seed(0)
    rotvecs = torch.randn(64, 3, generator=generator, dtype=torch.float64) * 1.5
    special = torch.tensor([[0.0, 0.0, 0.0], [1e-9, 0.0, 0.0], [math.pi, 0.0, 0.0], [0.0, -math.pi / 2, 0.0]])
    rotvecs = torch.cat((rotvecs, special.double()))
    expected = Rotation.from_rotvec(rotvecs.numpy()).as_matrix()
    np.testing.assert_allclose(rodrigues(rotvecs).numpy(), expected, atol=1e-12)
    assert torch.equal(rodrigues(torch.zeros(2, 5, 3)), torch.eye(3).expand(2, 5, 3, 3))


def test_vertices_and_joints_match_smplx(smplx_layer: nn.Module) -> None:
    assert_same_as_smplx(smplx_layer, random_inputs(batch=8, seed=1))
    rest = {name: torch.zeros(2, size) for name, size in INPUTS.items()}  # the mean hand pose only
    assert_same_as_smplx(smplx_layer, rest)


def test_pose_corrective_blend_shapes_match_smplx(smplx_layer: nn.Module) -> None:
    layer = copy.deepcopy(smplx_layer)
    assert layer.posedirs.abs().max() == 0  # the stand-in has none: give it some
    generator = torch.Generator().manual_seed(2)
    layer.posedirs = torch.randn(layer.posedirs.shape, generator=generator) * 2e-3
    assert_same_as_smplx(layer, random_inputs(batch=4, seed=3))


def test_contour_landmarks_follow_the_neck_yaw_like_smplx(smplx_layer: nn.Module) -> None:
    # Yaw of the neck chain from -70 to +70 degrees (quarter-degree offsets keep clear of rounding ties): every
    # table row on both sides and both clamps. The root stays upright so that only the chain's yaw varies.
    yaws_deg = torch.arange(-70.0, 71.0, 3.0) + 0.25
    batch = len(yaws_deg)
    inputs = {name: torch.zeros(batch, size) for name, size in INPUTS.items()}
    spine_yaw = torch.deg2rad(yaws_deg) / 4  # shared by spine 3, spine 6, spine 9 and the neck (12)
    body = inputs["body_pose"].view(batch, 21, 3)
    for joint in (3, 6, 9, 12):  # body_pose holds joints 1..21
        body[:, joint - 1, 1] = spine_yaw
    assert_same_as_smplx(smplx_layer, inputs)


def test_refuses_a_joint_mapper(smplx_layer: nn.Module) -> None:
    layer = copy.deepcopy(smplx_layer)
    layer.joint_mapper = nn.Identity()
    with pytest.raises(ValueError, match="joint mapper"):
        ExportSMPLX(layer)


class _Positional(nn.Module):
    """ExportSMPLX with positional inputs, for torch.onnx.export."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.body = ExportSMPLX(layer)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        out = self.body(**dict(zip(INPUTS, inputs, strict=True)))
        return out.vertices, out.joints


def test_traces_to_onnx_with_a_dynamic_batch(smplx_layer: nn.Module, tmp_path: Path) -> None:
    import onnxruntime

    path = tmp_path / "smplx.onnx"
    example = tuple(random_inputs(batch=2, seed=4).values())
    axes = {name: {0: "batch"} for name in (*INPUTS, "vertices", "joints")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation and tracer notes
        torch.onnx.export(_Positional(smplx_layer).eval(), example, str(path), dynamo=False, opset_version=17,
                          input_names=list(INPUTS), output_names=["vertices", "joints"], dynamic_axes=axes)  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        inputs = random_inputs(batch=batch, seed=10 + batch)
        vertices, joints = session.run(None, {name: value.numpy() for name, value in inputs.items()})
        with torch.no_grad():
            expected = smplx_layer(**inputs)
        np.testing.assert_allclose(vertices, expected.vertices.numpy(), atol=VERTEX_TOLERANCE_M, rtol=0)
        np.testing.assert_allclose(joints, expected.joints.numpy(), atol=VERTEX_TOLERANCE_M, rtol=0)
