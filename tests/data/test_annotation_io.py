"""The shared readers every loader calls: paths confined to their root (data/annotation_io.py) and the one set of
parametric-fit parsers (data/fits.py). The loaders' own uses are tested in tests/data/test_hostile_annotations.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data.AGORA.fits import checked_relpath, read_smpl_params, read_smplx_params
from data.annotation_io import numbers, optional_entry, path_in_root, read_coco, read_json, relative_path
from data.fits import camera_params, gender_of, mano_params, neural_annot_fit, smpl_params, smplx_params
from data.record import AnnotationError


# --- paths ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        ["/etc", "x.jpg"],
        ["a", "..", "..", "b.jpg"],
        ["C:\\data", "x.jpg"],
        ["", "x.jpg"],
        "a\\..\\..\\b.jpg",
        "a/../b.jpg",
        "C:x.jpg",
        "\\\\server\\share\\x.jpg",
        "/etc/passwd",
        "..",
        "",
        "a\0b.jpg",
        None,
        7,
        ["a", None],
    ],
)
def test_paths_that_are_absolute_climb_or_are_not_paths_are_refused(value: object, tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"ann\.json: image 3, file_name ") as err:
        path_in_root(tmp_path, value, Path("ann.json"), "image 3, file_name")
    assert isinstance(err.value, ValueError) and err.value.path == Path("ann.json")


def test_paths_inside_the_root_keep_their_components() -> None:
    base = Path("/data/PW3D")
    assert path_in_root(base, ["seq", "a.jpg"], "f.json", "image 1") == base / "seq" / "a.jpg"
    assert path_in_root(base, "seq\\b.jpg", "f.json", "image 1") == base / "seq" / "b.jpg"
    assert path_in_root(base, "./seq//c.jpg", "f.json", "image 1") == base / "seq" / "c.jpg"
    assert relative_path("x/./y.json", "f.json", "annotation 1").as_posix() == "x/y.json"


def test_a_symlinked_folder_inside_the_root_is_followed(tmp_path: Path) -> None:
    # The user's own set-up (images on another disk): the check is lexical, the link is not resolved.
    elsewhere, root = tmp_path / "disk", tmp_path / "root"
    (elsewhere / "images").mkdir(parents=True)
    (elsewhere / "images" / "a.png").write_bytes(b"x")
    root.mkdir()
    (root / "images").symlink_to(elsewhere / "images")
    path = path_in_root(root, "images/a.png", "f.json", "image 1")
    assert path == root / "images" / "a.png" and path.read_bytes() == b"x"


def test_agora_tools_check_keeps_its_message_and_returns_the_relative_path() -> None:
    assert checked_relpath("smplx_params_cam\\train_0/x.json", Path("a.json"), "annotation 2", "k") == (
        "smplx_params_cam/train_0/x.json"
    )
    with pytest.raises(AnnotationError, match=r"a\.json: annotation 2, smplx_param_path '\.\./x\.json': climbs"):
        checked_relpath("../x.json", Path("a.json"), "annotation 2", "smplx_param_path")


# --- json and COCO files ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (b'{"images": [', "not valid json"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"images: []\n", "not valid json"),
    ],
)
def test_files_that_are_not_json_name_the_file(content: bytes, match: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(AnnotationError, match=match) as err:
        read_json(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def _coco(**changes: object) -> dict:
    image = {"id": 1, "file_name": "a.png", "height": 48, "width": 64}
    ann = {"id": 10, "image_id": 1, "bbox": [1, 2, 3, 4]}
    return {"images": [image], "annotations": [ann]} | changes


@pytest.mark.parametrize(
    ("coco", "match"),
    [
        ([], "expected a COCO-format json object, got a list"),
        ({"images": []}, "it has no 'annotations' list"),
        (_coco(images={"1": {}}), "'images' is a dict, expected a list"),
        (_coco(annotations=["x"]), r"annotations\[0\] is 'x', expected a json object"),
        (_coco(annotations=[{"id": "ten", "image_id": 1, "bbox": [1, 2, 3, 4]}]), "'id' is 'ten'"),
        (_coco(annotations=[{"id": 10, "image_id": 1}]), "annotation 10 has no 'bbox'"),
        (_coco(annotations=[{"id": 10, "image_id": 1, "bbox": [1, 2, 3]}]), r"annotation 10 'bbox' is \[1, 2, 3\]"),
        (_coco(annotations=[{"id": 10, "image_id": 1, "bbox": "1 2 3 4"}]), "'bbox' is '1 2 3 4', expected 4"),
        (_coco(annotations=[{"id": 10, "image_id": 2, "bbox": [1, 2, 3, 4]}]), "image_id 2, which is not in"),
        (_coco(images=[{"id": 1, "file_name": "a.png", "height": "48", "width": 64}]), "image 1 'height' is '48'"),
        (_coco(images=[{"id": 1, "height": 48, "width": 64}]), "image 1 has no 'file_name'"),
    ],
)
def test_coco_files_of_the_wrong_layout_or_types_name_file_entry_and_key(
    coco: object, match: str, tmp_path: Path
) -> None:
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    with pytest.raises(AnnotationError, match=match) as err:
        read_coco(path, image_keys=("file_name", "height", "width"), annotation_keys=("bbox",))
    assert str(err.value).startswith(f"{path}: ")


def test_values_that_are_not_numbers_or_of_another_size_are_named() -> None:
    np.testing.assert_array_equal(numbers([[1, 2], [3, 4]], (4,), "w"), [1, 2, 3, 4])
    for value in ("1.5", None, {"x": 1}, [[1, 2], [3]], [1, "a"]):
        with pytest.raises(AnnotationError, match="w: expected 2 numbers"):
            numbers(value, (2,), "w")
    with pytest.raises(AnnotationError, match=r"w: 3 values, expected 2 numbers \(2,\)"):
        numbers([1, 2, 3], (2,), "w")
    assert optional_entry({"a": {"b": 1}}, ("a", "c"), Path("t.json")) is None
    with pytest.raises(AnnotationError, match=r"t\.json: \[a\] is 3, expected a json object"):
        optional_entry({"a": 3}, ("a", "b"), Path("t.json"))


# --- fits -------------------------------------------------------------------------------------------------------------
SMPL = {"pose": [0.0] * 72, "shape": [0.0] * 11, "trans": [0.0] * 3, "gender": "F"}


def test_smpl_params_errors_name_the_entry_model_and_key() -> None:
    params = smpl_params(SMPL, "f.json [1]")
    assert params.gender == "female" and params.shape.shape == (10,)  # a kid's 11th beta is dropped
    with pytest.raises(AnnotationError, match=r"f\.json \[1\]: SMPL 'pose' has 69 values, expected 72"):
        smpl_params(SMPL | {"pose": [0.0] * 69}, "f.json [1]")
    with pytest.raises(AnnotationError, match=r"f\.json \[1\]: the SMPL parameters lack 'trans'"):
        smpl_params({k: v for k, v in SMPL.items() if k != "trans"}, "f.json [1]")
    with pytest.raises(AnnotationError, match=r"f\.json \[1\]: SMPL 'shape' has 9 values, expected 10 or more"):
        smpl_params(SMPL | {"shape": [0.0] * 9}, "f.json [1]")
    with pytest.raises(AnnotationError, match="unknown gender 'x'"):
        smpl_params(SMPL | {"gender": "x"}, "f.json [1]")
    with pytest.raises(AnnotationError, match=r"f\.json \[1\]: SMPL 'trans' is 'abc', not a list of numbers"):
        smpl_params(SMPL | {"trans": "abc"}, "f.json [1]")
    with pytest.raises(AnnotationError, match=r"f\.json \[1\]: expected SMPL parameters .*got \[1, 2\]"):
        smpl_params([1, 2], "f.json [1]")


def test_smplx_parts_follow_their_flags_and_absent_parts_are_none() -> None:
    body = {"root_pose": [0.1] * 3, "body_pose": [0.0] * 63, "shape": [0.0] * 10, "trans": [0.0] * 3}
    hands = {"lhand_pose": [0.2] * 45, "rhand_pose": [0.3] * 45, "jaw_pose": [0.0] * 3, "expr": [0.0] * 10}
    params = smplx_params(body | hands | {"rhand_valid": False}, "w", part_valid={"lhand": True, "face": False})
    assert params.lhand_pose is not None and params.rhand_pose is None and params.jaw_pose is None
    assert smplx_params(body, "w").lhand_pose is None and smplx_params(body, "w").gender == "neutral"
    with pytest.raises(AnnotationError, match="w: SMPL-X 'lhand_pose' has 44 values, expected 45"):
        smplx_params(body | hands | {"lhand_pose": [0.0] * 44}, "w")


def test_the_smplx_layer_layout_reads_agora_files_and_requires_every_part(tmp_path: Path) -> None:
    layer = {
        "global_orient": [0.1] * 3,
        "body_pose": [0.0] * 63,
        "left_hand_pose": [0.2] * 45,
        "right_hand_pose": [0.3] * 45,
        "jaw_pose": [0.0] * 3,
        "betas": [0.5] * 11,
        "expression": [0.0] * 10,
        "transl": [1.0] * 3,
    }
    path = tmp_path / "0.json"
    path.write_text(json.dumps(layer))
    params = read_smplx_params(path, "male")
    np.testing.assert_array_equal(params.root_pose, [0.1] * 3)
    assert params.shape.shape == (10,) and params.gender == "male" and params.rhand_pose[0] == 0.3
    path.write_text(json.dumps({k: v for k, v in layer.items() if k != "expression"}))
    with pytest.raises(AnnotationError, match=rf"{path}: the SMPL-X parameters lack 'expression'"):
        read_smplx_params(path, "male")
    path.write_text(
        json.dumps({"global_orient": [0.1] * 3, "body_pose": [0.2] * 69, "betas": [0] * 10, "transl": [0] * 3})
    )
    smpl = read_smpl_params(path, "female")
    assert smpl.pose.shape == (72,) and smpl.pose[3] == pytest.approx(0.2)


def test_neural_annot_entries_for_each_model_and_their_camera() -> None:
    cam = {"focal": [500, 501], "princpt": [32, 24]}
    mano = {"pose": [0.0] * 48, "shape": [0.0] * 10, "trans": [0.0] * 3}
    params, camera = neural_annot_fit({"mano_param": mano, "cam_param": cam}, "mano", "w", side="left")
    assert params.side == "left" and camera.focal.tolist() == [500, 501] and camera.R is None
    flame = {"root_pose": [0.0] * 3, "jaw_pose": [0.0] * 3, "shape": [0.0] * 10, "expr": [0.0] * 10}
    assert neural_annot_fit({"flame_param": flame, "cam_param": cam}, "flame", "w")[0].trans.tolist() == [0, 0, 0]
    with pytest.raises(AnnotationError, match="w: the NeuralAnnot entry lacks 'cam_param'"):
        neural_annot_fit({"flame_param": flame}, "flame", "w")
    with pytest.raises(AnnotationError, match=r"w\['cam_param'\]: camera 'focal': expected 2 numbers"):
        neural_annot_fit({"flame_param": flame, "cam_param": cam | {"focal": "x"}}, "flame", "w")
    assert np.isnan(mano_params({k: v for k, v in mano.items() if k != "trans"}, "right", "w", np.nan).trans).all()
    h36m = camera_params(
        {"f": [1, 2], "c": [3, 4], "R": np.eye(3).tolist(), "t": [1000, 0, 0]},
        "w",
        focal="f",
        princpt="c",
        rotation="R",
        translation="t",
        translation_unit_m=1e-3,
    )
    assert h36m.t.tolist() == [1.0, 0.0, 0.0] and gender_of("M", "w") == "male"
