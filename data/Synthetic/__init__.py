"""Synthetic dataset in AGORA's parsed layout, rendered from SMPL-X parameters of the selected body model.

``make_dataset``/``ensure_dataset`` write a split; ``ImageGenerator`` makes single images; the AGORA loader
reads the result unchanged (``cfg.data.dataset_roots={'AGORA': DIR}``).
"""

from .dataset_writer import ensure_dataset, make_dataset
from .generator import GeneratorOptions, ImageGenerator, ImageRecords

__all__ = ["GeneratorOptions", "ImageGenerator", "ImageRecords", "ensure_dataset", "make_dataset"]
