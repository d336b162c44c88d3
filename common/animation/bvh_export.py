"""A track's SMPL-X skeleton motion as BVH (Biovision hierarchy), and a BVH reader.

What the writer puts in the file:

* HIERARCHY: SMPL-X's kinematic tree with smplx's joint names, depth first from ``ROOT pelvis``. Each OFFSET
  is the joint's rest position relative to its parent, from the joints regressed from the *shaped* mesh, in
  centimetres by default (``units="m"`` for metres). The root's OFFSET is 0 0 0: its position channels carry
  its whole position, so readers that add the offset and readers that do not agree. A leaf joint (fingertip
  joint, foot, jaw, eye) ends in an ``End Site`` half its own offset further along.
* Channels: the root ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``, every other joint
  ``Zrotation Xrotation Yrotation``: Euler angles in degrees composed in the order listed, R = Rz Rx Ry acting on
  column vectors (intrinsic Z, X', Y''), as most BVH tools read them.
* MOTION: one row per frame from the track's first to its last frame at ``Frame Time: 1 / fps``; a frame the
  track misses is filled by spherical interpolation of each joint's rotation and linear interpolation of the
  root position between the frames around it (BVH has no per-frame times).

The rotations are SMPL-X's full pose (the parameters plus the layer's mean hand pose), the root's first turned
by the rig's world rotation; the root position is the pelvis's ``F (rest + cam_trans)``. Coordinates are
SMPL-X's own (y up). Expressions and the mesh are not in a BVH, and the skeleton's rest does not follow the
expression (SMPL-X regresses the jaw and head joints from face vertices that the expression moves a little).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from common.utils.atomic_io import write_bytes_atomic
from common.utils.errors import InputDataError

from .rig import RigMotion, SMPLXRig

__all__ = ["BVHFormatError", "BVHMotion", "contiguous_motion", "read_bvh", "write_bvh"]

EULER_ORDER = "ZXY"
ROTATION_CHANNELS = tuple(f"{axis}rotation" for axis in EULER_ORDER)
POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
UNIT_SCALE = {"cm": 100.0, "m": 1.0}  # file units per metre
_END_SITE_FRACTION = 0.5


class BVHFormatError(InputDataError):
    """A BVH file that does not parse; the message names the file and the line."""


@dataclass(frozen=True)
class BVHMotion:
    """A BVH file's hierarchy and motion, joints in the file's (depth-first) order.

    Attributes:
        joint_names: J names.
        parents: (J,) int64 parent index, -1 for the root.
        offsets: (J, 3) OFFSETs, file units.
        channels: per joint its channel names, in file order.
        end_sites: joint index -> (3,) End Site OFFSET, file units.
        frame_time: seconds per frame.
        values: (F, C) float64 motion rows, C = the total channel count, columns in hierarchy order.
    """

    joint_names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    end_sites: dict[int, np.ndarray]
    frame_time: float
    values: np.ndarray

    def channel_values(self, joint: int) -> np.ndarray:
        """(F, len(channels[joint])) the motion columns of one joint."""
        start = sum(len(c) for c in self.channels[:joint])
        return self.values[:, start : start + len(self.channels[joint])]

    def local_rotations(self) -> np.ndarray:
        """(F, J, 3, 3) each joint's rotation relative to its parent: its rotation channels composed in file order
        (identity for a joint without any)."""
        rotations = np.broadcast_to(np.eye(3), (len(self.values), len(self.joint_names), 3, 3)).copy()
        for j, names in enumerate(self.channels):
            columns = [k for k, name in enumerate(names) if name.endswith("rotation")]
            if columns:
                order = "".join(names[k][0].upper() for k in columns)  # upper case: intrinsic, as BVH composes
                angles = self.channel_values(j)[:, columns]
                rotations[:, j] = Rotation.from_euler(order, angles, degrees=True).as_matrix()
        return rotations


def contiguous_motion(motion: RigMotion) -> RigMotion:
    """``motion`` on every frame from its first to its last: missing frames filled by spherical interpolation of
    each joint's rotation and linear interpolation of the root position and the expression."""
    frames = np.arange(motion.frames[0], motion.frames[-1] + 1)
    if len(frames) == len(motion.frames):
        return motion
    rotations = np.empty((len(frames), *motion.local_rotations.shape[1:]))
    for j in range(motion.local_rotations.shape[1]):
        rotations[:, j] = Slerp(motion.frames, Rotation.from_matrix(motion.local_rotations[:, j]))(frames).as_matrix()

    def lerp(values: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(frames, motion.frames, column) for column in values.T], axis=1)

    expression = None if motion.expression is None else lerp(motion.expression)
    return RigMotion(frames, rotations, lerp(motion.root_position), expression, motion.world_rotation)


def _hierarchy_lines(rig: SMPLXRig, scale: float) -> tuple[list[str], list[int]]:
    """The HIERARCHY section's lines and the joints in the order written (depth first)."""
    offsets = rig.joint_offsets() * scale
    offsets[0] = 0.0  # the root's position is all in its channels
    lines, order = ["HIERARCHY"], []

    def number(values: np.ndarray) -> str:
        return " ".join(f"{v:.6f}" for v in values)

    def visit(j: int, depth: int) -> None:
        pad = "\t" * depth
        order.append(j)
        channels = (*POSITION_CHANNELS, *ROTATION_CHANNELS) if j == 0 else ROTATION_CHANNELS
        lines.append(f"{pad}{'ROOT' if j == 0 else 'JOINT'} {rig.joint_names[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}\tOFFSET {number(offsets[j])}")
        lines.append(f"{pad}\tCHANNELS {len(channels)} {' '.join(channels)}")
        children = np.flatnonzero(rig.parents == j)
        for child in children:
            visit(int(child), depth + 1)
        if len(children) == 0:
            end = rig.joint_offsets()[j] * scale * _END_SITE_FRACTION
            lines.extend([f"{pad}\tEnd Site", pad + "\t{", f"{pad}\t\tOFFSET {number(end)}", pad + "\t}"])
        lines.append(pad + "}")

    visit(0, 0)
    return lines, order


def write_bvh(path: str | os.PathLike[str], rig: SMPLXRig, motion: RigMotion, fps: float, units: str = "cm") -> str:
    """Writes one track's skeleton motion as BVH (see the module docstring for the layout).

    Args:
        path: the output file (written atomically; parent folders created).
        rig: the shaped SMPL-X rig (its joints give the OFFSETs).
        motion: the track's motion on it (T >= 1 frames; gaps are filled, see `contiguous_motion`).
        fps: frames per second (``Frame Time`` = 1 / fps).
        units: "cm" (centimetres) or "m" (metres) for OFFSETs and positions.

    Returns:
        The path written, as a string.
    """
    if units not in UNIT_SCALE:
        raise ValueError(f"unknown units {units!r}; accepted: {', '.join(UNIT_SCALE)}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if len(motion.frames) == 0:
        raise ValueError("the motion has no frames")
    scale = UNIT_SCALE[units]
    lines, order = _hierarchy_lines(rig, scale)
    motion = contiguous_motion(motion)
    euler = Rotation.from_matrix(motion.local_rotations[:, order].reshape(-1, 3, 3)).as_euler(EULER_ORDER, degrees=True)
    rows = np.concatenate([motion.root_position * scale, euler.reshape(len(motion.frames), -1)], axis=1)  # (F, C)
    lines += ["MOTION", f"Frames: {len(rows)}", f"Frame Time: {1.0 / fps:.9g}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in rows]
    return str(write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("ascii")))


class _Tokens:
    """Whitespace-separated tokens of a BVH file with their line numbers."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.items = [(token, number) for number, line in enumerate(text.splitlines(), 1) for token in line.split()]
        self.position = 0

    def error(self, message: str) -> BVHFormatError:
        line = self.items[min(self.position, len(self.items) - 1)][1] if self.items else 1
        return BVHFormatError(f"{self.path}: line {line}: {message}")

    def next(self, expected: str | None = None) -> str:
        if self.position >= len(self.items):
            raise self.error(f"unexpected end of file{f', expected {expected!r}' if expected else ''}")
        token = self.items[self.position][0]
        if expected is not None and token != expected:
            raise self.error(f"expected {expected!r}, found {token!r}")
        self.position += 1
        return token

    def peek(self) -> str | None:
        return self.items[self.position][0] if self.position < len(self.items) else None

    def number(self, kind: type = float) -> float:
        token = self.next()
        try:
            return kind(token)
        except ValueError:
            self.position -= 1
            raise self.error(f"expected a number, found {token!r}") from None


_KNOWN_CHANNELS = frozenset((*POSITION_CHANNELS, "Xrotation", "Yrotation", "Zrotation"))


def _read_joint(tokens: _Tokens, parent: int, hierarchy: dict[str, list]) -> None:
    """Reads one ROOT/JOINT block (its keyword already read) into ``hierarchy``'s lists, recursively."""
    index = len(hierarchy["names"])
    hierarchy["names"].append(tokens.next())
    hierarchy["parents"].append(parent)
    tokens.next("{")
    tokens.next("OFFSET")
    hierarchy["offsets"].append([tokens.number() for _ in range(3)])
    channels: tuple[str, ...] = ()
    if tokens.peek() == "CHANNELS":
        tokens.next()
        count = int(tokens.number(int))
        channels = tuple(tokens.next() for _ in range(count))
        unknown = sorted(set(channels) - _KNOWN_CHANNELS)
        if unknown or len(set(channels)) != len(channels):
            raise tokens.error(f"joint {hierarchy['names'][index]!r}: bad channels {' '.join(channels)}")
    hierarchy["channels"].append(channels)
    while (keyword := tokens.next()) != "}":
        if keyword == "JOINT":
            _read_joint(tokens, index, hierarchy)
        elif keyword == "End":
            tokens.next("Site")
            tokens.next("{")
            tokens.next("OFFSET")
            hierarchy["end_sites"][index] = np.array([tokens.number() for _ in range(3)])
            tokens.next("}")
        else:
            raise tokens.error(f"expected JOINT, End Site or '}}', found {keyword!r}")


def read_bvh(path: str | os.PathLike[str]) -> BVHMotion:
    """Reads a BVH file with one ROOT (any channel orders; rotations in degrees).

    Raises:
        FileNotFoundError: no such file.
        BVHFormatError: the text does not parse, or the motion has the wrong number of values (the message
            names the file and line).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise BVHFormatError(f"{path}: not a text file ({error})") from error
    tokens = _Tokens(path, text)
    tokens.next("HIERARCHY")
    tokens.next("ROOT")
    hierarchy: dict = {"names": [], "parents": [], "offsets": [], "channels": [], "end_sites": {}}
    _read_joint(tokens, -1, hierarchy)
    tokens.next("MOTION")
    tokens.next("Frames:")
    frame_count = int(tokens.number(int))
    tokens.next("Frame")
    tokens.next("Time:")
    frame_time = float(tokens.number())
    width = sum(len(c) for c in hierarchy["channels"])
    rest = tokens.items[tokens.position :]
    if len(rest) != frame_count * width:
        raise tokens.error(f"expected {frame_count} frames x {width} channels = {frame_count * width} values "
                           f"after 'Frame Time', found {len(rest)}")  # fmt: skip
    values = np.empty(len(rest))
    for k in range(len(rest)):
        values[k] = tokens.number()
    values = values.reshape(frame_count, width)
    return BVHMotion(
        joint_names=tuple(hierarchy["names"]),
        parents=np.array(hierarchy["parents"], dtype=np.int64),
        offsets=np.array(hierarchy["offsets"], dtype=np.float64).reshape(-1, 3),
        channels=tuple(hierarchy["channels"]),
        end_sites=hierarchy["end_sites"],
        frame_time=frame_time,
        values=values,
    )
