"""Export one tracked person of a video's SMPL-X results as a rigged animation: glTF 2.0 binary (.glb) or BVH.

    python tool/export_animation.py RESULTS.npz --track K --out PATH [--format glb|bvh] [--fps 30]
        [--human-model-path DIR | --cfg YAML | --body-model synthetic] [--gender neutral|male|female]
        [--no-camera-frame] [--bvh-units cm|m]

RESULTS.npz is the per-frame, per-track table (common/animation/results.py has the contract; demo/video.py
writes one). The subject's shape is the mean of the track's `shape` rows. The .glb holds the shaped SMPL-X mesh,
its skeleton and skin, the expressions as morph targets, and one animation at frame / fps seconds
(common/animation/gltf_export.py); the .bvh holds the skeleton and its joint rotations, offsets in centimetres by
default (common/animation/bvh_export.py). Coordinates are metres. By default the parameters are taken to be in an
OpenCV camera frame (y down), as demo/video.py writes them, and the whole motion is turned 180 degrees about x so
that the person stands up along +y, glTF's and Blender's importers' up axis; `--no-camera-frame` keeps the
parameters' own frame (e.g. SMPL-X parameters fitted in a y-up world).

Relative paths are relative to the repository root. Bad input (a missing file or key, an unknown track, a
missing body model) ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common` and `main`

import numpy as np

from common.animation.bvh_export import UNIT_SCALE, write_bvh
from common.animation.gltf_export import write_glb
from common.animation.results import ResultsFile
from common.animation.rig import CAMERA_TO_Y_UP, SMPLXRig, rig_motion
from common.engine.cli import UsageError, run_cli
from common.paths import resolve_repo_path
from main.config import ConfigError

if TYPE_CHECKING:
    from torch import nn

FORMATS = ("glb", "bvh")
DEFAULT_FPS = 30.0
GENDERS = ("neutral", "male", "female")


def export_track(
    results: ResultsFile,
    track: int,
    out: Path,
    file_format: str,
    layer: nn.Module,
    fps: float,
    camera_frame: bool = False,
    bvh_units: str = "cm",
) -> Path:
    """Writes one track of a results file as a .glb or .bvh.

    Args:
        results: the validated results file.
        track: the track id (`UnknownTrackError` lists the ids there are when it is not in the file).
        out: the output file.
        file_format: "glb" or "bvh".
        layer: the ``smplx.SMPLX`` layer the parameters belong to.
        fps: frames per second of the results' frame indices.
        camera_frame: the parameters are in an OpenCV camera frame: turn the motion 180 degrees about x.
        bvh_units: "cm" or "m" for the BVH's offsets and positions.

    Returns:
        The written path.
    """
    motion = results.track(track)
    rig = SMPLXRig.from_layer(layer, motion.shape.mean(axis=0))  # one body for the whole track
    moved = rig_motion(rig, motion, CAMERA_TO_Y_UP if camera_frame else None)
    if file_format == "glb":
        return Path(write_glb(out, rig, moved, fps, name=f"smplx_track_{track}"))
    return Path(write_bvh(out, rig, moved, fps, units=bvh_units))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="the results .npz (common/animation/results.py has its contract)")
    parser.add_argument("--track", type=int, help="the track id to export (optional when the file has one track)")
    parser.add_argument("--out", required=True, help="the output file (.glb or .bvh)")
    parser.add_argument("--format", choices=FORMATS, help="the output format (default: from --out's suffix)")
    parser.add_argument(
        "--fps", type=float, help=f"frames per second (default: the file's 'fps', else {DEFAULT_FPS:g})"
    )
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--human-model-path", help="the body-model tree (default: the config's human_model_path)")
    models.add_argument("--cfg", help="a config (name in main/configs/ or yaml path) whose human_model_path to use")
    models.add_argument("--body-model", choices=("synthetic",), help="'synthetic': the generated stand-in")
    parser.add_argument("--gender", choices=GENDERS, default="neutral", help="the SMPL-X model (default neutral)")
    parser.add_argument("--camera-frame", action=argparse.BooleanOptionalAction, default=True,
                        help="the parameters are in an OpenCV camera frame (y down), as demo/video.py writes them: "
                             "turn them to y up (default); --no-camera-frame keeps their own frame")  # fmt: skip
    parser.add_argument("--bvh-units", choices=tuple(UNIT_SCALE), default="cm", help="BVH units (default cm)")
    return parser


def _human_model_path(args: argparse.Namespace) -> Path:
    if args.body_model == "synthetic":
        from common.body_models.synthetic import ensure_synthetic_body_models

        return ensure_synthetic_body_models()
    if args.human_model_path is not None:
        path = resolve_repo_path(args.human_model_path)
        if not path.is_dir():
            raise UsageError(f"--human-model-path {path} is not a folder")
        return path
    from main.config import load_config

    return Path(load_config(args.cfg).human_model_path)


def _chosen_track(results: ResultsFile, track: int | None) -> int:
    if track is not None:
        return track
    if len(results.tracks) == 1:
        return results.tracks[0]
    raise UsageError(f"{results.path} has {len(results.tracks)} tracks; choose one with --track "
                     f"({', '.join(map(str, results.tracks)) or 'none'})")  # fmt: skip


def _chosen_format(args: argparse.Namespace, out: Path) -> str:
    if args.format is not None:
        return args.format
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise UsageError(f"--out {out}: cannot tell the format from the suffix; pass --format {'|'.join(FORMATS)}")
    return suffix


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = resolve_repo_path(args.out)
    file_format = _chosen_format(args, out)
    if args.fps is not None and not (np.isfinite(args.fps) and args.fps > 0):
        raise UsageError(f"--fps must be a positive number, got {args.fps}")
    results = ResultsFile(resolve_repo_path(args.results))
    track = _chosen_track(results, args.track)
    results.track(track)  # an unknown track fails here, before the body model loads
    fps = args.fps or results.fps or DEFAULT_FPS
    from common.body_models import get_body_models  # torch and smplx: only once the input is known to be good

    layer = get_body_models(_human_model_path(args)).smplx(args.gender)
    written = export_track(results, track, out, file_format, layer, fps, args.camera_frame, args.bvh_units)
    motion = results.track(track)
    print(f"wrote {written}: track {track}, {len(motion)} frames ({motion.frames[0]}..{motion.frames[-1]}) "
          f"at {fps:g} fps")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="export_animation.py", user_errors=(ConfigError,)))
