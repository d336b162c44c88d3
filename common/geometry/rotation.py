"""Rotation conversions between Hand4Whole's 6D layout, rotation matrices and axis-angle.

Conventions (docs/conventions.md, rotations):

* Axis-angle is a rotation vector in radians, as in SMPL-X pose parameters: direction = axis, norm = angle.
* The 6D representation is Hand4Whole's: a network outputs 6 numbers that are read row-major as a 3x2
  matrix whose two columns are the first two columns of R, i.e. column 0 = (x0, x2, x4) and
  column 1 = (x1, x3, x5). This is the (..., 3, 2) input that ``roma.special_gramschmidt`` expects.
* Rotation matrices act on column vectors: ``p_rotated = R @ p``.

All conversions go through RoMa. At the identity they return exact zeros with finite gradients; at 180 degrees
``rotmat_to_axis_angle`` returns a vector of norm pi whose sign is arbitrary (both signs are the same rotation).
"""

import roma
import torch
from torch import Tensor

__all__ = [
    "axis_angle_to_rot6d",
    "axis_angle_to_rotmat",
    "mirror_axis_angle",
    "rot6d_to_axis_angle",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "rotmat_to_rot6d",
]


def rot6d_to_rotmat(rot6d: Tensor) -> Tensor:
    """Gram-Schmidt orthonormalisation of Hand4Whole's 6D representation.

    Args:
        rot6d: (..., 6) raw network output, read row-major as a (3, 2) matrix whose columns are the first two
            columns of R. Any scale; the columns need not be orthonormal.

    Returns:
        (..., 3, 3) rotation matrices (det +1). Degenerate input (a zero or colinear column) gives a finite
        matrix that is not a rotation, never NaN.
    """
    cols = rot6d.unflatten(-1, (3, 2))  # (..., 3, 2)
    # roma's default epsilon=0 divides by a zero norm for degenerate input; the dtype's epsilon keeps the result
    # finite and leaves any non-degenerate output (column norm >> eps) unchanged.
    return roma.special_gramschmidt(cols, epsilon=torch.finfo(rot6d.dtype).eps)


def rotmat_to_rot6d(rotmat: Tensor) -> Tensor:
    """Hand4Whole's 6D representation of rotation matrices; the exact inverse of ``rot6d_to_rotmat`` on rotations.

    Args:
        rotmat: (..., 3, 3) rotation matrices.

    Returns:
        (..., 6) the first two columns of R laid out row-major: (R00, R01, R10, R11, R20, R21).
    """
    return rotmat[..., :, :2].flatten(-2)  # (..., 6)


def axis_angle_to_rotmat(axis_angle: Tensor) -> Tensor:
    """Rodrigues' formula (first-order expansion below 1e-6 rad, so the gradient at zero is finite).

    Args:
        axis_angle: (..., 3) rotation vectors, radians.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    return roma.rotvec_to_rotmat(axis_angle)


def rotmat_to_axis_angle(rotmat: Tensor) -> Tensor:
    """Rotation vectors of rotation matrices, through a unit quaternion (accurate at small angles and at pi).

    Args:
        rotmat: (..., 3, 3) rotation matrices.

    Returns:
        (..., 3) rotation vectors in radians with norm in [0, pi]. At exactly pi the sign is arbitrary.
    """
    return roma.rotmat_to_rotvec(rotmat)


def rot6d_to_axis_angle(rot6d: Tensor) -> Tensor:
    """Hand4Whole's 6D network output to SMPL-X axis-angle.

    Args:
        rot6d: (..., 6) raw 6D output (see ``rot6d_to_rotmat``).

    Returns:
        (..., 3) rotation vectors, radians.
    """
    return rotmat_to_axis_angle(rot6d_to_rotmat(rot6d))


def axis_angle_to_rot6d(axis_angle: Tensor) -> Tensor:
    """SMPL-X axis-angle to Hand4Whole's 6D layout.

    Args:
        axis_angle: (..., 3) rotation vectors, radians.

    Returns:
        (..., 6) 6D representation (see ``rotmat_to_rot6d``).
    """
    return rotmat_to_rot6d(axis_angle_to_rotmat(axis_angle))


def mirror_axis_angle(axis_angle: Tensor) -> Tensor:
    """The rotation seen in a mirror across the body's sagittal plane (x -> -x), for left/right flips.

    With the mirror M = diag(-1, 1, 1), a rotation R acting on mirrored points is R' = M R M (mirror, rotate,
    mirror back). For R = exp([w]x), M [w]x M = [det(M) M w]x = [(w_x, -w_y, -w_z)]x, so R' = exp([w']x) with
    w' = (w_x, -w_y, -w_z): negate the y and z components. This is Hand4Whole's flip of SMPL-X pose parameters
    (the joint order is swapped left/right separately, by name).

    Args:
        axis_angle: (..., 3) rotation vectors, radians.

    Returns:
        (..., 3) mirrored rotation vectors, radians.
    """
    # Negation by slices, not a multiplication by a host-made sign tensor: no host-to-device copy per call.
    return torch.cat((axis_angle[..., :1], -axis_angle[..., 1:]), dim=-1)
