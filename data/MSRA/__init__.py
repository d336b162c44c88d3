"""MSRA hand gestures (Sun et al., CVPR 2015): depth maps and 21 hand joints, for the V2V family.

The release's files are read by `data.MSRA.msra_files` (pure functions: joint.txt, _depth.bin, V2V-PoseNet's
refined centre files, leave-one-subject-out folds).
"""
