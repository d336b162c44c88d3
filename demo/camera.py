"""The demo's geometry: person box -> network crop -> the network's camera seen in the original image.

The network predicts a mesh in the frame of a virtual pinhole camera defined in body-input pixels
(`model.focal`, `model.princpt` at `model.input_body_shape`, docs/conventions.md "Camera of the network").
The body input is the crop (`model.input_img_shape`) resized by a pure scale, which is also how the
datasets express their targets (crop pixels times W_body / W_crop), so the same camera in crop pixels
has focal and principal point multiplied by W_crop / W_body (x) and H_crop / H_body (y). The crop is
an affine map of the original image; without rotation (the demo never rotates) that map is a scale
and a shift per axis, so the camera in original-image pixels is the crop camera pushed through it:

    K_img = [crop2img; 0 0 1] @ K_crop,

which for Hand4Whole's geometry is its demo's formula, focal_img = focal * bbox_w / W_body and
princpt_img = princpt * bbox_w / W_body + bbox_x (same in y with bbox_h / H_body and bbox_y), with
bbox the processed crop box in original pixels. The mesh itself stays as predicted: the camera frame
is shared, only the intrinsics change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.utils.augmentation import crop_affine, invert_affine, process_bbox

__all__ = [
    "PersonCrop",
    "PinholeCamera",
    "camera_through_affine",
    "crop_camera",
    "original_image_camera",
    "person_crop",
]

# |off-diagonal| / |diagonal| of a crop affine above which it is not a per-axis scale and shift (a rotated
# or sheared crop has no zero-skew pinhole camera in the original image).
_MAX_SKEW = 1e-9


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of a pinhole camera without skew or distortion (OpenCV frame, pixel centres at integers).

    Attributes:
        focal: (fx, fy) pixels.
        princpt: (cx, cy) pixels.
    """

    focal: tuple[float, float]
    princpt: tuple[float, float]

    def matrix(self) -> np.ndarray:
        """(3, 3) float64 K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]."""
        (fx, fy), (cx, cy) = self.focal, self.princpt
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class PersonCrop:
    """Where the network's input crop lies in the original image.

    Attributes:
        bbox_xywh_img: (4,) float32 crop box in original pixels: the person box clipped, grown to aspect 0.75 and
            enlarged x1.25 (`common.utils.augmentation.process_bbox`); it may extend past the image.
        img2crop: (2, 3) float64 map from original pixels to crop pixels.
        crop2img: (2, 3) float64 inverse map (Hand4Whole's `bb2img_trans`).
        crop_hw: (H, W) of the crop, pixels (`model.input_img_shape`).
    """

    bbox_xywh_img: np.ndarray
    img2crop: np.ndarray
    crop2img: np.ndarray
    crop_hw: tuple[int, int]


def person_crop(bbox_xywh_img: Sequence[float], img_hw: Sequence[int], crop_hw: Sequence[int]) -> PersonCrop | None:
    """The crop of a person (hand, face) box, processed as the datasets process their boxes (no augmentation).

    Args:
        bbox_xywh_img: (4,) person box (x, y, width, height) in original pixels.
        img_hw: (H, W) of the original image, pixels.
        crop_hw: (H, W) of the network input crop, pixels.

    Returns:
        The crop, or None when the box has no area inside the image.
    """
    x, y, w, h = (float(v) for v in bbox_xywh_img)
    # process_bbox clips the box's corner into the image before applying its size, so a box wholly above or left
    # of the image would come back as one at the image's corner: test the overlap first.
    if x >= img_hw[1] or y >= img_hw[0] or x + w <= 0 or y + h <= 0:
        return None
    aspect = float(crop_hw[1]) / float(crop_hw[0])  # the network input's: 0.75 for a person, 1 for a hand
    box = process_bbox(np.array([x, y, w, h]), int(img_hw[1]), int(img_hw[0]), aspect)
    if box is None:
        return None
    img2crop = crop_affine(box, crop_hw)
    return PersonCrop(box, img2crop, invert_affine(img2crop), (int(crop_hw[0]), int(crop_hw[1])))


def crop_camera(
    focal: Sequence[float], princpt: Sequence[float], input_body_hw: Sequence[int], input_img_hw: Sequence[int]
) -> PinholeCamera:
    """The network's virtual camera expressed in crop pixels.

    Args:
        focal: (fx, fy) of the virtual camera, body-input pixels (`model.focal`).
        princpt: (cx, cy) of the virtual camera, body-input pixels (`model.princpt`).
        input_body_hw: (H, W) of the body input (`model.input_body_shape`).
        input_img_hw: (H, W) of the crop (`model.input_img_shape`).

    Returns:
        The camera in crop pixels (Hand4Whole's default geometry: focal (10000, 10000), princpt (192, 256)).
    """
    scale_x = input_img_hw[1] / input_body_hw[1]
    scale_y = input_img_hw[0] / input_body_hw[0]
    return PinholeCamera(
        (float(focal[0]) * scale_x, float(focal[1]) * scale_y),
        (float(princpt[0]) * scale_x, float(princpt[1]) * scale_y),
    )


def camera_through_affine(camera: PinholeCamera, affine: np.ndarray) -> PinholeCamera:
    """The camera whose image is `affine` applied to `camera`'s image: K' = [affine; 0 0 1] @ K.

    A point projecting to pixel p with `camera` projects to affine @ [p, 1] with the result.

    Args:
        camera: intrinsics in the source pixels.
        affine: (2, 3) map from source pixels to target pixels; a scale and a shift per axis (positive scales).

    Returns:
        The intrinsics in target pixels.

    Raises:
        ValueError: the affine rotates, shears or mirrors, which no zero-skew pinhole camera with the same frame
            can express.
    """
    affine = np.asarray(affine, dtype=np.float64)
    scale_x, scale_y = affine[0, 0], affine[1, 1]
    if (
        scale_x <= 0
        or scale_y <= 0
        or abs(affine[0, 1]) > _MAX_SKEW * scale_x
        or abs(affine[1, 0]) > _MAX_SKEW * scale_y
    ):
        raise ValueError(f"the affine map must be a positive scale and a shift per axis, got {affine.tolist()}")
    matrix = np.concatenate([affine, [[0.0, 0.0, 1.0]]]) @ camera.matrix()
    return PinholeCamera((float(matrix[0, 0]), float(matrix[1, 1])), (float(matrix[0, 2]), float(matrix[1, 2])))


def original_image_camera(
    focal: Sequence[float],
    princpt: Sequence[float],
    input_body_hw: Sequence[int],
    crop: PersonCrop,
) -> PinholeCamera:
    """The network's virtual camera in original-image pixels, for a prediction made on `crop`.

    Args:
        focal: (fx, fy) of the virtual camera, body-input pixels (`model.focal`).
        princpt: (cx, cy) of the virtual camera, body-input pixels (`model.princpt`).
        input_body_hw: (H, W) of the body input (`model.input_body_shape`).
        crop: the crop the network saw.

    Returns:
        The intrinsics that project the predicted camera-frame mesh onto the original image.
    """
    return camera_through_affine(crop_camera(focal, princpt, input_body_hw, crop.crop_hw), crop.crop2img)
