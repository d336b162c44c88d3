"""Synthetic dataset in AGORA's parsed layout, rendered from SMPL-X parameters of the selected body model.

``make_dataset``/``ensure_dataset`` write a split; ``ImageGenerator`` makes single images; the AGORA loader
reads the result unchanged (``cfg.data.dataset_roots={'AGORA': DIR}``). ``make_freihand``/``make_ffhq`` (and their
``ensure_*``) write right-hand crops in FreiHAND's layout and face crops in FFHQ's, posed with MANO and FLAME.
``make_h36m``/``ensure_h36m`` write SMPL-X people seen by 4 calibrated cameras in the upstream Integral Human3.6M
layout (``data/s_XX_act_XX_subact_XX_ca_XX/h36m_meta.mat`` + JPEG frames); ``make_mpii``/``ensure_mpii`` frames of
those people in MPII's COCO-format release (annotations/train.json + images/), Integral's 2D set;
``make_h36m_multiview``/``make_cmu_panoptic`` the multi-view layouts of learnable triangulation (labels .npy,
CMU Panoptic's json release); ``make_msra``/``ensure_msra`` MANO hand depth maps in MSRA's binary layout (V2V).
"""

from .dataset_writer import ensure_dataset, make_dataset
from .ffhq_writer import ensure_ffhq, make_ffhq
from .freihand_writer import ensure_freihand, make_freihand
from .generator import GeneratorOptions, ImageGenerator, ImageRecords
from .h36m_writer import ensure_h36m, make_h36m
from .mpii_writer import ensure_mpii, make_mpii
from .msra_writer import ensure_msra, make_msra
from .multiview_writer import make_cmu_panoptic, make_h36m_multiview

__all__ = [
    "GeneratorOptions", "ImageGenerator", "ImageRecords", "ensure_dataset", "ensure_ffhq", "ensure_freihand",
    "ensure_h36m", "ensure_mpii", "ensure_msra", "make_cmu_panoptic", "make_dataset", "make_ffhq", "make_freihand",
    "make_h36m", "make_h36m_multiview", "make_mpii", "make_msra",
]  # fmt: skip
