"""Joint sets by name: sizes, Hand4Whole's index tables (typed here from the reference notes, as an
independent check of the name lookups), flip pairs against smplx's own joint names, remapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from smplx.joint_names import JOINT_NAMES as SMPLX_PACKAGE_JOINT_NAMES
from smplx.vertex_ids import vertex_ids as SMPLX_PACKAGE_VERTEX_IDS
from smplx.vertex_joint_selector import VertexJointSelector

from common.body_models import joint_sets as js
from common.body_models.joint_sets import JointSet, remap_joints

ALL_SETS = {name: value for name, value in vars(js).items() if isinstance(value, JointSet) and not name.startswith("_")}

# Hand4Whole's joint_idx (hand4whole-notes.md section 2.3), by part.
NOTES_JOINT_IDX = (
    [0, 1, 2, 4, 5, 7, 8, 12, 16, 17, 18, 19, 20, 21, 60, 61, 62, 63, 64, 65, 59, 58, 57, 56, 55]
    + [37, 38, 39, 66, 25, 26, 27, 67, 28, 29, 30, 68, 34, 35, 36, 69, 31, 32, 33, 70]
    + [52, 53, 54, 71, 40, 41, 42, 72, 43, 44, 45, 73, 49, 50, 51, 74, 46, 47, 48, 75]
    + [22, 15, 57, 56]
    + list(range(76, 144))
)
NOTES_ORIG_FLIP = [(1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)] + [
    (22 + k, 37 + k) for k in range(15)
]
# Hand4Whole's flip_pairs of the 137-joint set: body, hands, then the face groups of the notes.
HAND4WHOLE_FACE_FLIP = {
    "eyeballs": [(67, 68)],
    "eyebrows": [(69, 78), (70, 77), (71, 76), (72, 75), (73, 74)],
    "below nose": [(83, 87), (84, 86)],
    "eyes": [(88, 97), (89, 96), (90, 95), (91, 94), (92, 99), (93, 98)],
    "mouth": [(100, 106), (101, 105), (102, 104), (107, 111), (108, 110)],
    "lips": [(112, 116), (113, 115), (117, 119)],
    "contour": [(120 + k, 136 - k) for k in range(8)],
}
NOTES_JOINTS_FLIP = (
    [(1, 2), (3, 4), (5, 6), (8, 9), (10, 11), (12, 13), (14, 17), (15, 18), (16, 19), (20, 21), (22, 23)]
    + [(25 + k, 45 + k) for k in range(20)]
    + [pair for pairs in HAND4WHOLE_FACE_FLIP.values() for pair in pairs]
)


def smplx_style(name: str) -> str:
    """Our skeleton/keypoint name in smplx.joint_names' spelling ('L_Index_1' -> 'left_index1')."""
    special = {"L_Eyeball": "left_eye_smplhf", "R_Eyeball": "right_eye_smplhf"}
    if name in special:
        return special[name]
    name = name.removesuffix("_4").lower()  # fingertips: smplx says 'left_thumb'
    for short, long in (("l_", "left_"), ("r_", "right_")):
        if name.startswith(short):
            name = long + name[len(short) :]
    return name[:-2] + name[-1] if name[-2] == "_" and name[-1].isdigit() else name


def test_counts() -> None:
    sizes = {name: len(s) for name, s in ALL_SETS.items()}
    assert sizes == {
        "SMPLX_SKELETON": 55, "SMPLX_OUTPUT": 144, "ORIG_JOINTS": 53, "JOINTS": 137, "POS_JOINTS": 65,
        "SMPL_JOINTS": 24, "MANO_SKELETON": 16, "MANO_JOINTS": 21, "HAND_21": 21, "FLAME_SKELETON": 5,
        "FLAME_OUTPUT": 73,
    }  # fmt: skip
    assert len(js.SMPLX_OUTPUT_JOINTS) == len(SMPLX_PACKAGE_JOINT_NAMES) == 144
    assert len(js.HAND_20) == 20 and len(js.IBUG68_NAMES) == 68


@pytest.mark.parametrize("name", sorted(ALL_SETS))
def test_flip_permutations_are_involutions_mapping_sides(name: str) -> None:
    """Names are unique; the flip permutation is an involution that maps each L_* joint to its R_* joint."""
    joint_set = ALL_SETS[name]
    assert len(set(joint_set.names)) == len(joint_set)
    perm = joint_set.flip_permutation()
    np.testing.assert_array_equal(perm[perm], np.arange(len(joint_set)))
    for name, j in zip(joint_set.names, perm, strict=True):
        if name.startswith("L_") and "R_" + name[2:] in joint_set.names:
            assert joint_set.names[j] == "R_" + name[2:]
        mirrored = js.mirror_name(name)
        assert joint_set.names[j] == (mirrored if mirrored in joint_set.names else name)


def test_skeleton_and_keypoints_follow_smplx_names() -> None:
    assert [smplx_style(n) for n in js.SMPLX_OUTPUT_JOINTS[:76]] == SMPLX_PACKAGE_JOINT_NAMES[:76]
    selector = VertexJointSelector(vertex_ids=SMPLX_PACKAGE_VERTEX_IDS["smplx"])
    expected = [SMPLX_PACKAGE_VERTEX_IDS["smplx"][key] for key in js.SMPLX_VERTEX_KEYPOINTS.values()]
    assert selector.extra_joints_idxs.tolist() == expected
    assert list(js.SMPLX_VERTEX_KEYPOINTS) == list(js.SMPLX_OUTPUT_JOINTS[55:76])


def test_output_flip_pairs_match_smplx_left_right_names() -> None:
    """The face pairs come from the iBUG layout; smplx names the same landmarks left_*/right_*."""

    def swap(name: str) -> str:
        return name.replace("left", "@").replace("right", "left").replace("@", "right")

    perm = js.SMPLX_OUTPUT.flip_permutation()
    for i, j in enumerate(perm):
        assert SMPLX_PACKAGE_JOINT_NAMES[j] == swap(SMPLX_PACKAGE_JOINT_NAMES[i]), js.SMPLX_OUTPUT_JOINTS[i]


def test_ibug_mid_line_points_are_their_own_mirror() -> None:
    mid_line = {9, 28, 29, 30, 31, 34, 52, 58, 63, 67}  # chin, nose bridge and tip, lip centres
    for k, name in enumerate(js.IBUG68_NAMES, start=1):
        partner = js.mirror_name(name)
        assert js.mirror_name(partner) == name
        assert (partner == name) == (k in mid_line), k
    assert js.IBUG68_NAMES[0] == "Face_56" and js.IBUG68_NAMES[17] == "Face_5" and js.IBUG68_NAMES[-1] == "Face_55"


def test_joint_idx_is_the_reference_table() -> None:
    assert js.JOINT_IDX.tolist() == NOTES_JOINT_IDX
    spot = {"Nose": 55, "R_Eye": 56, "L_Ear": 59, "L_Thumb_4": 66, "R_Pinky_4": 75, "Face_1": 22, "Face_2": 15}
    spot |= {"Face_5": 76, "Face_56": 127}  # first static landmark, first contour landmark
    for name, output_index in spot.items():
        assert js.JOINT_IDX[js.JOINTS.index(name)] == output_index, name
    assert not js.JOINT_IDX.flags.writeable


def test_parts_and_named_indices() -> None:
    parts = js.JOINTS.parts
    assert (parts["body"], parts["lhand"], parts["rhand"]) == (range(0, 25), range(25, 45), range(45, 65))
    assert (parts["hand"], parts["face"]) == (range(25, 65), range(65, 137))
    orig = js.ORIG_JOINTS.parts
    assert (orig["body"], orig["lhand"], orig["rhand"], orig["face"]) == (
        range(0, 22), range(22, 37), range(37, 52), range(52, 53)
    )  # fmt: skip
    assert js.ORIG_JOINT_IDX.tolist() == list(range(22)) + list(range(25, 55)) + [22]
    assert js.POS_JOINTS.names == js.JOINTS.names[:65]
    assert js.POS_JOINTS.parts["L_MCP"] == js.POS_JOINTS.parts["R_MCP"] == (4, 8, 12, 16)
    lhand = js.POS_JOINTS.parts["lhand"]
    assert [js.POS_JOINTS.names[lhand[i]] for i in (4, 8, 12, 16)] == [
        "L_Index_1",
        "L_Middle_1",
        "L_Ring_1",
        "L_Pinky_1",
    ]


def test_root_wrist_neck_indices() -> None:
    """The joints that joint_cam is made relative to: pelvis (body), wrists (hands), neck (face)."""
    assert (js.ROOT_IDX, js.LWRIST_IDX, js.RWRIST_IDX, js.NECK_IDX) == (0, 12, 13, 7)
    assert [js.JOINTS.names[i] for i in (0, 12, 13, 7)] == ["Pelvis", "L_Wrist", "R_Wrist", "Neck"]


def test_flip_pairs_are_the_reference_pairs() -> None:
    assert list(js.ORIG_JOINTS.flip_pairs) == NOTES_ORIG_FLIP
    assert sorted(js.JOINTS.flip_pairs) == sorted(NOTES_JOINTS_FLIP)


def test_hand_and_face_model_orders() -> None:
    fingers = ("Index", "Middle", "Pinky", "Ring", "Thumb")
    assert js.MANO_SKELETON.names == ("Wrist", *(f"{f}_{k}" for f in fingers for k in (1, 2, 3)))
    tips = [name.split("_")[0].lower() for name in js.MANO_JOINTS.names[16:]]
    assert tips == list(SMPLX_PACKAGE_VERTEX_IDS["mano"])  # the order smplx lists MANO's tip vertices in
    assert js.HAND_21.names[:6] == ("Wrist", "Thumb_1", "Thumb_2", "Thumb_3", "Thumb_4", "Index_1")
    assert js.FLAME_OUTPUT.names[5:] == js.SMPLX_OUTPUT_JOINTS[76:]
    assert js.SMPL_JOINTS.names[:22] == js.SMPLX_SKELETON_JOINTS[:22]


def test_remap_numpy_round_trip_and_missing_names() -> None:
    rng = np.random.default_rng(0)
    pos = rng.standard_normal((2, 65, 3)).astype(np.float32)
    full, valid = remap_joints(pos, js.POS_JOINTS, js.JOINTS)
    assert full.shape == (2, 137, 3) and full.dtype == np.float32 and valid.shape == (137,)
    np.testing.assert_array_equal(valid, np.r_[np.ones(65), np.zeros(72)])
    assert not full[:, 65:].any()
    back, valid_back = remap_joints(full, js.JOINTS, js.POS_JOINTS)
    np.testing.assert_array_equal(back, pos)
    assert valid_back.all()
    # a dataset's own names: only the shared ones survive
    some, some_valid = remap_joints(pos[0, :3], ["Pelvis", "L_Hip", "R_Hip"], ["R_Hip", "Head", "Pelvis"])
    np.testing.assert_array_equal(some, [pos[0, 2], [0, 0, 0], pos[0, 0]])
    np.testing.assert_array_equal(some_valid, [1, 0, 1])


def test_remap_agrees_with_joint_idx() -> None:
    outputs = np.random.default_rng(1).standard_normal((144, 2))
    by_name, valid = remap_joints(outputs, js.SMPLX_OUTPUT, js.JOINTS)
    aliased = [js.JOINTS.index(f"Face_{k}") for k in (1, 2, 3, 4)]  # named differently in the two sets
    assert np.flatnonzero(valid == 0).tolist() == aliased
    keep = valid == 1
    np.testing.assert_array_equal(by_name[keep], outputs[js.JOINT_IDX][keep])


def test_remap_torch_keeps_dtype_device_and_gradient() -> None:
    values = torch.randn(4, 21, 3, dtype=torch.float64, requires_grad=True)
    out, valid = remap_joints(values, js.MANO_JOINTS, js.HAND_21)
    assert out.dtype == valid.dtype == torch.float64 and valid.all()
    np.testing.assert_array_equal(out.detach()[:, js.HAND_21.indices(js.MANO_JOINTS.names)], values.detach())
    out.sum().backward()
    assert torch.equal(values.grad, torch.ones_like(values))


def test_invalid_sets_and_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        JointSet(("A", "B", "A"))
    with pytest.raises(ValueError, match="flip pairs"):
        JointSet(("A", "B", "C"), ((0, 1), (1, 2)))
    with pytest.raises(KeyError, match="Tail"):
        js.JOINTS.index("Tail")
    with pytest.raises(ValueError, match="joints on axis -2"):
        remap_joints(np.zeros((64, 3)), js.POS_JOINTS, js.JOINTS)
