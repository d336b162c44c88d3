"""--gpu parsing (accepted forms, rejected ones, the one-line message) and run_cli's exit code 2 for bad input."""

import argparse

import pytest
import torch

from common.engine.cli import USAGE_EXIT_CODE, parse_gpu_ids, run_cli
from common.utils.image_io import ImageReadError
from data.record import AnnotationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", [0]),
        ("3", [3]),
        ("0,1,2,3", [0, 1, 2, 3]),
        ("2,0", [2, 0]),
        ("0-3", [0, 1, 2, 3]),
        ("2-2", [2]),
        ("10-11", [10, 11]),
        (" 1,2 ", [1, 2]),
    ],
)
def test_accepted_forms(text: str, expected: list[int]) -> None:
    assert parse_gpu_ids(text) == expected


REJECTED = ["", " ", "a", "3-1", "0,,1", "0,0", "1-2,3", "-1", "0-", ",0", "0,", "0.5", "0 1", "0--1", "٣", "0x1"]


@pytest.mark.parametrize("text", REJECTED)
def test_rejected_forms_quote_the_input_and_show_the_accepted_ones(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        parse_gpu_ids(text)
    message = str(raised.value)
    assert repr(text) in message
    assert "'0'" in message and "'0,1,2,3'" in message and "'0-3'" in message
    assert "\n" not in message


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py")
    parser.add_argument("--gpu", type=parse_gpu_ids, default=[0])
    return parser


def test_argparse_type_parses() -> None:
    assert _parser().parse_args(["--gpu", "0-3"]).gpu == [0, 1, 2, 3]
    assert _parser().parse_args(["--gpu", "1,3"]).gpu == [1, 3]
    assert _parser().parse_args([]).gpu == [0]


@pytest.mark.parametrize("text", ["3-1", "0,0", "a"])
def test_argparse_error_is_one_line_naming_the_option(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        _parser().parse_args(["--gpu", text])
    assert raised.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"train.py: error: argument --gpu: invalid GPU ids {text!r}")
    assert "'0-3'" in last_line


def test_run_cli_turns_user_errors_into_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    def missing_file(argv: list[str] | None) -> int:
        raise FileNotFoundError("config file not found: main/configs/nope.yaml")

    assert run_cli(missing_file, [], prog="train.py") == USAGE_EXIT_CODE == 2
    assert capsys.readouterr().err == "train.py: error: config file not found: main/configs/nope.yaml\n"


def test_run_cli_passes_success_and_lets_programming_errors_raise() -> None:
    assert run_cli(lambda argv: None, []) == 0
    assert run_cli(lambda argv: 3, []) == 3

    def bug(argv: list[str] | None) -> int:
        raise KeyError("a bug, not bad input")

    with pytest.raises(KeyError):
        run_cli(bug, [])
    assert run_cli(bug, [], user_errors=(KeyError,)) == USAGE_EXIT_CODE


class _FailingDataset(torch.utils.data.Dataset):
    """Raises the given error for every sample (in a DataLoader worker process)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [ImageReadError("/data/img_7.png", "unreadable"), AnnotationError("/data/train.json: image 3: no 'file_name'")],
)
def test_an_error_from_a_loader_worker_is_one_line_with_exit_code_2(error: Exception, capsys) -> None:
    loader = torch.utils.data.DataLoader(_FailingDataset(error), num_workers=1)

    def main(argv: list[str] | None) -> int:
        next(iter(loader))  # torch re-raises the worker's error with its traceback in the message
        return 0

    assert run_cli(main, [], prog="train.py") == 2
    err = capsys.readouterr().err.strip()
    assert err == f"train.py: error: {error}", err
