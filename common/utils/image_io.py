"""Image reading for the data pipeline: RGB, with one error type that names the file.

OpenCV decodes (it is the fastest decoder available here and the one Hand4Whole used), with
``IMREAD_IGNORE_ORIENTATION`` so that EXIF rotation never moves pixels away from their annotations.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

__all__ = ["ImageReadError", "read_image"]

# Annotations are in the stored pixel grid; letting OpenCV apply EXIF orientation would silently rotate
# the image under them.
_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


class ImageReadError(OSError):
    """An image file is missing or cannot be decoded.

    Attributes:
        path: the file that was read.
        reason: 'missing' or 'unreadable'.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        what = "not found" if reason == "missing" else "cannot be decoded (corrupt or not an image)"
        self.message = f"image file {what}: {self.path}"
        super().__init__(self.message)
        self.filename = str(self.path)  # what OSError handlers read

    def __str__(self) -> str:  # OSError's own would print '[Errno None] None: <filename>' once filename is set
        return self.message


def read_image(path: str | os.PathLike[str], expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as RGB uint8.

    The pipeline crops before converting to float: cv2.warpAffine is several times faster on uint8,
    and the crop is 512x384 however large the file is.

    Args:
        path: image file (any format OpenCV decodes: png, jpg, ...).
        expected_hw: (H, W) in pixels that the annotations assume; None to accept any size.

    Returns:
        (H, W, 3) uint8 RGB, C-contiguous.

    Raises:
        ImageReadError: the file is missing or cannot be decoded.
        ValueError: the decoded size differs from ``expected_hw``; boxes and intrinsics would be wrong.
    """
    if not os.path.isfile(path):  # checked first: cv2 would also print a warning of its own
        raise ImageReadError(path, "missing")
    image = cv2.imread(os.fspath(path), _READ_FLAGS)
    if image is None:  # cv2 returns None instead of raising
        raise ImageReadError(path, "unreadable")
    if expected_hw is not None and image.shape[:2] != tuple(expected_hw):
        raise ValueError(
            f"image {path} is {image.shape[1]}x{image.shape[0]} (WxH), the annotations assume "
            f"{expected_hw[1]}x{expected_hw[0]}"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
