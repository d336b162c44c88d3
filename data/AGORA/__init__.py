"""AGORA (SMPL-X fits, or SMPL fits for the body model; 1280x720 images or per-person crops of the 4K images); also
reads data/Synthetic's output."""
