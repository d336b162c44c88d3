"""AGORA tools: the raw release -> the parsed layout data/AGORA reads (agora2coco_smplx.py for the SMPL-X fits,
agora2coco_smpl.py for the SMPL fits, both over conversion.py), and the per-person crops of the 4K images
(crop_and_resize_4k_images.py), as Hand4Whole's tool/AGORA provides them."""
