"""Hand4Whole's joint sets, defined by name; every index array is derived from the names.

Naming follows Hand4Whole (``Pelvis, L_Hip, ..., Nose, R_Eye, L_Eye, R_Ear, L_Ear, L_Big_toe``;
fingers ``L_Thumb_1..4`` with ``_4`` the fingertip; ``Face_1..Face_72`` for its face set). Two
names are ours, where Hand4Whole had none: ``L_Eyeball``/``R_Eyeball`` for SMPL-X's eyeball joints
23/24 (``L_Eye``/``R_Eye`` are the eye *vertices*, as in COCO), and the SMPL joints take SMPL-X's
names (Hand4Whole's ``Torso, Spine, Chest, L_Toe, L_Thorax`` are SMPL-X's ``Spine_1, Spine_2,
Spine_3, L_Foot, L_Collar``: the same joints), so that `remap_joints` links the models by name.

Face landmarks: ``Face_5..Face_55`` are the 51 static landmarks of SMPL-X/FLAME, which are iBUG-68
points 18..68, and ``Face_56..Face_72`` the 17 contour landmarks, iBUG points 1..17, both in iBUG
order (`IBUG68_NAMES`; COCO-WholeBody's 68 face points are in that order too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

PartIndices = range | tuple[int, ...]


def mirror_name(name: str) -> str:
    """The joint a mirror image (left <-> right) puts in place of ``name``; itself on the mid-line."""
    if name.startswith("L_"):
        return "R_" + name[2:]
    if name.startswith("R_"):
        return "L_" + name[2:]
    return _FACE_MIRROR.get(name, name)


@dataclass(frozen=True)
class JointSet:
    """An ordered set of named joints with its left/right pairs and named parts.

    Attributes:
        names: (J,) unique joint names, in the order of the joint axis.
        flip_pairs: index pairs (i, j), i < j, swapped by a horizontal flip.
        parts: part name -> indices into ``names`` (a range or a tuple).
    """

    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    parts: Mapping[str, PartIndices] = field(default_factory=dict, hash=False)
    _lookup: Mapping[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = tuple(self.names)
        lookup = {n: i for i, n in enumerate(names)}
        if len(lookup) != len(names):
            raise ValueError(f"duplicate joint names: {sorted({n for n in names if names.count(n) > 1})}")
        flat = [i for pair in self.flip_pairs for i in pair]
        if len(set(flat)) != len(flat) or any(not 0 <= i < len(names) for i in flat):
            raise ValueError(f"flip pairs must be disjoint indices into {len(names)} joints: {self.flip_pairs}")
        parts = {k: v if isinstance(v, range) else tuple(v) for k, v in self.parts.items()}
        for key, indices in parts.items():
            if any(not 0 <= i < len(names) for i in indices):
                raise ValueError(f"part {key!r} indexes outside {len(names)} joints")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "flip_pairs", tuple((int(i), int(j)) for i, j in self.flip_pairs))
        object.__setattr__(self, "parts", MappingProxyType(parts))
        object.__setattr__(self, "_lookup", MappingProxyType(lookup))

    @classmethod
    def from_names(cls, names: Iterable[str], parts: Mapping[str, PartIndices] | None = None) -> JointSet:
        """A set whose flip pairs are every pair of its names that `mirror_name` maps onto each other."""
        names = tuple(names)
        lookup = {n: i for i, n in enumerate(names)}
        pairs = {tuple(sorted((i, lookup[mirror_name(n)]))) for i, n in enumerate(names) if mirror_name(n) in lookup}
        return cls(names, tuple(sorted(p for p in pairs if p[0] != p[1])), parts or {})

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Position of ``name``; KeyError if absent."""
        try:
            return self._lookup[name]
        except KeyError:
            raise KeyError(f"joint {name!r} is not in this set of {len(self)} joints") from None

    def indices(self, names: Iterable[str]) -> np.ndarray:
        """(N,) int64 positions of ``names``; KeyError if any is absent."""
        return np.array([self.index(n) for n in names], dtype=np.int64)

    def flip_permutation(self) -> np.ndarray:
        """(J,) int64 p with ``flipped = values[..., p, :]`` for a mirror image; p[p] is the identity."""
        perm = np.arange(len(self), dtype=np.int64)
        for i, j in self.flip_pairs:
            perm[i], perm[j] = j, i
        return perm


def _names(joints: JointSet | Sequence[str]) -> tuple[str, ...]:
    names = joints.names if isinstance(joints, JointSet) else tuple(joints)
    if len(set(names)) != len(names):
        raise ValueError("joint names must be unique")
    return names


def remap_joints(values: Any, src: JointSet | Sequence[str], dst: JointSet | Sequence[str]) -> tuple[Any, Any]:
    """Reorder per-joint values from one joint set to another by name.

    Args:
        values: (..., J_src, C) numpy array or torch tensor, any dtype and device.
        src: the joint set (or names) of ``values``' joint axis.
        dst: the joint set (or names) to map to.

    Returns:
        (..., J_dst, C) values, zero where the name is missing from ``src``, and (J_dst,) validity,
        1 where the joint came from ``src`` and 0 otherwise; both of ``values``' type and dtype.
        Differentiable for tensors.
    """
    src_names, dst_names = _names(src), _names(dst)
    if values.ndim < 2 or values.shape[-2] != len(src_names):
        raise ValueError(f"values of shape {tuple(values.shape)} do not have {len(src_names)} joints on axis -2")
    src_index = {n: i for i, n in enumerate(src_names)}
    dst_idx = [i for i, n in enumerate(dst_names) if n in src_index]
    src_idx = [src_index[dst_names[i]] for i in dst_idx]
    shape = (*values.shape[:-2], len(dst_names), values.shape[-1])
    if isinstance(values, np.ndarray):
        out, valid = np.zeros(shape, values.dtype), np.zeros(len(dst_names), values.dtype)
    else:  # a torch tensor: torch is imported only by callers that already use it
        out, valid = values.new_zeros(shape), values.new_zeros(len(dst_names))
    out[..., dst_idx, :] = values[..., src_idx, :]
    valid[dst_idx] = 1
    return out, valid


def _fingers(prefix: str, fingers: Sequence[str], count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{finger}_{k}" for finger in fingers for k in range(1, count + 1))


def _ranges(*lengths: int) -> list[range]:
    """Consecutive ranges of the given lengths: the parts of a set concatenated from pieces."""
    starts = np.cumsum((0, *lengths))
    return [range(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]


SMPLX_FINGERS = ("Index", "Middle", "Pinky", "Ring", "Thumb")  # SMPL-X's and MANO's finger order
HAND4WHOLE_FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")  # Hand4Whole's supervision order

# --- Face landmarks (iBUG 68) --------------------------------------------------------------------
IBUG68_NAMES: tuple[str, ...] = tuple(f"Face_{k + 55}" if k <= 17 else f"Face_{k - 13}" for k in range(1, 69))
"""Hand4Whole's face names of the iBUG-68 points 1..68, in iBUG order."""

# The rows of the iBUG-68 layout, each listed from left to right as seen in a frontal image. A mirror
# image reverses every row, so the i-th point of a row and the i-th from its end are left/right
# partners, and a row's middle point lies on the mid-line. Eyes: corners and upper lids form one
# row (37-40 right eye, 43-46 left eye), the lower lids another; lips: upper and lower halves.
_IBUG68_ROWS: tuple[Sequence[int], ...] = (
    range(1, 18),  # jaw contour, subject's right ear to left ear
    range(18, 28),  # eyebrows
    (28,), (29,), (30,), (31,),  # nose bridge
    range(32, 37),  # nostrils and nose tip
    (37, 38, 39, 40, 43, 44, 45, 46),  # eye corners and upper lids
    (42, 41, 48, 47),  # lower lids
    range(49, 56),  # outer lips, corners and upper half
    (60, 59, 58, 57, 56),  # outer lips, lower half
    range(61, 66),  # inner lips, corners and upper half
    (68, 67, 66),  # inner lips, lower half
)  # fmt: skip
_FACE_MIRROR: dict[str, str] = {
    IBUG68_NAMES[a - 1]: IBUG68_NAMES[b - 1] for row in _IBUG68_ROWS for a, b in zip(row, reversed(row), strict=True)
}
_FACE_MIRROR.update({"Face_3": "Face_4", "Face_4": "Face_3"})  # Hand4Whole's eye vertices (L_Eye, R_Eye)
FACE_STATIC_LANDMARKS: tuple[str, ...] = IBUG68_NAMES[17:]  # Face_5..Face_55
FACE_CONTOUR_LANDMARKS: tuple[str, ...] = IBUG68_NAMES[:17]  # Face_56..Face_72

# --- SMPL-X ------------------------------------------------------------------------------------
BODY_JOINTS: tuple[str, ...] = (
    "Pelvis", "L_Hip", "R_Hip", "Spine_1", "L_Knee", "R_Knee", "Spine_2", "L_Ankle", "R_Ankle", "Spine_3",
    "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow",
    "L_Wrist", "R_Wrist",
)  # fmt: skip
"""The 22 body joints shared by SMPL and SMPL-X, kinematic order."""
SMPLX_SKELETON_JOINTS: tuple[str, ...] = (
    *BODY_JOINTS, "Jaw", "L_Eyeball", "R_Eyeball", *_fingers("L_", SMPLX_FINGERS, 3), *_fingers("R_", SMPLX_FINGERS, 3)
)  # fmt: skip
SMPLX_VERTEX_KEYPOINTS: Mapping[str, str] = MappingProxyType(
    {
        "Nose": "nose", "R_Eye": "reye", "L_Eye": "leye", "R_Ear": "rear", "L_Ear": "lear",
        "L_Big_toe": "LBigToe", "L_Small_toe": "LSmallToe", "L_Heel": "LHeel",
        "R_Big_toe": "RBigToe", "R_Small_toe": "RSmallToe", "R_Heel": "RHeel",
        **{f"{s.upper()}_{f}_4": f"{s}{f.lower()}" for s in "lr" for f in HAND4WHOLE_FINGERS},  # the tips
    }
)  # fmt: skip
"""The 21 vertex keypoints smplx appends after the skeleton: name -> key of ``smplx.vertex_ids``,
in the order of smplx's VertexJointSelector (face, feet, then fingertips thumb..pinky, left, right)."""
SMPLX_OUTPUT_JOINTS: tuple[str, ...] = (
    *SMPLX_SKELETON_JOINTS, *SMPLX_VERTEX_KEYPOINTS, *FACE_STATIC_LANDMARKS, *FACE_CONTOUR_LANDMARKS
)  # fmt: skip
"""The 144 joints of smplx.SMPLX's output with use_face_contour=True."""

SMPLX_SKELETON = JointSet.from_names(
    SMPLX_SKELETON_JOINTS, dict(zip(("body", "face", "lhand", "rhand"), _ranges(22, 3, 15, 15), strict=True))
)
SMPLX_OUTPUT = JointSet.from_names(
    SMPLX_OUTPUT_JOINTS,
    dict(zip(("skeleton", "keypoints", "face_static", "face_contour"), _ranges(55, 21, 51, 17), strict=True)),
)

# --- Hand4Whole's sets -------------------------------------------------------------------------
ORIG_JOINTS = JointSet.from_names(
    (*BODY_JOINTS, *_fingers("L_", SMPLX_FINGERS, 3), *_fingers("R_", SMPLX_FINGERS, 3), "Jaw"),
    dict(zip(("body", "lhand", "rhand", "face"), _ranges(22, 15, 15, 1), strict=True)),
)
"""The 53 joints with rotation parameters (22 body, 2 x 15 fingers, jaw); the eyeballs are not estimated."""
ORIG_JOINT_IDX: np.ndarray = SMPLX_SKELETON.indices(ORIG_JOINTS.names)
"""(53,) index of each rotation joint in SMPL-X's 55-joint full pose."""

HAND_20: tuple[str, ...] = _fingers("", HAND4WHOLE_FINGERS, 4)
"""One hand's 20 supervised joints without the wrist: Thumb_1..4, Index_1..4, ..., Pinky_1..4."""
_BODY_25 = (
    "Pelvis", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle", "Neck", "L_Shoulder", "R_Shoulder",
    "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist", "L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe", "R_Small_toe",
    "R_Heel", "L_Ear", "R_Ear", "L_Eye", "R_Eye", "Nose",
)  # fmt: skip
_FACE_72 = tuple(f"Face_{k}" for k in range(1, 73))
_body, _lhand, _rhand, _face = _ranges(25, 20, 20, 72)
JOINTS = JointSet.from_names(
    (*_BODY_25, *("L_" + n for n in HAND_20), *("R_" + n for n in HAND_20), *_FACE_72),
    {"body": _body, "lhand": _lhand, "rhand": _rhand, "hand": range(_lhand.start, _rhand.stop), "face": _face},
)
"""The 137 supervision joints (25 body, 2 x 20 hand, 72 face)."""
# Face_1..Face_4 are SMPL-X joints under other names: jaw joint, head joint, left and right eye vertex.
_FACE_ALIASES = {"Face_1": "Jaw", "Face_2": "Head", "Face_3": "L_Eye", "Face_4": "R_Eye"}
JOINT_IDX: np.ndarray = SMPLX_OUTPUT.indices(_FACE_ALIASES.get(n, n) for n in JOINTS.names)
"""(137,) index of each supervision joint in the 144 SMPL-X output joints."""
ROOT_IDX, LWRIST_IDX, RWRIST_IDX, NECK_IDX = (JOINTS.index(n) for n in ("Pelvis", "L_Wrist", "R_Wrist", "Neck"))

_mcp = tuple(HAND_20.index(f"{f}_1") for f in ("Index", "Middle", "Ring", "Pinky"))
POS_JOINTS = JointSet.from_names(
    JOINTS.names[: _rhand.stop],
    {"body": _body, "lhand": _lhand, "rhand": _rhand, "L_MCP": _mcp, "R_MCP": _mcp},
)
"""The 65 PositionNet joints; L_MCP/R_MCP index Index_1, Middle_1, Ring_1, Pinky_1 within a 20-joint hand."""

# --- SMPL, MANO, FLAME ---------------------------------------------------------------------------
SMPL_JOINTS = JointSet.from_names((*BODY_JOINTS, "L_Hand", "R_Hand"), {"body": range(24)})
MANO_SKELETON = JointSet.from_names(("Wrist", *_fingers("", SMPLX_FINGERS, 3)))
MANO_JOINTS = JointSet.from_names((*MANO_SKELETON.names, "Thumb_4", "Index_4", "Middle_4", "Ring_4", "Pinky_4"))
"""MANO's 16 joints and the 5 fingertip vertices in smplx.vertex_ids['mano'] order (smplx 0.1.28's
MANO.forward returns only the 16: gather the tips from the vertices)."""
HAND_21 = JointSet.from_names(("Wrist", *HAND_20))
"""The 21-joint hand order Hand4Whole evaluates with (rows of its hand regressor)."""
FLAME_SKELETON = JointSet.from_names(("Neck", "Head", "Jaw", "L_Eyeball", "R_Eyeball"))
"""FLAME's 5 joints: global (at the neck), neck (at the head), jaw, eyeballs."""
FLAME_OUTPUT = JointSet.from_names((*FLAME_SKELETON.names, *FACE_STATIC_LANDMARKS, *FACE_CONTOUR_LANDMARKS))
"""The 73 joints of smplx.FLAME's output with use_face_contour=True."""

ORIG_JOINT_IDX.setflags(write=False)  # shared module constants: no caller may edit them in place
JOINT_IDX.setflags(write=False)
