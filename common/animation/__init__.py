"""Rigged animation export of tracked SMPL-X results: glTF 2.0 binary (.glb) and BVH.

`results` defines the per-frame, per-track results file the exporters read (demo/video.py writes it), `rig`
builds a shaped SMPL-X rig and a track's local joint rotations, `gltf_export` and `bvh_export` write the files
(`bvh_export` also reads BVH back). tool/export_animation.py is the command line.
"""
