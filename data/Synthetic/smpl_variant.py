"""The SMPL variant of the synthetic AGORA layout: per person, SMPL parameters of the stand-in's SMPL that put its
body where the rendered SMPL-X body is. A pseudo-GT, as AGORA's own SMPL fits are fits of its SMPL-X bodies.

The stand-in builds SMPL from the same parts and skeleton as SMPL-X (common/body_models/synthetic/models.py):
SMPL's joints 0-21 are SMPL-X's 22 body joints with the same rest frames, and its two hand joints (L_Hand,
R_Hand) sit at the middle-finger knuckles, children of the wrists. So, in the camera frame:

* global_orient and body_pose[:63] (the 21 body joints): the SMPL-X parameters' own;
* body_pose[63:69], the two hand joints: zero, a flat hand. The Pose2Pose body model predicts them as zero and
  its targets mask them (smpl_pose_valid), so the GT mesh stays one the model can produce; SMPL-X's fingers
  (their mean pose plus the hand pose) have no SMPL counterpart beyond this one joint per hand;
* betas: the same 10. Both shape spaces are built from the same shape fields of the same parts; on the stand-in
  the rest joints of a beta differ by at most 0.7 mm between the two models (per unit beta; the joints move up
  to 23 mm per unit), and with betas in +-2 SMPL's rest joints are within 2.2 mm of SMPL-X's (0.2 mm on
  average; the hips differ most), so a least-squares refit of the betas has nothing to gain;
* transl: SMPL's pelvis on SMPL-X's pelvis. The root turns about the pelvis J0, which depends on the shape only,
  so SMPL's pelvis is J0_smpl + transl whatever the pose: transl = pelvis_smplx_cam - J0_smpl.

`joint_gaps` measures the result by joint name (`GAP_GROUPS`); data/Synthetic's tests bound it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import torch

from common.body_models.joint_sets import SMPLX_OUTPUT
from common.body_models.layers import BodyModels
from common.body_models.part_joints import SMPL_OUTPUT
from data.AGORA.fits import FIT_VARIANTS

__all__ = ["GAP_GROUPS", "SMPLX_NAME_OF", "joint_gaps", "smpl_annotation", "smpl_document", "smpl_params"]

NUM_HAND_JOINT_VALUES = 6  # SMPL's body_pose ends with L_Hand and R_Hand (3 axis-angle values each)
SMPLX_NAME_OF: Mapping[str, str] = {"L_Hand": "L_Middle_1", "R_Hand": "R_Middle_1"}
"""SMPL joint -> the SMPL-X joint at the same place, where the names differ (the stand-in's hand joints)."""
GAP_GROUPS: Mapping[str, tuple[str, ...]] = {
    "skeleton": SMPL_OUTPUT.names[:24],
    "keypoints": tuple(n for n in SMPL_OUTPUT.names[24:] if not n.endswith("_4")),  # nose, eyes, ears, feet
    "fingertips": tuple(n for n in SMPL_OUTPUT.names[24:] if n.endswith("_4")),  # flat in SMPL, posed in SMPL-X
}
"""The joints of SMPL's 45 outputs compared with SMPL-X's, by group."""
_SMPLX_KEYS = ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose",
               "right_hand_pose", "betas", "expression", "transl")  # fmt: skip


def _tensors(params: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(params[k], np.float32).reshape(1, -1)) for k in keys}


def pose_smplx(body_models: BodyModels, gender: str, params: Mapping[str, Any]) -> np.ndarray:
    """(144, 3) float64 SMPL-X output joints of ``smplx_params_cam`` values, camera metres."""
    with torch.no_grad():
        return body_models.smplx(gender)(**_tensors(params, _SMPLX_KEYS)).joints[0].double().numpy()


def pose_smpl(body_models: BodyModels, gender: str, params: Mapping[str, Any]) -> np.ndarray:
    """(45, 3) float64 SMPL output joints of ``smpl_params_cam`` values, camera metres."""
    with torch.no_grad():
        inputs = _tensors(params, ("global_orient", "body_pose", "betas", "transl"))
        return body_models.smpl(gender)(**inputs).joints[0].double().numpy()


def smpl_params(body_models: BodyModels, gender: str, smplx_params: Mapping[str, Any]) -> dict[str, list[float]]:
    """A ``smpl_params_cam`` record for a person's written ``smplx_params_cam`` record (module docstring).

    Args:
        body_models: the stand-in (or any tree whose SMPL shares SMPL-X's body skeleton).
        gender: the layer both models are posed with.
        smplx_params: the SMPL-X record as written (flat lists; axis-angle radians, metres, camera frame).

    Returns:
        {'global_orient' (3), 'body_pose' (69), 'betas' (10), 'transl' (3)}: flat lists of float32 values.
    """
    body_pose = np.concatenate([np.asarray(smplx_params["body_pose"], np.float64), np.zeros(NUM_HAND_JOINT_VALUES)])
    rest = {"global_orient": np.zeros(3), "body_pose": np.zeros(69), "betas": smplx_params["betas"],
            "transl": np.zeros(3)}  # fmt: skip
    pelvis_smpl_rest = pose_smpl(body_models, gender, rest)[0]  # J0 of SMPL for these betas
    pelvis_smplx_cam = pose_smplx(body_models, gender, smplx_params)[0]
    arrays = {"global_orient": smplx_params["global_orient"], "body_pose": body_pose, "betas": smplx_params["betas"],
              "transl": pelvis_smplx_cam - pelvis_smpl_rest}  # fmt: skip
    return {k: [float(x) for x in np.asarray(v, dtype=np.float32).reshape(-1)] for k, v in arrays.items()}


def joint_gaps(
    body_models: BodyModels, gender: str, smplx_params: Mapping[str, Any], smpl_params: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """How far a person's SMPL joints are from its SMPL-X joints of the same name, per `GAP_GROUPS` group.

    Returns:
        group -> (K,) float64 distances in metres, in the group's order.
    """
    joints_smplx = pose_smplx(body_models, gender, smplx_params)  # (144, 3)
    joints_smpl = pose_smpl(body_models, gender, smpl_params)  # (45, 3)
    gaps = {}
    for group, names in GAP_GROUPS.items():
        ours = joints_smpl[SMPL_OUTPUT.indices(names)]
        theirs = joints_smplx[SMPLX_OUTPUT.indices(SMPLX_NAME_OF.get(n, n) for n in names)]
        gaps[group] = np.linalg.norm(ours - theirs, axis=1)
    return gaps


def smpl_annotation(annotation: Mapping[str, Any], image: Mapping[str, Any]) -> dict[str, Any]:
    """The SMPL variant of an SMPL-X annotation entry: the same keys in the same order, smplx_param_path replaced
    by smpl_param_path (the person's ``smpl_params_cam`` file); boxes, camera and labels are the person's.

    Args:
        annotation: the SMPL-X entry. image: its image's entry, whose file_name_3840x2160 names AGORA's image
            folder and image (as data/AGORA reads them).
    """
    smplx_key, smpl = FIT_VARIANTS["smplx"].path_key, FIT_VARIANTS["smpl"]
    name = PurePosixPath(image["file_name_3840x2160"])
    path = smpl.params_path(name.parent.name, name.stem, annotation["person_id"])
    return {(smpl.path_key if k == smplx_key else k): (path if k == smplx_key else v) for k, v in annotation.items()}


def smpl_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """AGORA_<split>_SMPL.json's content from AGORA_<split>_SMPLX.json's: the same images, ids and boxes."""
    images = {image["id"]: image for image in document["images"]}
    annotations = [smpl_annotation(ann, images[ann["image_id"]]) for ann in document["annotations"]]
    return {**document, "annotations": annotations}
