"""Human3.6M multi-view: 4 calibrated views per frame from learnable triangulation's labels file, evaluated by
relative and absolute MPJPE."""

from data.Human36MMultiView.Human36MMultiView import Human36MMultiView

__all__ = ["Human36MMultiView"]
