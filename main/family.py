"""What a model family provides to the engine, the demo and the tools: one `Family` record of hooks.

A family is one system of the lineage (Hand4Whole's whole-body model, a Pose2Pose part model, later Integral,
V2V-PoseNet, triangulation). `common/engine` (trainer, tester) and `demo/` call these hooks and name no family's
keys; main/model.py lists the families in one explicit dict (`FAMILIES`), selected by `model.arch`. The family's
sample contract and target building live in data/targets/ under the same name (`data.targets.TARGETS`), its
evaluators in the datasets it is tested on (`BaseDataset.evaluate`). docs/extending.md says how to add one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from torch import Tensor, nn

__all__ = ["Family", "MeshView", "TrainingPicture", "all_parameters"]


@dataclass(frozen=True)
class MeshView:
    """How to show a mesh family's prediction (demo renders, training pictures).

    Attributes:
        mesh_key: the test-mode output key of the (B, V, 3) camera-frame mesh, metres.
        faces: (F, 3) int64 triangles of that mesh.
        camera_hw: (H, W) pixels that `model.focal` / `model.princpt` refer to: Hand4Whole's body input (its
            input crop is larger), a part model's input crop itself.
        param_keys: the demo's parameter-file names -> test-mode output keys (axis-angle radians, coefficients,
            cam_trans metres).
        params_file: the demo's parameter file name (Hand4Whole's 'smplx_param.json'; 'mano_param.json', ...).
        takes_hand_side: the model reads inputs['is_left'] (the hand model mirrors left hands in and out).
    """

    mesh_key: str
    faces: np.ndarray
    camera_hw: tuple[int, int]
    param_keys: dict[str, str]
    params_file: str
    takes_hand_side: bool = False

    def crop_camera(self, focal: Sequence[float], princpt: Sequence[float],
                    crop_hw: Sequence[int]) -> tuple[tuple[float, float], tuple[float, float]]:  # fmt: skip
        """(focal, princpt) of the virtual camera in pixels of a crop of `crop_hw` covering the camera's image."""
        scale_x, scale_y = crop_hw[1] / self.camera_hw[1], crop_hw[0] / self.camera_hw[0]
        return ((float(focal[0]) * scale_x, float(focal[1]) * scale_y),
                (float(princpt[0]) * scale_x, float(princpt[1]) * scale_y))  # fmt: skip


class TrainingPicture(Protocol):
    """Draws what a model predicts on a few training inputs, for TensorBoard (common/engine/trainer.py)."""

    def draw(self, model: nn.Module, inputs: dict[str, Tensor]) -> np.ndarray | None:
        """(H, W, 3) uint8 picture of the model's test-mode predictions on `inputs` (the model is already in eval
        mode, under no_grad), or None when it cannot be drawn this time."""
        ...

    def close(self) -> None:
        """Frees what `draw` holds (e.g. an offscreen renderer)."""
        ...


def all_parameters(model: nn.Module, cfg: Any) -> Iterable[nn.Parameter] | list[dict[str, Any]]:
    """The default optimizer parameters: every parameter of the model at `train.lr`."""
    return model.parameters()


@dataclass(frozen=True)
class Family:
    """One model family's hooks. All callables are module-level, so a `Family` pickles to spawned processes.

    Attributes:
        name: the `model.arch` value that selects it.
        summary: one line for listings and errors.
        build_model: (cfg, mode 'train' | 'test') -> the network on the CPU; 'train' applies the family's init.
        make_picture: cfg -> its `TrainingPicture`.
        mesh_view: cfg -> its `MeshView`, for families whose prediction is a mesh (the demo needs one); None else.
        param_groups: (model, cfg) -> parameters or torch parameter groups (per-module learning rates).
        collate_fn: a DataLoader collate function where batches are not plain stacks (multi-view); None for the
            default.
        default_configs: the yaml overlays of main/configs/ made for this family (for listings and docs).
    """

    name: str
    summary: str
    build_model: Callable[[Any, str], nn.Module]
    make_picture: Callable[[Any], TrainingPicture]
    mesh_view: Callable[[Any], MeshView] | None = None
    param_groups: Callable[[nn.Module, Any], Iterable[nn.Parameter] | list[dict[str, Any]]] = all_parameters
    collate_fn: Callable[[Sequence[Any]], Any] | None = None
    default_configs: tuple[str, ...] = field(default_factory=tuple)
