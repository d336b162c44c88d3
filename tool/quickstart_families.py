"""What the quickstart does for each model family: its synthetic data, its config and overrides, its demo input.

Each `prepare_*` writes (or reuses) the family's synthetic sets under output/data/ and returns a `FamilyRun`:
the yaml overlay, the key=value overrides for training and testing, and the held-out image and box the demo
draws. tool/quickstart.py then runs the same four user-facing commands for every family.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.engine.cli import UsageError
from common.paths import REPO_ROOT
from data.Synthetic import ensure_dataset, ensure_ffhq, ensure_freihand, ensure_h36m, ensure_mpii, make_h36m_multiview
from data.Synthetic.annotations import SCALE_TO_4K, annotation_file
from data.Synthetic.msra_writer import ensure_msra
from main.config import load_config

__all__ = ["FAMILY_RUNS", "FamilyRun", "demo_person"]

CONFIG_DIR = REPO_ROOT / "main" / "configs"
DATA_DIR = REPO_ROOT / "output" / "data"
SEED, HELD_OUT_SEED = 0, 1
MAX_DEMO_OCCLUSION = 10.0  # percent: the demo person is hardly hidden by another


@dataclass(frozen=True)
class FamilyRun:
    """One family's quickstart.

    Attributes:
        config: the yaml overlay of main/configs/.
        data_roots: the synthetic sets written, for the summary.
        train_overrides: key=value for training (dataset roots, the stand-in).
        test_overrides: key=value for testing (the held-out set).
        demo_image: a held-out image, or None for a family the demo does not draw (no mesh); demo_bbox: its person
            (hand, face) box, xywh pixels.
        demo_args: further demo arguments.
        after_test: the loaded config -> further steps after testing, (name, arguments after `python`) each.
    """

    config: Path
    data_roots: list[Path]
    train_overrides: list[str]
    test_overrides: list[str]
    demo_image: Path | None
    demo_bbox: list[float]
    demo_args: list[str] = field(default_factory=list)
    after_test: Callable[[Any], list[tuple[str, list[str]]]] | None = None


def demo_person(data_root: Path, split: str = "validation") -> tuple[Path, list[float]]:
    """The image and box (xywh, 1280x720 pixels) of the split's largest valid, hardly occluded person in full view.

    Args:
        data_root: a synthetic dataset root (AGORA layout; boxes in its json are at 3840x2160).
        split: the split to choose from.

    Raises:
        UsageError: no such person in the split.
    """
    document = json.loads((data_root / annotation_file(split)).read_text())
    images = {image["id"]: image for image in document["images"]}
    best: tuple[float, Path, list[float]] | None = None
    for annotation in document["annotations"]:
        image = images[annotation["image_id"]]
        x, y, w, h = (v / SCALE_TO_4K for v in annotation["bbox"])  # 1280x720 pixels
        in_view = x >= 0 and y >= 0 and x + w <= image["width"] and y + h <= image["height"]
        usable = annotation["is_valid"] and annotation["occlusion"] <= MAX_DEMO_OCCLUSION and in_view
        if usable and (best is None or h > best[0]):
            best = (h, data_root / image["file_name_1280x720"], [x, y, w, h])
    if best is None:
        raise UsageError(f"no fully visible, valid person in {data_root / annotation_file(split)}")
    return best[1], best[2]


def _first_coco_box(coco_file: Path, images_dir: Path) -> tuple[Path, list[float]]:
    """The first image of a COCO file and its first annotation's box."""
    document = json.loads(coco_file.read_text())
    image, annotation = document["images"][0], document["annotations"][0]
    return images_dir / image["file_name"], [float(v) for v in annotation["bbox"]]


def _agora_sets(body_models: Path, train: int, val: int, workers: int) -> Path:
    root = DATA_DIR / "Synthetic"
    for split, count in (("train", train), ("validation", val)):
        print(f"synthetic AGORA-format set, {split} split ({count} images, {workers} workers) ...", flush=True)
        ensure_dataset(root, split, count, seed=SEED, workers=workers, human_model_path=body_models)
    return root


def prepare_hand4whole(body_models: Path, train: int, val: int, workers: int) -> FamilyRun:
    root = _agora_sets(body_models, train, val, workers)
    roots = [f"human_model_path={body_models}", f"data.dataset_roots={{AGORA: {root}}}"]
    return FamilyRun(CONFIG_DIR / "synthetic.yaml", [root], roots, roots, *demo_person(root))


def prepare_pose2pose_body(body_models: Path, train: int, val: int, workers: int) -> FamilyRun:
    root = _agora_sets(body_models, train, val, workers)  # the same people, read through AGORA's SMPL variant
    roots = [f"human_model_path={body_models}", f"data.dataset_roots={{AGORA: {root}}}"]
    return FamilyRun(CONFIG_DIR / "synthetic_body.yaml", [root], roots, roots, *demo_person(root))


def prepare_pose2pose_hand(body_models: Path, train: int, val: int, workers: int) -> FamilyRun:
    root = DATA_DIR / "SyntheticFreiHAND"
    for split, count in (("train", train), ("eval", val)):
        print(f"synthetic FreiHAND-format set, {split} split ({count} crops, {workers} workers) ...", flush=True)
        ensure_freihand(root, count, split, seed=SEED, workers=workers, human_model_path=body_models)
    roots = [f"human_model_path={body_models}", f"data.dataset_roots={{FreiHAND: {root / 'data'}}}"]
    image, bbox = _first_coco_box(root / "data" / "freihand_eval_coco.json", root / "data")
    return FamilyRun(CONFIG_DIR / "synthetic_hand.yaml", [root], roots, roots, image, bbox, ["--hand-side", "right"])


def prepare_pose2pose_face(body_models: Path, train: int, val: int, workers: int) -> FamilyRun:
    root, held_out = DATA_DIR / "SyntheticFFHQ", DATA_DIR / "SyntheticFFHQ_heldout"
    for folder, count, seed in ((root, train, SEED), (held_out, val, HELD_OUT_SEED)):
        print(f"synthetic FFHQ-format set {folder.name} ({count} crops, {workers} workers) ...", flush=True)
        ensure_ffhq(folder, count, seed=seed, workers=workers, human_model_path=body_models)
    train_overrides = [f"human_model_path={body_models}", f"data.dataset_roots={{FFHQ: {root / 'data'}}}"]
    # FFHQ has one split: testing reads the held-out folder's (written with another seed)
    test_overrides = [f"human_model_path={body_models}", f"data.dataset_roots={{FFHQ: {held_out / 'data'}}}"]
    image, bbox = _first_coco_box(held_out / "data" / "FFHQ.json", held_out / "data" / "images")
    return FamilyRun(CONFIG_DIR / "synthetic_face.yaml", [root, held_out], train_overrides, test_overrides, image,
                     bbox)  # fmt: skip


MPII_IMAGES = 48  # the integral quickstart's 2D set: about as many samples as its 3D training set


def prepare_integral(body_models: Path, train: int, val: int, workers: int) -> FamilyRun:
    """Sequences of S1, S5 (training) and S9, S11 (testing, Protocol #2) from 4 cameras, ``train`` frames per
    sequence (every 5th trains, every 64th tests, as upstream), and the 2D set: MPII-format frames of the people
    S6, S7, S8; ``val`` is unused (the subjects split the set)."""
    root, mpii_root = DATA_DIR / "SyntheticH36M", DATA_DIR / "SyntheticMPII"
    print(f"synthetic Human3.6M-layout set ({train} frames per sequence, {workers} workers) ...", flush=True)
    ensure_h36m(root, subjects=(1, 5, 9, 11), actions=(2, 14), frames_per_sequence=train, seed=SEED, workers=workers,
                human_model_path=body_models)  # fmt: skip
    print(f"synthetic MPII-format set ({MPII_IMAGES} images, {workers} workers) ...", flush=True)
    ensure_mpii(mpii_root, MPII_IMAGES, seed=SEED, workers=workers, human_model_path=body_models)
    roots = [f"human_model_path={body_models}", f"data.dataset_roots={{Human36M: {root}, MPII: {mpii_root}}}"]
    return FamilyRun(CONFIG_DIR / "synthetic_integral.yaml", [root, mpii_root], roots, roots, None, [])  # no mesh


MULTIVIEW_IMAGE_SCALE = 0.25  # 250 x 250 frames: the person boxes (~100-130 pixels) about fill the 128-pixel crops
MULTIVIEW_MANIFEST = "synthetic_manifest_h36m_multiview.json"  # data/Synthetic/multiview_writer.py's


def _ensure_h36m_multiview(root: Path, frames: int, workers: int, body_models: Path) -> None:
    """make_h36m_multiview unless `root` holds a finished run with these settings (its manifest says)."""
    wanted = {"subjects": [1, 5, 9, 11], "actions": [2, 14], "trials": [1], "frames_per_sequence": frames,
              "seed": SEED, "human_model_path": str(body_models),
              "image_hw": [round(1002 * MULTIVIEW_IMAGE_SCALE), round(1000 * MULTIVIEW_IMAGE_SCALE)]}  # fmt: skip
    manifest = root / MULTIVIEW_MANIFEST
    if manifest.is_file() and all(json.loads(manifest.read_text()).get(k) == v for k, v in wanted.items()):
        return
    make_h36m_multiview(root, subjects=tuple(wanted["subjects"]), actions=tuple(wanted["actions"]),
                        frames_per_sequence=frames, seed=SEED, workers=workers, human_model_path=body_models,
                        image_scale=MULTIVIEW_IMAGE_SCALE)  # fmt: skip


def _run_command(name: str, command: list[str]) -> None:
    """One user-facing command as a new process (as tool/quickstart.py runs its steps)."""
    print(f"\n== {name}: {' '.join(command)}", flush=True)
    if subprocess.call(command, cwd=REPO_ROOT) != 0:
        raise UsageError(f"{name} failed: {' '.join(command)}")


def prepare_triangulation(body_models: Path, train: int, val: int, workers: int) -> FamilyRun:
    """The synthetic Human3.6M multi-view set (S1, S5 train, S9, S11 test; ``train`` frames per sequence, ``val``
    unused), then the algebraic model's stage: train main/configs/synthetic_triangulation_alg.yaml and test its last
    snapshot on the train and the test split (its pelvis places the volumetric cuboids); the run returned is the
    volumetric model (synthetic_triangulation_vol.yaml), which tool/quickstart.py trains and tests. The algebraic
    stage runs on the CPU or the first GPU with the yaml's settings (quickstart's --gpu and key=value overrides
    reach the volumetric stage only)."""
    root = DATA_DIR / "SyntheticH36MMultiView"
    print(f"synthetic Human3.6M multi-view set ({train} frames per sequence, {workers} workers) ...", flush=True)
    _ensure_h36m_multiview(root, train, workers, body_models)
    roots = [f"data.dataset_roots={{Human36MMultiView: {root}}}"]
    python, alg_config = sys.executable, CONFIG_DIR / "synthetic_triangulation_alg.yaml"
    alg_out = REPO_ROOT / "output" / "synthetic_triangulation_alg"
    _run_command("training (algebraic)", [python, str(REPO_ROOT / "main" / "train.py"), "--cfg", str(alg_config),
                                          *roots, f"output_dir={alg_out}"])  # fmt: skip
    end_epoch = load_config(alg_config).train.end_epoch
    snapshot = alg_out / "model_dump" / f"snapshot_{end_epoch - 1}.pth.tar"
    for split in ("train", "test"):  # the volumetric yaml reads <alg_out>/pelvis_<split>/result/.../results.pkl
        _run_command(f"testing (algebraic, {split} split)",
                     [python, str(REPO_ROOT / "main" / "test.py"), "--cfg", str(alg_config), "--ckpt", str(snapshot),
                      *roots, f"data.test_split={split}", f"output_dir={alg_out / f'pelvis_{split}'}"])  # fmt: skip
    pelvis = [f"multiview.pelvis_results_{split}={alg_out / f'pelvis_{split}' / 'result' / 'Human36MMultiView'}"
              f"/results.pkl" for split in ("train", "test")]  # fmt: skip
    return FamilyRun(CONFIG_DIR / "synthetic_triangulation_vol.yaml", [root], [*roots, *pelvis], [*roots, *pelvis],
                     None, [])  # fmt: skip


def _v2v_accuracy_steps(cfg: Any) -> list[tuple[str, list[str]]]:
    """V2V's upstream workflow after testing: the fold's ground-truth files (tool/gen_gt.py), then the accuracy
    plots of test_res.txt against them (tool/show_acc.py) in <output_dir>/vis/show_acc/."""
    root, subject, result = cfg.data.dataset_roots["MSRA"], cfg.data.msra_test_subject, Path(cfg.output_dir) / "result"
    gt_dir = result / "MSRA" / "gt"
    return [
        ("ground truth", [str(REPO_ROOT / "tool" / "gen_gt.py"), "--root", str(root), "--test-subject", str(subject),
                          "--out", str(gt_dir)]),
        ("accuracy plots", [str(REPO_ROOT / "tool" / "show_acc.py"), "--gt", str(gt_dir / f"test_s{subject}_gt.txt"),
                            "--pred", str(result / "MSRA" / "test_res.txt"), "--labels", cfg.name,
                            "--out", str(Path(cfg.output_dir) / "vis" / "show_acc")]),
    ]  # fmt: skip


def prepare_v2v(body_models: Path, train: int, val: int, workers: int) -> FamilyRun:
    """Synthetic MSRA-layout depth maps of subjects P0, P1 (training) and P2 (testing: data.msra_test_subject=2),
    ``train`` frames in each of the 17 gesture folders; ``val`` and ``workers`` are unused (one rendering process)."""
    root = DATA_DIR / "SyntheticMSRA"
    print(f"synthetic MSRA-layout set ({train} frames per gesture folder of P0, P1, P2) ...", flush=True)
    ensure_msra(root, subjects=(0, 1, 2), frames_per_gesture=train, seed=SEED, human_model_path=body_models)
    roots = [f"data.dataset_roots={{MSRA: {root}}}", "data.msra_test_subject=2"]
    return FamilyRun(CONFIG_DIR / "synthetic_v2v.yaml", [root], roots, roots, None, [],
                     after_test=_v2v_accuracy_steps)  # fmt: skip


FAMILY_RUNS: dict[str, tuple[Callable[[Path, int, int, int], FamilyRun], int, int]] = {
    "hand4whole": (prepare_hand4whole, 240, 40),
    "pose2pose_body": (prepare_pose2pose_body, 240, 40),
    "pose2pose_hand": (prepare_pose2pose_hand, 400, 50),
    "pose2pose_face": (prepare_pose2pose_face, 300, 40),
    "integral": (prepare_integral, 50, 0),
    "triangulation": (prepare_triangulation, 20, 0),
    "v2v": (prepare_v2v, 6, 0),
}
"""`model.arch` -> (prepare, default training images, default held-out images)."""
