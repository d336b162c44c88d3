"""tool/export_onnx.py: the exported file run by onnxruntime against the PyTorch model (with the smplx package's
SMPL-X layer, not the export one) on random crops, its CLI's bad-input exits, and tool/benchmark.py --onnx.

The model is the reduced whole-body geometry (ResNet-18s, 256x192 crops; tests/main/conftest.py SMALL_MODEL) with
random weights whose BatchNorm statistics are measured on random crops first: without that, a fresh ResNet's
features are ~1e-8 and every crop gives the same prediction, which would hide a broken image path.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from common.engine.cli import UsageError, run_cli
from common.engine.snapshot import read_snapshot, write_snapshot
from demo.inference import build_model
from main.config import Config, config_to_dict, load_config, save_config
from main.model import get_model
from tests.main.conftest import SMALL_MODEL
from tool import benchmark, export_onnx

# The oracle is the PyTorch model in float64. onnxruntime (float32) must be about as close to it as PyTorch's own
# float32 forward is: within FP32_NOISE_FACTOR times PyTorch float32's error, plus a floor in the output's unit
# (metres for the mesh, joints and camera; radians and coefficients for the parameters; heatmap units or crop
# pixels for the 2D outputs). With these random weights PyTorch float32 itself is off by up to ~2e-3 (rad, hand
# poses) and ~4e-4 m (mesh), and onnxruntime by 0.3 to 4 times that, so a fixed 1e-4 would fail PyTorch too; a
# broken export (a baked batch size, a wrong crop or skinning) is off by orders of magnitude more.
FP32_NOISE_FACTOR = 10.0
METRES_FLOOR = PARAM_FLOOR = 1e-5
PIXEL_FLOOR = 1e-4
PARAMS = ("smplx_root_pose", "smplx_body_pose", "smplx_lhand_pose", "smplx_rhand_pose", "smplx_jaw_pose",
          "smplx_shape", "smplx_expr")  # fmt: skip
FLOOR = {
    **dict.fromkeys(PARAMS, PARAM_FLOOR),
    **dict.fromkeys(("cam_trans", "joint_cam", "smplx_mesh_cam"), METRES_FLOOR),
    **dict.fromkeys(("joint_img", "smplx_joint_proj", "lhand_bbox_xyxy_crop", "rhand_bbox_xyxy_crop",
                     "face_bbox_xyxy_crop"), PIXEL_FLOOR),
}  # fmt: skip


def calibrate_batch_norm(model: nn.Module, input_hw: tuple[int, int], seed: int = 0) -> None:
    """Sets every BatchNorm's running statistics to those of random crops (a cumulative average over 3 batches)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model({"img": torch.rand(4, 3, *input_hw, generator=generator)}, None, None, "test")
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


@pytest.fixture(scope="module")
def small_cfg(synthetic_body_model_dir: Path) -> Config:
    return load_config(None, [f"human_model_path={synthetic_body_model_dir}", *SMALL_MODEL])


@pytest.fixture(scope="module")
def checkpoint(small_cfg: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = get_model(small_cfg, "test")
    calibrate_batch_norm(model, small_cfg.model.input_img_shape)
    path = tmp_path_factory.mktemp("export_ckpt") / "snapshot_1.pth.tar"
    write_snapshot({"epoch": 1, "network": model.state_dict(), "config": config_to_dict(small_cfg)}, path)
    return path


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The CLI run once: (the .onnx file, what it printed)."""
    out = tmp_path_factory.mktemp("export_out") / "sub" / "model.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert export_onnx.main(["--ckpt", str(checkpoint), "--out", str(out), "--batch", "2"]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def references(checkpoint: Path, small_cfg: Config) -> tuple[nn.Module, nn.Module]:
    """The checkpoint's model with smplx's own SMPL-X layer, in float32 and in float64."""
    network = read_snapshot(checkpoint)["network"]
    cpu = torch.device("cpu")
    return build_model(small_cfg, network, cpu), build_model(small_cfg, network, cpu).double()


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_matches_the_pytorch_model(exported: tuple[Path, str], references: tuple[nn.Module, nn.Module],
                                        small_cfg: Config, batch: int) -> None:  # fmt: skip
    import onnxruntime

    path, _ = exported
    model32, model64 = references
    generator = torch.Generator().manual_seed(100 + batch)
    img = torch.rand(batch, 3, *small_cfg.model.input_img_shape, generator=generator)
    with torch.no_grad():
        expected32 = model32({"img": img}, None, None, "test")
        expected64 = model64({"img": img.double()}, None, None, "test")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    assert set(names) == set(expected32) == set(FLOOR)
    got = dict(zip(names, session.run(None, {"img": img.numpy()}), strict=True))
    if batch > 1:  # the crops differ, so do the predictions: the comparison covers the image path
        assert (expected64["smplx_mesh_cam"][0] - expected64["smplx_mesh_cam"][-1]).abs().max() > 1e-2
    for name, floor in FLOOR.items():
        assert got[name].shape == tuple(expected32[name].shape), name
        oracle = expected64[name].numpy()
        onnx_error = np.abs(got[name] - oracle).max()
        torch_error = np.abs(expected32[name].double().numpy() - oracle).max()
        assert onnx_error <= FP32_NOISE_FACTOR * torch_error + floor, (name, onnx_error, torch_error)


def test_export_has_a_dynamic_batch_and_reports_each_output(exported: tuple[Path, str]) -> None:
    import onnx

    path, printed = exported
    graph = onnx.load(str(path), load_external_data=False).graph
    assert [i.name for i in graph.input] == ["img"]
    img_dims = graph.input[0].type.tensor_type.shape.dim
    assert img_dims[0].dim_param == "batch" and [d.dim_value for d in img_dims[1:]] == [3, 256, 192]
    assert all(o.type.tensor_type.shape.dim[0].dim_param == "batch" for o in graph.output)
    assert "-based exporter" in printed and "random batch of 1" in printed
    for name in FLOOR:  # one line per output: its shape, then |difference| to PyTorch float32 and float64
        line = next(line for line in printed.splitlines() if line.strip().startswith(name + " "))
        assert all(np.isfinite(float(value)) for value in line.split()[-3:])


def test_no_mesh_drops_only_the_mesh(checkpoint: Path, small_cfg: Config) -> None:
    model = build_model(small_cfg, read_snapshot(checkpoint)["network"], torch.device("cpu"))
    module = export_onnx.make_export_module(model, small_cfg, with_mesh=False)
    assert set(module.output_names) == set(FLOOR) - {"smplx_mesh_cam"} and module.input_names == ("img",)


@pytest.mark.slow
def test_part_family_exports_without_the_mesh(synthetic_body_model_dir: Path, tmp_path: Path) -> None:
    import onnxruntime

    cfg = load_config("pose2pose_hand", [f"human_model_path={synthetic_body_model_dir}", "model.resnet_type=18",
                                         "model.input_img_shape=[128,128]", "model.output_hm_shape=[8,4,4]",
                                         "model.princpt=[64,64]"])  # fmt: skip
    torch.manual_seed(0)
    model = get_model(cfg, "test").eval()
    ckpt, out = tmp_path / "snapshot_1.pth.tar", tmp_path / "hand.onnx"
    write_snapshot({"epoch": 1, "network": model.state_dict(), "config": config_to_dict(cfg)}, ckpt)
    with contextlib.redirect_stdout(io.StringIO()):
        assert export_onnx.main(["--ckpt", str(ckpt), "--out", str(out), "--no-mesh"]) == 0
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["img", "is_left"]
    img = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    is_left = torch.tensor([True, False, True])
    with torch.no_grad():
        expected = model({"img": img, "is_left": is_left}, None, None, "test")
    names = [o.name for o in session.get_outputs()]
    assert set(names) == set(expected) - {"mano_mesh_cam"}
    for name, value in zip(names, session.run(None, {"img": img.numpy(), "is_left": is_left.numpy()}), strict=True):
        np.testing.assert_allclose(value, expected[name].numpy(), atol=1e-3, rtol=0, err_msg=name)


def test_benchmark_measures_onnxruntime(exported: tuple[Path, str], small_cfg: Config) -> None:
    path, _ = exported
    args = argparse.Namespace(batch=2, warmup=0, repeats=2)
    ort = benchmark.measure_onnxruntime(path, small_cfg, args, torch.device("cpu"))
    assert ort["provider"] == "CPUExecutionProvider" and ort["intra_op_threads"] == torch.get_num_threads()
    for key, batch in (("batch_1", 1), ("batch_large", 2)):
        run = ort[key]
        assert run["batch"] == batch and len(run["runs_ms"]) == 2
        assert run["images_per_s"] == pytest.approx(batch / run["median_ms"] * 1e3)


@pytest.mark.slow
def test_benchmark_cli_times_onnxruntime_next_to_pytorch(
    exported: tuple[Path, str], small_cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    cfg_file = tmp_path / "small.yaml"
    save_config(small_cfg, cfg_file)
    out = tmp_path / "bench.json"
    argv = ["--cfg", str(cfg_file), "--device", "cpu", "--batch", "2", "--warmup", "0", "--repeats", "1",
            "--skip-data", "--onnx", str(path), "--json", str(out), "train.train_batch_size=1"]  # fmt: skip
    assert benchmark.main(argv) == 0
    result = json.loads(out.read_text())
    assert [result["onnxruntime"][key]["batch"] for key in ("batch_1", "batch_large")] == [1, 2]
    table = capsys.readouterr().out
    assert "onnxruntime b=1 (CPUExecutionProvider)" in table and "onnxruntime b=2" in table
    assert "inference b=1" in table


def test_benchmark_refuses_an_onnx_file_of_another_geometry(
    exported: tuple[Path, str], synthetic_body_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    argv = ["--device", "cpu", "--skip-data", "--onnx", str(path), f"human_model_path={synthetic_body_model_dir}"]
    args = benchmark._parser().parse_args(argv)
    args.batch, args.warmup, args.repeats = 1, 0, 1
    cfg = load_config(None, [f"human_model_path={synthetic_body_model_dir}"])  # 512x384 crops, not 256x192
    with pytest.raises(UsageError, match="expected one input 'img'"):
        benchmark.measure_onnxruntime(path, cfg, args, torch.device("cpu"))
    assert run_cli(benchmark.main, ["--onnx", str(path.parent / "missing.onnx")], prog="benchmark.py") == 2
    assert "missing.onnx: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda tmp: ["--ckpt", str(tmp / "absent.pth.tar"), "--out", str(tmp / "m.onnx")], "absent.pth.tar"),
        (lambda tmp: ["--ckpt", str(tmp / "bad.pth.tar"), "--out", str(tmp / "m.onnx")], "bad.pth.tar"),
        (lambda tmp: ["--ckpt", str(tmp / "bad.pth.tar"), "--out", str(tmp)], "is a folder"),
        (lambda tmp: ["--ckpt", str(tmp / "bad.pth.tar"), "--out", str(tmp / "bad.pth.tar" / "m.onnx")],
         "cannot write"),
        (lambda tmp: ["--ckpt", str(tmp / "bad.pth.tar"), "--out", str(tmp / "m.onnx"), "--opset", "11"],
         "--opset 11"),
        (lambda tmp: ["--ckpt", str(tmp / "bad.pth.tar"), "--out", str(tmp / "m.onnx"), "--batch", "0"], "--batch"),
        (lambda tmp: ["--out", str(tmp / "m.onnx")], "--ckpt"),
    ],
)  # fmt: skip
def test_bad_input_is_a_one_line_error(make_args, message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "bad.pth.tar").write_bytes(b"not a checkpoint")
    assert run_cli(export_onnx.main, make_args(tmp_path), prog=export_onnx.PROG) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("export_onnx.py: error:") and message in err and "\n" not in err
    assert not (tmp_path / "m.onnx").exists()
