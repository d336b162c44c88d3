"""What every dataset module reads the same way: json files, COCO-format files checked entry by entry, per-frame
tables, keypoint fields, and paths read from annotations, confined to their root.

Every function here raises `data.record.AnnotationError` (a ValueError) for content it cannot use, with a one-line
message naming the file, the entry and the key or value at fault; the command-line tools report it as a user error.
A missing file is the dataset's `MissingAnnotationError` instead (`BaseDataset.annotation_file`), raised before
anything is parsed. The parametric fits inside these files are parsed by data/fits.py.

Paths read from annotations (`path_in_root`): relative, '/' or '\\' separated, without '..' and without a drive, so
that the joined path lies lexically under its root whatever the file says. Symbolic links are not resolved: a link
inside the root that points elsewhere (an images/ folder on another disk) is the user's own set-up, and is followed.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from data.record import AnnotationError

__all__ = ["bbox_xywh", "brief", "image_hw", "keypoints", "load_coco", "nested_entry", "numbers", "optional_entry",
           "path_in_root", "read_coco", "read_json", "read_table", "relative_path"]  # fmt: skip


def brief(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about a whole list or table."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- files ----------------------------------------------------------------------------------------------------------
def read_json(path: Path) -> Any:
    """The parsed content of a json file.

    Raises:
        AnnotationError: naming the file when it is empty, not UTF-8 text, or not valid json (e.g. truncated).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a json file (not UTF-8 text)", path) from None
    if not text or text.isspace():  # not strip(): that would copy a gigabyte-sized file's text
        raise AnnotationError(f"{path}: empty file, expected json (an interrupted download or copy?)", path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:  # its message has the line and column: where a truncated file ends
        raise AnnotationError(f"{path}: not valid json, truncated or not a json file ({err})", path) from None
    except RecursionError:
        raise AnnotationError(f"{path}: json nested too deeply to be an annotation file", path) from None


def read_table(path: Path, keyed_by: str = "annotation id") -> Mapping[str, Any]:
    """A json object keyed by string ids (NeuralAnnot fits, camera and joint tables); AnnotationError otherwise."""
    table = read_json(path)
    if not isinstance(table, Mapping):
        raise AnnotationError(f"{path}: expected a json object keyed by {keyed_by}, got a {type(table).__name__}", path)
    return table


# --- paths read from annotations ------------------------------------------------------------------------------------
def _path_parts(text: str) -> tuple[str, ...]:
    """The '/'- or '\\'-separated components of one relative path, '.' dropped; ValueError(reason) when unsafe."""
    if not text:
        raise ValueError("empty")
    if "\0" in text:
        raise ValueError("has a NUL character")
    if text.startswith(("/", "\\")) or PureWindowsPath(text).drive:
        raise ValueError("absolute")
    parts = tuple(p for p in PurePosixPath(text.replace("\\", "/")).parts if p != ".")
    if ".." in parts:  # even 'a/../b' is refused: no release writes '..', and so no path can climb out of its root
        raise ValueError("climbs out with '..'")
    return parts


def relative_path(relpath: Any, source: Path | str, entry: str) -> PurePosixPath:
    """A path read from an annotation, checked to be relative and free of '..' (the check of `path_in_root`).

    Args:
        relpath: the annotation's value (a str), or a sequence of values joined as folders (e.g. a sequence name
            and a file name); each must be a relative path, '/' or '\\' separated.
        source: the annotation file, and entry: what holds the path there, e.g. "image 7, file_name", both named
            in the error.

    Returns:
        The path's components ('.' dropped) as a relative POSIX path.

    Raises:
        AnnotationError: naming the file, the entry and the path, for a value that is not a string, empty, absolute
            (also 'C:' or '\\\\server'), or that contains '..'.
    """
    values = [relpath] if isinstance(relpath, str) or not isinstance(relpath, Sequence) else list(relpath)
    shown = "/".join(str(v) for v in values) if len(values) > 1 else values[0] if values else ""
    parts: list[str] = []
    try:
        for value in values:
            if not isinstance(value, str):
                raise ValueError(f"not a path but a {type(value).__name__}")
            parts += _path_parts(value)
        if not parts:
            raise ValueError("empty")
    except ValueError as reason:
        raise AnnotationError(f"{source}: {entry} {shown!r}: {reason}; paths in an annotation are relative to "
                              "the dataset's folders and stay inside them", source) from None  # fmt: skip
    return PurePosixPath(*parts)


def path_in_root(root: Path, relpath: Any, source: Path | str, entry: str) -> Path:
    """``root / relpath`` for a path read from an annotation, which must lie under ``root``.

    Args:
        root: the folder the annotation's paths are relative to (the dataset root or a folder inside it).
        relpath, source, entry: as `relative_path`.

    Returns:
        ``root`` joined with the path's components: lexically under ``root``. Nothing is opened or resolved.

    Raises:
        AnnotationError: naming the file, the entry and the path (`relative_path`).
    """
    return root.joinpath(*relative_path(relpath, source, entry).parts)


# --- values -----------------------------------------------------------------------------------------------------------
def numbers(value: Any, shape: tuple[int, ...] | None, where: str) -> np.ndarray:
    """A float64 array of exactly ``shape`` from an annotation value (any nesting with that many numbers); with
    ``shape`` None, all its numbers, flat.

    Raises:
        AnnotationError: naming ``where`` and the value, when it is not numbers (a string, null, a ragged list)
            or holds another count.
    """
    expected = "numbers" if shape is None else f"{math.prod(shape)} numbers {shape}"
    try:
        if value is None or isinstance(value, str | bytes | Mapping):  # numpy reads null as NaN and '1.5' as 1.5
            raise TypeError
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: expected {expected}, got {brief(value)}") from None
    if shape is None:
        return array.reshape(-1)
    if array.size != math.prod(shape):
        raise AnnotationError(f"{where}: {array.size} values, expected {expected}")
    return array.reshape(shape)


def bbox_xywh(value: Any, where: str) -> np.ndarray:
    """(4,) float64 finite xywh box from an annotation value; AnnotationError naming ``where`` otherwise."""
    box = numbers(value, (4,), where)
    if not np.isfinite(box).all():
        raise AnnotationError(f"{where}: a box of non-finite numbers {box.tolist()}")
    return box


def image_hw(image: Mapping[str, Any]) -> tuple[int, int]:
    """(H, W) pixels of a COCO image entry that `read_coco` checked (its 'height' and 'width')."""
    return int(image["height"]), int(image["width"])


def keypoints(ann: Mapping[str, Any], key: str, count: int, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """One COCO keypoint field as pixels and a mask.

    Args:
        ann: the annotation dict.
        key: field holding ``count`` x (x, y, v) numbers, e.g. 'keypoints' or 'lefthand_kpts'.
        count: number of keypoints the field must hold.
        source: the annotation file, for error messages.

    Returns:
        (count, 2) float64 pixels and (count,) float64 mask: 1 where v > 0 (labelled, visible or not, as
        Hand4Whole counts them).
    """
    if key not in ann:
        raise AnnotationError(f"{source}: annotation {ann.get('id')} has no {key!r}", source)
    values = numbers(ann[key], (count * 3,), f"{source}: annotation {ann.get('id')} {key!r}").reshape(count, 3)
    return values[:, :2].copy(), (values[:, 2] > 0).astype(np.float64)


def nested_entry(table: Mapping[str, Any], key: tuple[str, ...], path: Path) -> Any:
    """``table[key[0]][key[1]]...`` of a per-frame json (camera, joint, fit tables keyed by string ids).

    Raises:
        AnnotationError: naming the file and the key path that is missing.
    """
    value: Any = table
    for level, part in enumerate(key):
        if not isinstance(value, Mapping) or part not in value:
            raise AnnotationError(f"{path}: no entry [{']['.join(key[: level + 1])}]", path)
        value = value[part]
    return value


def optional_entry(table: Mapping[str, Any], key: tuple[str, ...], path: Path) -> Any:
    """``table[key[0]][key[1]]...``, or None where a level has no such key (a frame without a fit).

    Raises:
        AnnotationError: naming the file and the key path where a level is not a json object.
    """
    value: Any = table
    for level, part in enumerate(key):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise AnnotationError(f"{path}: [{']['.join(key[:level])}] is {brief(value)}, expected a json object", path)
        value = value.get(part)
    return value


# --- COCO-format files ------------------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def _is_box(value: Any) -> bool:
    return _is_number_list(value) and len(value) == 4 and all(math.isfinite(v) for v in value)


_BOX_KEYS = ("bbox", "body_bbox", "lefthand_bbox", "righthand_bbox", "face_bbox")
_INDEX_KEYS = ("frame_idx", "cam_idx", "subject_idx", "seq_idx", "action_idx", "subaction_idx", "db_idx", "person_id")
_FIELD_CHECKS: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "file_name": (lambda v: isinstance(v, str) and bool(v), "a non-empty path"),
    "height": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "width": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    **dict.fromkeys(_BOX_KEYS, (_is_box, "4 finite numbers [x, y, w, h]")),
    "keypoints": (lambda v: isinstance(v, list), "a list"),  # flat or [[x, y], ...]: the loader checks the count
    "cam_param": (lambda v: isinstance(v, Mapping), "a json object"),
    "smpl_param": (lambda v: isinstance(v, Mapping), "a json object"),
    "sequence": (lambda v: isinstance(v, str) and bool(v), "a non-empty folder name"),
    **dict.fromkeys(_INDEX_KEYS, (_is_int, "an integer")),
}
"""Type checks of the fields the loaders read, by key; a key not listed is only checked to be present."""


def _check_entries(entries: Any, kind: str, keys: Iterable[str], path: Path) -> None:
    """Each entry of the file's ``kind`` list ('images', 'annotations') is a dict with an id and ``keys``."""
    if not isinstance(entries, list):
        raise AnnotationError(f"{path}: '{kind}' is a {type(entries).__name__}, expected a list", path)
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise AnnotationError(f"{path}: {kind}[{index}] is {brief(entry)}, expected a json object", path)
        name = f"{kind[:-1]} {entry.get('id', f'at index {index}')}"
        if not _is_int(entry.get("id")):
            raise AnnotationError(f"{path}: {name}: 'id' is {brief(entry.get('id'))}, expected an integer", path)
        for key in keys:
            if key not in entry:
                raise AnnotationError(f"{path}: {name} has no {key!r}", path)
            check, expected = _FIELD_CHECKS.get(key, (lambda v: True, ""))
            if not check(entry[key]):
                raise AnnotationError(f"{path}: {name} {key!r} is {brief(entry[key])}, expected {expected}", path)


def read_coco(path: Path, image_keys: Iterable[str] = (), annotation_keys: Iterable[str] = ()) -> dict[str, Any]:
    """A COCO-format file, checked: 'images' and 'annotations' lists of objects with integer ids, each annotation's
    image_id naming an image, and the keys the loader reads present (and of the right type, `_FIELD_CHECKS`).

    Args:
        path: the file.
        image_keys, annotation_keys: keys every image / annotation entry must have.

    Raises:
        AnnotationError: naming the file, the entry and the key at fault.
    """
    dataset = read_json(path)
    if not isinstance(dataset, Mapping):
        raise AnnotationError(f"{path}: expected a COCO-format json object, got a {type(dataset).__name__}", path)
    for kind in ("images", "annotations"):
        if kind not in dataset:
            raise AnnotationError(f"{path}: not a COCO-format file, it has no {kind!r} list", path)
    _check_entries(dataset["images"], "images", image_keys, path)
    _check_entries(dataset["annotations"], "annotations", ("image_id", *annotation_keys), path)
    image_ids = {image["id"] for image in dataset["images"]}
    for ann in dataset["annotations"]:
        if ann["image_id"] not in image_ids:
            raise AnnotationError(f"{path}: annotation {ann['id']} names image_id {brief(ann['image_id'])}, which "
                                  "is not in 'images'", path)  # fmt: skip
    return dict(dataset)


def load_coco(path: Path, image_keys: Iterable[str] = (), annotation_keys: Iterable[str] = ()) -> COCO:
    """A pycocotools index of a COCO-format file checked by `read_coco`: its ``imgs`` and ``anns`` by id.

    The categories are left out of the index (its progress prints are swallowed too): no loader reads them, and
    pycocotools would fail on an annotation without a category_id, which AGORA's converted files have.
    """
    coco = COCO()
    coco.dataset = {key: value for key, value in read_coco(path, image_keys, annotation_keys).items()
                    if key != "categories"}  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress on stdout
        coco.createIndex()
    return coco
