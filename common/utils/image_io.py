"""Image reading for the data pipeline: RGB, with one error type that names the file and what is wrong with it.

OpenCV decodes (it is the fastest decoder available here and the one Hand4Whole used), with
``IMREAD_IGNORE_ORIENTATION`` so that EXIF rotation never moves pixels away from their annotations.

What counts as a bad image (`ImageReadError`): a missing file, a zero-byte file, a file OpenCV cannot decode (a
text or html file saved as .jpg, a truncated PNG), a truncated JPEG, and a file whose size differs from the one
the annotations assume. A truncated JPEG is the case OpenCV does not always refuse: cv2.imread (and imdecode in
OpenCV 4) only warns ("Premature end of JPEG file") and returns the image with its missing rows filled in grey,
which would train on a grey block silently, while OpenCV 5's imdecode returns None. So that every version answers
alike, a JPEG must also reach its end-of-image marker (`jpeg_is_complete`).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

__all__ = ["ImageReadError", "ImageSizeError", "jpeg_is_complete", "read_image"]

# Annotations are in the stored pixel grid; letting OpenCV apply EXIF orientation would silently rotate
# the image under them.
_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
_REASONS = {
    "missing": "not found",
    "empty": "is empty (0 bytes)",
    "unreadable": "cannot be decoded (corrupt or not an image)",
    "truncated": "is truncated (its JPEG data stops before the end-of-image marker)",
    "size": "has another size than its annotations assume",
}
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
_START_OF_SCAN = 0xDA
_NO_LENGTH = {0x00, 0x01, *range(0xD0, 0xD8)}  # a stuffed 0xFF, TEM and RST0-7 carry no segment length


class ImageReadError(OSError):
    """An image file is missing, empty, cannot be decoded, is truncated, or has another size than annotated.

    Attributes:
        path: the file that was read.
        reason: one of 'missing', 'empty', 'unreadable', 'truncated', 'size'.
        detail: more about it (an OS error, the two sizes), or ''.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str | None = None, detail: str = "") -> None:
        if reason is None:
            # Rebuilt from its message alone: torch's DataLoader re-raises a worker's error as type(error)(message).
            self.path, self.reason, self.detail, self.message = None, "", "", str(path)
            super().__init__(self.message)
            return
        self.path = Path(path)
        self.reason, self.detail = reason, detail
        self.message = f"image file {_REASONS.get(reason, reason)}: {self.path}" + (f" ({detail})" if detail else "")
        super().__init__(self.message)
        self.filename = str(self.path)  # what OSError handlers read

    def __str__(self) -> str:  # OSError's own would print '[Errno None] None: <filename>' once filename is set
        return self.message


class ImageSizeError(ImageReadError, ValueError):
    """The decoded size differs from the annotations' (boxes and intrinsics would be wrong): a bad image, and a
    ValueError as before this type existed."""


def jpeg_is_complete(data: bytes) -> bool:
    """Whether JPEG file bytes reach an end-of-image marker after their first scan.

    The segments before the first start-of-scan are skipped by their lengths (so an EXIF thumbnail, which has
    markers of its own, is passed over); inside scan data a 0xFF byte is always followed by 0x00 or a restart
    marker, so an end-of-image marker found after the scan really ends the image. Bytes after it (camera
    trailers) are allowed.

    Args:
        data: the whole file, starting with the start-of-image marker 0xFFD8.
    """
    pos = len(_JPEG_START)
    while True:
        pos = data.find(b"\xff", pos)  # libjpeg too skips stray bytes between segments
        if pos < 0 or pos + 1 >= len(data):
            return False
        code = data[pos + 1]
        if code == 0xFF:  # a fill byte before a marker
            pos += 1
        elif code == _JPEG_END[1]:
            return True
        elif code == _START_OF_SCAN:
            return data.rfind(_JPEG_END, pos + 2) >= 0  # from the end: where a complete file has it
        elif code in _NO_LENGTH:
            pos += 2
        elif pos + 4 > len(data):
            return False
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")


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
        ImageReadError: the file is missing, empty, unreadable, not an image, or a truncated JPEG.
        ImageSizeError: (an ImageReadError and a ValueError) the decoded size differs from ``expected_hw``.
    """
    if not os.path.isfile(path):  # checked first: cv2 would also print a warning of its own
        raise ImageReadError(path, "missing")
    try:
        data = Path(path).read_bytes()  # decoded from memory: the JPEG check reads the same bytes
    except OSError as err:
        raise ImageReadError(path, "unreadable", err.strerror or type(err).__name__) from None
    if not data:
        raise ImageReadError(path, "empty")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), _READ_FLAGS)
    if image is None:  # cv2 returns None instead of raising
        raise ImageReadError(path, "unreadable")
    if data.startswith(_JPEG_START) and not jpeg_is_complete(data):
        raise ImageReadError(path, "truncated")
    if expected_hw is not None and image.shape[:2] != tuple(expected_hw):
        raise ImageSizeError(path, "size", f"{image.shape[1]}x{image.shape[0]} (WxH), the annotations assume "
                                           f"{expected_hw[1]}x{expected_hw[0]}")  # fmt: skip
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
