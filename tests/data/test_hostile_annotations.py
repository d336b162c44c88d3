"""Hostile and broken dataset inputs (issue 16, items 2 and 3): every loader refuses an annotation path out of its
root before opening anything there; broken, mistyped and empty annotation files, unknown dataset names and bad
image files are errors of one line naming the culprit; data.skip_bad_images drops and counts bad images instead.

"Nothing outside was opened" is observed with a Python audit hook (PEP 578): every ``open`` of a file by Python
code, which is how annotations and, through `read_image`, images are read.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader

import main.train
from common.engine.cli import run_cli
from common.utils.image_io import ImageReadError, ImageSizeError, jpeg_is_complete, read_image
from data import DATASETS, build_dataset
from data.dataset import BaseDataset
from data.record import AnnotationError, Record
from main.config import ConfigError, load_config
from tests.data.fixtures import IMG_HW, PERSON_BOX, make_cfg, write_image, write_json
from tests.data.hostile_fixtures import WRITERS, Layout, agora_annotation, write_agora, write_mpii, write_pw3d

_opened: list[str] | None = None  # the files opened while `opened_files` records, else None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # hooks cannot be removed; this one costs one comparison outside `opened_files`


@contextlib.contextmanager
def opened_files() -> Iterator[list[str]]:
    """The real paths of the files Python opens inside the ``with`` block."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def build(layout: Layout, human_model_path: Path, *overrides: str) -> BaseDataset:
    return build_dataset(layout.name, layout.split, layout.cfg(human_model_path, *overrides))


# Loaders that take no file path from an annotation: MSRA's and the HDF5 files' paths are fixed by the layout; the
# multi-view sets build them from names that their readers check (tests/data/test_multiview_datasets.py:
# test_h36m_names_that_would_leave_the_root_are_refused, test_cmu_configuration_errors_name_the_key_or_file).
NO_ANNOTATED_PATHS = {"MSRA", "VoxelH5", "Human36MMultiView", "CMUPanoptic"}


def test_every_loader_has_a_hostile_layout() -> None:
    assert set(WRITERS) == set(DATASETS) - NO_ANNOTATED_PATHS


# --- paths out of their root ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_plain_image_path_builds_and_the_audit_sees_the_annotation_read(
    name: str, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    layout = WRITERS[name](tmp_path / name, "ok.png")
    with opened_files() as opened:
        dataset = build(layout, synthetic_body_model_dir)
    assert len(dataset) >= 1 and dataset.records[0].img_path == layout.image_dir / "ok.png"
    assert os.path.realpath(layout.annotation) in opened  # the audit works: a refusal below means something


@pytest.mark.parametrize("name", sorted(WRITERS))
@pytest.mark.parametrize("kind", ["climbing", "absolute"])
def test_an_image_path_out_of_the_root_is_refused_before_the_file_there_is_opened(
    name: str, kind: str, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    value = "../outside.png" if kind == "climbing" else str(tmp_path / "elsewhere" / "outside.png")
    layout = WRITERS[name](tmp_path / name, value)
    outside = layout.image_dir.parent / "outside.png" if kind == "climbing" else Path(value)
    write_image(outside)  # a real, readable image: opening it would succeed
    with opened_files() as opened, pytest.raises(AnnotationError) as raised:
        build(layout, synthetic_body_model_dir)
    message = str(raised.value)
    assert str(layout.annotation) in message and value in message and "\n" not in message
    assert os.path.realpath(outside) not in opened


def test_a_3dpw_sequence_folder_out_of_the_root_is_refused(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    layout = write_pw3d(tmp_path / "PW3D", "image_00000.jpg", sequence="/etc")
    with pytest.raises(AnnotationError, match=r"3DPW_test\.json: image 1, sequence/file_name '/etc/image_00000"):
        build(layout, synthetic_body_model_dir)


@pytest.mark.parametrize("key", ["smplx_param_path", "cam_param_path"])
@pytest.mark.parametrize("kind", ["climbing", "absolute"])
def test_agora_parameter_and_camera_paths_out_of_the_root_are_refused_at_construction(
    key: str, kind: str, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    root = tmp_path / "AGORA"
    value = "../outside.json" if kind == "climbing" else str(tmp_path / "elsewhere" / "outside.json")
    outside = root.parent / "outside.json" if kind == "climbing" else Path(value)
    write_json(outside, {"focal": [1.0, 1.0], "princpt": [1.0, 1.0]})
    layout = write_agora(
        root,
        "1280x720/validation/img_1280x720.png",
        agora_annotation(**{"param_path" if key == "smplx_param_path" else "cam_path": value}),
    )
    with opened_files() as opened, pytest.raises(AnnotationError) as raised:
        build(layout, synthetic_body_model_dir)
    assert f"{layout.annotation}: annotation 11, {key} {value!r}" in str(raised.value)
    assert os.path.realpath(outside) not in opened


def test_agora_4k_image_names_out_of_the_root_are_refused(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    layout = write_agora(tmp_path / "AGORA", "1280x720/validation/img_1280x720.png")
    content = json.loads(layout.annotation.read_text())
    content["images"][0]["file_name_3840x2160"] = "C:\\AGORA\\img.png"
    write_json(layout.annotation, content)
    with pytest.raises(AnnotationError, match=r"image 1, file_name_3840x2160 'C:\\\\AGORA\\\\img\.png': absolute"):
        build(layout, synthetic_body_model_dir, "data.agora_resolution=3840x2160")


# --- broken annotation files ------------------------------------------------------------------------------------------
def _rewrite(path: Path, edit: Any) -> None:
    content = json.loads(path.read_text())
    edit(content)
    write_json(path, content)


@pytest.mark.parametrize(
    ("damage", "culprit"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not valid json, truncated"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary"), "not a json file"),
        (lambda p: p.write_text("<html>502 Bad Gateway</html>"), "not valid json"),
        (lambda p: _rewrite(p, lambda c: c.update(images={"1": {}})), "'images' is a dict, expected a list"),
        (lambda p: _rewrite(p, lambda c: c["annotations"].append(7)), r"annotations\[1\] is 7, expected a json"),
        (lambda p: _rewrite(p, lambda c: c["annotations"][0].update(bbox=[1, 2, 3])), "annotation 11 'bbox' is"),
        (lambda p: _rewrite(p, lambda c: c["annotations"][0].update(bbox="20 8 24 32")), "annotation 11 'bbox' is"),
        (lambda p: _rewrite(p, lambda c: c["annotations"][0].update(bbox=[1, 2, None, 4])), "'bbox' is .*None"),
        (lambda p: _rewrite(p, lambda c: c["images"][0].pop("height")), "image 1 has no 'height'"),
        (lambda p: _rewrite(p, lambda c: c["images"][0].update(width=-64)), "image 1 'width' is -64, expected a pos"),
        (lambda p: _rewrite(p, lambda c: c["annotations"][0].pop("keypoints")), "annotation 11 has no 'keypoints'"),
        (lambda p: _rewrite(p, lambda c: c["annotations"][0].update(keypoints=[1.0] * 47)), r"'keypoints': 47 val"),
        (lambda p: _rewrite(p, lambda c: c.pop("annotations")), "no 'annotations' list"),
    ],
)
def test_a_broken_annotation_file_is_one_line_naming_file_and_culprit(
    damage: Any, culprit: str, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    layout = write_mpii(tmp_path / "MPII", "images/a.png")
    damage(layout.annotation)
    with pytest.raises(AnnotationError, match=culprit) as raised:
        build(layout, synthetic_body_model_dir)
    assert str(raised.value).startswith(f"{layout.annotation}: ") and "\n" not in str(raised.value)
    assert isinstance(raised.value, ValueError)  # callers catching ValueError for bad input still do


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [
        (lambda ann: ann["smpl_param"].update(pose="0 0 0"), r"\[annotation 11\]: SMPL 'pose' is '0 0 0', not a list"),
        (lambda ann: ann["smpl_param"].pop("trans"), r"\[annotation 11\]: the SMPL parameters lack 'trans'"),
        (lambda ann: ann["smpl_param"].update(gender="x"), r"\[annotation 11\]: unknown gender 'x'"),
        (lambda ann: ann.update(smpl_param=[0.0] * 72), "annotation 11 'smpl_param' is .*expected a json object"),
    ],
)
def test_a_malformed_fit_names_file_entry_and_key(
    edit: Any, culprit: str, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    layout = write_pw3d(tmp_path / "PW3D", "image_00000.jpg")
    _rewrite(layout.annotation, lambda content: edit(content["annotations"][0]))
    with pytest.raises(AnnotationError, match=culprit) as raised:
        build(layout, synthetic_body_model_dir)
    assert str(layout.annotation) in str(raised.value)


def test_a_fit_table_that_is_not_keyed_by_id_is_named(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    layout = write_mpii(tmp_path / "MPII", "images/a.png")
    fits = layout.root / "annotations" / "MPII_train_SMPLX_NeuralAnnot.json"
    write_json(fits, [{"smplx_param": {}}])
    with pytest.raises(AnnotationError, match=rf"{fits}: expected a json object keyed by annotation id, got a list"):
        build(layout, synthetic_body_model_dir)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_an_empty_annotation_list_is_an_error_naming_file_and_split(
    name: str, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    layout = WRITERS[name](tmp_path / name, "ok.png")
    _rewrite(layout.annotation, lambda content: content.update(annotations=[]))
    with pytest.raises(AnnotationError) as raised:
        build(layout, synthetic_body_model_dir)
    message = str(raised.value)
    assert message.startswith(f"{layout.annotation}: no ") and f"{name} split {layout.split!r}" in message


def test_all_images_missing_with_skip_bad_images_is_an_error_saying_so(
    tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    layout = write_mpii(tmp_path / "MPII", "images/absent.png")
    with pytest.raises(AnnotationError, match=r"MPII train: no samples left: all 1 were dropped .*absent\.png"):
        build(layout, synthetic_body_model_dir, "data.skip_bad_images=true")


class _MissingKey(BaseDataset):
    """A loader that reads a key its file lacks, without checking it first (the base class's safety net)."""

    NAME = "MissingKey"

    def load_records(self) -> list[Record]:
        return [json.loads(self.annotation_file("table.json").read_text())["records"]]


def test_an_unchecked_missing_key_is_still_one_line_naming_the_file(
    tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    write_json(tmp_path / "table.json", {"rows": []})
    cfg = make_cfg(synthetic_body_model_dir, {"MissingKey": tmp_path})
    with pytest.raises(
        AnnotationError,
        match=rf"MissingKey train: a malformed entry in {tmp_path / 'table.json'} "
        r"\(KeyError: 'records'\)",
    ) as raised:
        _MissingKey("train", cfg)
    assert isinstance(raised.value.__cause__, KeyError)


# --- unknown dataset names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.trainset_3d=[Human36M,H36M]", "data.trainset_3d"),
        ("data.trainset_2d=[coco]", "data.trainset_2d"),
        ("data.testset=3DPW", "data.testset"),
    ],
)
def test_an_unknown_dataset_name_fails_when_the_config_loads(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, [override])
    message = str(raised.value)
    assert raised.value.key == key and f"override {override!r}: {key}: unknown dataset" in message
    assert all(name in message for name in DATASETS) and "\n" not in message


def test_an_unknown_dataset_name_is_one_line_and_exit_code_2_from_train(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = run_cli(
        main.train.main,
        ["data.testset=EHFF", f"output_dir={tmp_path / 'out'}"],
        prog="train.py",
        user_errors=(ConfigError,),
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "unknown dataset 'EHFF'; did you mean 'EHF'?" in err
    assert not (tmp_path / "out").exists()  # refused before any folder was made


# --- bad image files -------------------------------------------------------------------------------------------
def _encoded(suffix: str, params: tuple[int, ...] = ()) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (*IMG_HW, 3), dtype=np.uint8)
    return cv2.imencode(suffix, pixels, list(params))[1].tobytes()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("zero.png", b"", "empty"),
        ("text.jpg", b"just some text, renamed", "unreadable"),
        ("html.png", b"<html><body>404</body></html>", "unreadable"),
        ("truncated.png", _encoded(".png")[:200], "unreadable"),
        ("truncated.jpg", _encoded(".jpg")[:-300], "truncated|unreadable"),  # OpenCV 5 refuses it itself
        ("progressive.jpg", _encoded(".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))[:-300], "truncated|unreadable"),
    ],
)
def test_bad_image_files_are_refused_naming_file_and_reason(
    name: str, content: bytes, reason: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError) as raised:
        read_image(path)
    assert raised.value.path == path and str(path) in str(raised.value)
    assert raised.value.reason in reason.split("|") and "\n" not in str(raised.value)


def test_jpeg_completeness_reads_markers_not_bytes() -> None:
    jpeg = _encoded(".jpg")
    assert jpeg_is_complete(jpeg) and jpeg_is_complete(jpeg + b"camera trailer \xff\xd8")
    assert not any(jpeg_is_complete(jpeg[:cut]) for cut in (10, len(jpeg) // 2, len(jpeg) - 2))
    # an EXIF thumbnail (a whole JPEG inside an APP1 segment) does not make a truncated image look complete
    thumb = jpeg
    app1 = b"\xff\xe1" + (len(thumb) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + thumb
    with_thumb = jpeg[:2] + app1 + jpeg[2:]
    assert jpeg_is_complete(with_thumb) and not jpeg_is_complete(with_thumb[: len(with_thumb) - 400])


def test_an_image_of_another_size_is_a_bad_image_and_a_value_error(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", hw=(40, 64))
    with pytest.raises(ImageSizeError, match=r"a\.png \(64x40 \(WxH\), the annotations assume 64x48\)") as raised:
        read_image(tmp_path / "a.png", IMG_HW)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, ImageReadError)


class _Images(BaseDataset):
    """One person record per file in the root, sorted by name."""

    NAME = "Images"

    def load_records(self) -> list[Record]:
        return [
            Record(img_path=path, img_hw=IMG_HW, bbox_xywh_img=np.asarray(PERSON_BOX, np.float32))
            for path in sorted(self.root.iterdir())
        ]


def _write_images_with_bad_ones(root: Path) -> list[str]:
    for k in range(5):
        write_image(root / f"{k}_good.png", seed=k)
    (root / "1_zero.png").write_bytes(b"")
    (root / "3_text.jpg").write_text("not an image")
    (root / "5_cut.jpg").write_bytes(_encoded(".jpg")[:-300])  # the last: replaced by the first, wrapping round
    return ["1_zero.png", "3_text.jpg", "5_cut.jpg"]


def test_bad_images_stop_a_loader_naming_the_file_or_are_dropped_and_counted(
    tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    bad = _write_images_with_bad_ones(tmp_path)
    strict = _Images("test", make_cfg(synthetic_body_model_dir, {"Images": tmp_path}))
    with pytest.raises(ImageReadError, match=r"image file is empty \(0 bytes\): .*1_zero\.png"):
        list(DataLoader(strict, batch_size=1, num_workers=0))
    skipping = _Images("test", make_cfg(synthetic_body_model_dir, {"Images": tmp_path}, "data.skip_bad_images=true"))
    batches = list(DataLoader(skipping, batch_size=2, num_workers=0))
    assert sum(len(inputs["img"]) for inputs, _, _ in batches) == len(skipping) == 5 + len(bad)
    assert skipping.skipped_unreadable == len(bad)  # each bad one replaced by the next record (a good one), counted
