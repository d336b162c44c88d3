"""Hand and face crops from the full-resolution input (torchvision roi_align), fed to their own backbones."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

from common.nets.layers import xy_constant

__all__ = ["FaceRoI", "HandRoI", "crop_boxes"]


def crop_boxes(
    img: Tensor, bbox_xyxy: Tensor, box_scale_xy: Sequence[float], output_shape_hw: Sequence[int], aligned: bool
) -> Tensor:
    """Bilinear crops resampled to a fixed size; box k is cut from image k modulo B.

    Args:
        img: (B, C, H, W) images.
        bbox_xyxy: (K, 4) boxes, K a multiple of B (e.g. [left hands; right hands]), box k belonging to image
            k % B, in a space that `box_scale_xy` maps to img pixels.
        box_scale_xy: (sx, sy) factors from the box space to img pixels (2.0 from 256x192 to 512x384).
        output_shape_hw: (h, w) of the crops, pixels.
        aligned: roi_align's pixel-centre shift. Hand4Whole used False (its public weights were trained so);
            True samples the box exactly under the continuous-coordinate convention.

    Returns:
        (K, C, h, w) crops; parts of a box outside the image read zeros.
    """
    scale = xy_constant(bbox_xyxy, *box_scale_xy, pairs=2)  # (4,) = (sx, sy, sx, sy)
    index = torch.arange(bbox_xyxy.shape[0], device=bbox_xyxy.device) % img.shape[0]  # (K,)
    rois = torch.cat((index.unsqueeze(1).to(bbox_xyxy.dtype), bbox_xyxy * scale), dim=1)  # (K, 5) index, x0 y0 x1 y1
    rois = rois.to(img.dtype)
    return roi_align(img, rois, output_size=tuple(output_shape_hw), spatial_scale=1.0, aligned=aligned)


class _PartRoI(nn.Module):
    """A part's crops from the input image and the backbone that reads them.

    Args:
        backbone: the part's backbone, registered as `backbone` (Hand4Whole's `hand_roi_net.backbone`,
            `face_roi_net.backbone`).
        box_scale_xy: (sx, sy) from the box space (body input, 256x192) to the image (512x384).
        output_shape_hw: crop size (hands 256x256, face 192x192).
        aligned: roi_align's `aligned` flag (see crop_boxes).
    """

    def __init__(
        self, backbone: nn.Module, box_scale_xy: Sequence[float], output_shape_hw: Sequence[int], aligned: bool = False
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.box_scale_xy = tuple(box_scale_xy)
        self.output_shape_hw = tuple(output_shape_hw)
        self.aligned = aligned


class HandRoI(_PartRoI):
    """Both hands through one right-hand backbone: the left-hand crop is mirrored into right-hand space."""

    def crop(self, img: Tensor, lhand_bbox_xyxy: Tensor, rhand_bbox_xyxy: Tensor) -> Tensor:
        """Hand crops, left mirrored horizontally, stacked [left; right] along the batch.

        Args:
            img: (B, 3, H, W) input images.
            lhand_bbox_xyxy: (B, 4) left-hand boxes in body-input pixels.
            rhand_bbox_xyxy: (B, 4) right-hand boxes in body-input pixels.

        Returns:
            (2B, 3, h, w): rows 0..B-1 are the mirrored left hands, rows B..2B-1 the right hands.
        """
        boxes = torch.cat((lhand_bbox_xyxy, rhand_bbox_xyxy))  # (2B, 4): both hands in one roi_align call
        crops = crop_boxes(img, boxes, self.box_scale_xy, self.output_shape_hw, self.aligned)  # (2B, 3, h, w)
        batch = img.shape[0]
        return torch.cat((crops[:batch].flip(-1), crops[batch:]))

    def forward(self, img: Tensor, lhand_bbox_xyxy: Tensor, rhand_bbox_xyxy: Tensor) -> Tensor:
        """Hand features: (2B, C, h/32, w/32), mirrored left hands first, then right hands (see `crop`)."""
        return self.backbone(self.crop(img, lhand_bbox_xyxy, rhand_bbox_xyxy))


class FaceRoI(_PartRoI):
    """Face crop and the face backbone."""

    def crop(self, img: Tensor, face_bbox_xyxy: Tensor) -> Tensor:
        """(B, 3, H, W) images and (B, 4) face boxes in body-input pixels -> (B, 3, h, w) face crops."""
        return crop_boxes(img, face_bbox_xyxy, self.box_scale_xy, self.output_shape_hw, self.aligned)

    def forward(self, img: Tensor, face_bbox_xyxy: Tensor) -> Tensor:
        """Face features: (B, C, h/32, w/32)."""
        return self.backbone(self.crop(img, face_bbox_xyxy))
