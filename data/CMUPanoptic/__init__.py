"""CMU Panoptic: HD views of the dome with COCO-19 3D skeletons, evaluated by relative and absolute MPJPE."""

from data.CMUPanoptic.CMUPanoptic import CMUPanoptic

__all__ = ["CMUPanoptic"]
