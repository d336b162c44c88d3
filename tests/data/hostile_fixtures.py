"""The smallest valid layout of each dataset, with the image path (and AGORA's parameter-file paths) chosen by the
test: what tests/data/test_hostile_annotations.py turns hostile. Not a test file.

Each writer puts one 64x48 image entry with one person (or hand, or face) in its dataset's real layout under
``root``, with every other file the loader opens at construction, and returns a `Layout`: where the annotation file
is and which folder its image file names are relative to. With a plain file name the dataset builds one record or
more, so a test that sees a refusal knows the path caused it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from main.config import Config, load_config
from tests.data.fixtures import IMG_HW, PERSON_BOX, empty_coco, write_json

FOCAL, PRINCPT = [60.0, 60.0], [32.0, 24.0]
CAM = {"focal": FOCAL, "princpt": PRINCPT}
_FAMILY_OVERRIDES = {
    "hand": (
        "pose2pose_hand",
        [
            "model.resnet_type=18",
            "model.input_img_shape=[64,64]",
            "model.output_hm_shape=[8,2,2]",
            "model.princpt=[32,32]",
        ],
    ),
    "face": (
        "pose2pose_face",
        [
            "model.resnet_type=18",
            "model.input_img_shape=[64,48]",
            "model.output_hm_shape=[8,2,2]",
            "model.princpt=[24,32]",
        ],
    ),
    "body": (None, []),
}


@dataclass
class Layout:
    """A written dataset: its name and split, the file holding the image paths and the folder they are relative to."""

    name: str
    split: str
    root: Path
    annotation: Path
    image_dir: Path
    crop: str = "body"
    extra_overrides: list[str] = field(default_factory=list)

    def cfg(self, human_model_path: Path, *overrides: str) -> Config:
        """The config of a family that reads this dataset, with its root set."""
        config, family = _FAMILY_OVERRIDES[self.crop]
        roots = json.dumps({self.name: str(self.root)})
        return load_config(
            config,
            [
                f"human_model_path={human_model_path}",
                f"data.dataset_roots={roots}",
                f"output_dir={self.root / 'output'}",
                *family,
                *self.extra_overrides,
                *overrides,
            ],
        )


def image(file_name: Any, **fields: Any) -> dict[str, Any]:
    return {"id": 1, "file_name": file_name, "height": IMG_HW[0], "width": IMG_HW[1], **fields}


def person(**fields: Any) -> dict[str, Any]:
    return {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": PERSON_BOX, **fields}


def coco(img: dict[str, Any], ann: dict[str, Any]) -> dict[str, Any]:
    return empty_coco() | {"images": [img], "annotations": [ann]}


def write_ehf(root: Path, file_name: Any) -> Layout:
    boxes = {key: [30.0, 20.0, 6.0, 6.0] for key in ("lefthand_bbox", "righthand_bbox", "face_bbox")}
    ann = {"id": 11, "image_id": 1, "category_id": 1, "body_bbox": PERSON_BOX, **boxes}
    write_json(root / "EHF.json", coco(image(file_name), ann))
    return Layout("EHF", "test", root, root / "EHF.json", root)


def write_mpii(root: Path, file_name: Any) -> Layout:
    keypoints = [30.0, 20.0, 1.0] + [0.0] * 15 * 3
    write_json(root / "annotations" / "train.json", coco(image(file_name), person(keypoints=keypoints)))
    write_json(root / "annotations" / "MPII_train_SMPLX_NeuralAnnot.json", {})
    return Layout("MPII", "train", root, root / "annotations" / "train.json", root)


SMPL_FIT = {"pose": [0.0] * 72, "shape": [0.0] * 10, "trans": [0.0, 0.0, 4.0], "gender": "male"}


def write_pw3d(root: Path, file_name: Any, sequence: Any = "courtyard_00") -> Layout:
    img = image(file_name, sequence=sequence, cam_param=CAM)
    write_json(root / "3DPW_test.json", coco(img, person(smpl_param=SMPL_FIT)))
    return Layout("PW3D", "test", root, root / "3DPW_test.json", root / "imageFiles" / str(sequence))


def _world_joints(count: int) -> list[list[float]]:
    """``count`` joints 4 m in front of an identity camera, millimetres, spread over the fixture's person box."""
    return [[-200.0 + 400.0 * k / count, -300.0 + 600.0 * k / count, 4000.0] for k in range(count)]


def write_mpi_inf_3dhp(root: Path, file_name: Any) -> Layout:
    prefix = "MPI-INF-3DHP"
    img = image(file_name, subject_idx=1, seq_idx=1, frame_idx=0, cam_idx=0)
    write_json(root / f"{prefix}_1k.json", coco(img, person()))
    camera = CAM | {"R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "t": [0.0, 0.0, 0.0]}
    write_json(root / f"{prefix}_camera_1k.json", {"1": {"1": {"0": camera}}})
    write_json(root / f"{prefix}_joint_3d.json", {"1": {"1": {"0": _world_joints(17)}}})
    write_json(root / f"{prefix}_SMPLX_NeuralAnnot.json", {})
    return Layout(
        "MPI_INF_3DHP", "train", root, root / f"{prefix}_1k.json", root / "images_1k" / "S1" / "Seq1" / "imageSequence"
    )


def write_human36m(root: Path, file_name: Any) -> Layout:
    for subject in (9, 11):  # the test split's subjects; subject 11 has no annotation
        img = image(file_name, frame_idx=0, cam_idx=4, action_idx=2, subaction_idx=1)
        content = coco(img, person()) if subject == 9 else empty_coco()
        base = root / "annotations" / f"Human36M_subject{subject}"
        write_json(Path(f"{base}_data.json"), content)
        camera = {"f": FOCAL, "c": PRINCPT, "R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "t": [0.0, 0.0, 0.0]}
        write_json(Path(f"{base}_camera.json"), {"4": camera})
        write_json(Path(f"{base}_joint_3d.json"), {"2": {"1": {"0": _world_joints(17)}}})
        write_json(Path(f"{base}_SMPLX_NeuralAnnot.json"), {})
    return Layout("Human36M", "test", root, root / "annotations" / "Human36M_subject9_data.json", root / "images")


def write_mscoco(root: Path, file_name: Any) -> Layout:
    fields = {
        "keypoints": [30.0, 20.0, 2.0] + [0.0] * 16 * 3,
        "foot_kpts": [0.0] * 6 * 3,
        "lefthand_kpts": [0.0] * 21 * 3,
        "righthand_kpts": [0.0] * 21 * 3,
        "face_kpts": [0.0] * 68 * 3,
    }
    path = root / "annotations" / "coco_wholebody_val_v1.0.json"
    write_json(path, coco(image(file_name), person(**fields)))
    return Layout("MSCOCO", "test", root, path, root / "images" / "val2017")


def agora_annotation(
    param_path: Any = "smplx_params_cam/validation/img/0.json", cam_path: Any = "cam_params/validation/img.json"
) -> dict[str, Any]:
    return {
        "id": 11,
        "image_id": 1,
        "person_id": 0,
        "is_valid": True,
        "bbox": [1500.0, 400.0, 600.0, 1200.0],
        "smplx_param_path": param_path,
        "cam_param_path": cam_path,
        "gender": "female",
    }


def write_agora(root: Path, file_name: Any, ann: dict[str, Any] | None = None) -> Layout:
    img = {"id": 1, "file_name_1280x720": file_name, "file_name_3840x2160": "3840x2160/validation/img.png"}
    path = root / "AGORA_validation_SMPLX.json"
    write_json(path, {"images": [img], "annotations": [ann or agora_annotation()]})
    return Layout("AGORA", "validation", root, path, root)


def write_freihand(root: Path, file_name: Any) -> Layout:
    img = image(file_name, db_idx=0)
    write_json(root / "freihand_train_coco.json", coco(img, person(bbox=[20.0, 14.0, 20.0, 20.0])))
    write_json(root / "freihand_train_data.json", {"0": {"cam_param": CAM}})
    return Layout("FreiHAND", "train", root, root / "freihand_train_coco.json", root, crop="hand")


def write_interhand26m(root: Path, file_name: Any) -> Layout:
    folder = root / "annotations" / "val"
    img = image(file_name, capture=0, seq_name="ROM01", camera="400002", frame_idx=20)
    ann = {"id": 11, "image_id": 1, "joint_valid": [1] * 42, "hand_type": "right"}  # no category_id: none is read
    write_json(folder / "InterHand2.6M_val_data.json", coco(img, ann))
    cameras = {
        "campos": {"400002": [0.0, 0.0, 0.0]},
        "camrot": {"400002": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
        "focal": {"400002": FOCAL},
        "princpt": {"400002": PRINCPT},
    }
    write_json(folder / "InterHand2.6M_val_camera.json", {"0": cameras})
    write_json(folder / "InterHand2.6M_val_joint_3d.json", {"0": {"20": {"world_coord": _world_joints(42)}}})
    write_json(folder / "InterHand2.6M_val_MANO_NeuralAnnot.json", {})
    return Layout(
        "InterHand26M", "val", root, folder / "InterHand2.6M_val_data.json", root / "images" / "val", crop="hand"
    )


def write_ffhq(root: Path, file_name: Any) -> Layout:
    ann = person(bbox=[22.0, 12.0, 20.0, 24.0], keypoints=[32.0, 24.0] * 73, keypoints_valid=[1] * 73)
    write_json(root / "FFHQ.json", coco(image(file_name), ann))
    write_json(root / "flame_param.json", {})
    return Layout("FFHQ", "train", root, root / "FFHQ.json", root / "images", crop="face")


WRITERS: dict[str, Callable[[Path, Any], Layout]] = {
    "EHF": write_ehf,
    "MPII": write_mpii,
    "PW3D": write_pw3d,
    "MPI_INF_3DHP": write_mpi_inf_3dhp,
    "Human36M": write_human36m,
    "MSCOCO": write_mscoco,
    "AGORA": write_agora,
    "FreiHAND": write_freihand,
    "InterHand26M": write_interhand26m,
    "FFHQ": write_ffhq,
}
"""Dataset name -> the writer of its smallest layout, for every loader of data.DATASETS."""
