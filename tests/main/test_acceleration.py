"""common/engine/acceleration.py and tool/benchmark.py on the CPU: bf16, channels_last, compile, optimizer, benchmark.

bf16 test-mode outputs against fp32 are covered in test_model.py (test_bf16_autocast_on_cpu_matches_fp32); here
the training losses under `autocast` are compared. Compiling the whole model takes minutes on a small CPU, so the
fast compile tests use a sub-network and the whole-model comparison is marked slow.
"""

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from common.engine import acceleration
from common.engine.acceleration import autocast, make_optimizer, prepare_model, set_backend_flags, to_memory_format
from common.engine.cli import run_cli
from common.nets import LOSS_TERMS
from main.config import Config, save_config
from main.model import WholeBodyModel, get_model
from tool import benchmark


@pytest.fixture(scope="module")
def small_model(small_cfg: Config) -> WholeBodyModel:
    torch.manual_seed(0)
    return get_model(small_cfg, "train")


def test_autocast_fp32_is_plain_and_bf16_runs_matmuls_in_bfloat16() -> None:
    a, b = torch.rand(4, 4), torch.rand(4, 4)
    with autocast(torch.device("cpu"), "fp32"):
        assert (a @ b).dtype == torch.float32
    with autocast("cpu", "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    assert (a @ b).dtype == torch.float32  # restored on exit
    with pytest.raises(ValueError, match="fp16"):
        with autocast("cpu", "fp16"):
            pass


def test_bf16_training_losses_match_fp32(
    small_model: WholeBodyModel, small_cfg: Config, make_wholebody_targets
) -> None:
    model = copy.deepcopy(small_model).train()
    batch = make_wholebody_targets(small_cfg, batch=2, seed=0)
    reference = model(*batch, "train")
    with autocast("cpu", "bf16"):
        low = model(*batch, "train")
    total = torch.stack(list(low.values())).sum()
    total.backward()
    # Stated tolerance: each term within 0.02 (in its own units) plus 15% of its fp32 value, the sum within 3%.
    # The heads start near zero, where bf16's 8-bit mantissa moves the 6D -> axis-angle conversion most.
    for name in LOSS_TERMS:
        assert low[name].dtype == torch.float32, name
        torch.testing.assert_close(low[name], reference[name], atol=0.02, rtol=0.15, msg=name)
    torch.testing.assert_close(total, torch.stack(list(reference.values())).sum(), atol=0.0, rtol=0.03)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_channels_last_matches_contiguous(small_model: WholeBodyModel, small_cfg: Config) -> None:
    model = copy.deepcopy(small_model).eval()
    fast = prepare_model(copy.deepcopy(model), "cpu", channels_last=True, compile=False)
    conv_weights = [m.weight for m in fast.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert conv_weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights)
    assert list(fast.state_dict()) == list(model.state_dict())
    img = torch.rand(2, 3, *small_cfg.model.input_img_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model({"img": img}, mode="test")
        for memory_format in (torch.contiguous_format, torch.channels_last):
            out = fast({"img": img.contiguous(memory_format=memory_format)}, mode="test")
            for key, value in reference.items():
                torch.testing.assert_close(out[key], value, rtol=1e-4, atol=1e-5, msg=key)
    # Back to the default layout.
    to_memory_format(fast, channels_last=False)
    assert all(w.is_contiguous() for w in conv_weights)


def test_channels_last_leaves_3d_convolutions_alone() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv3d(4, 4, 1))
    to_memory_format(model, channels_last=True)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[1].weight.is_contiguous()


def test_compile_is_in_place_and_matches_eager(small_model: WholeBodyModel) -> None:
    # A sub-network of the model, so that tracing fits the test budget; see the slow test for the whole model.
    eager = copy.deepcopy(small_model.face_regressor).eval()
    compiled = prepare_model(
        copy.deepcopy(eager), "cpu", channels_last=False, compile=True, compile_backend="aot_eager"
    )
    assert compiled._compiled_call_impl is not None  # nn.Module.compile: the same module, compiled __call__
    assert list(compiled.state_dict()) == list(eager.state_dict())  # no `_orig_mod.` prefix in checkpoints
    feat = torch.rand(3, eager.expr_out[0].in_features, 2, 2)
    with torch.no_grad():
        for a, b in zip(compiled(feat), eager(feat), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_compiled_whole_model_matches_eager(small_model: WholeBodyModel, small_cfg: Config) -> None:
    backend = "inductor" if acceleration.compile_unavailable_reason("cpu") is None else "aot_eager"
    eager = copy.deepcopy(small_model).eval()
    compiled = prepare_model(copy.deepcopy(eager), "cpu", channels_last=False, compile=True, compile_backend=backend)
    img = torch.rand(2, 3, *small_cfg.model.input_img_shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference, out = eager({"img": img}, mode="test"), compiled({"img": img}, mode="test")
    for key, value in reference.items():
        torch.testing.assert_close(out[key], value, rtol=1e-4, atol=1e-4, msg=key)


def test_compile_falls_back_to_eager_with_a_warning_without_a_compiler(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(acceleration.shutil, "which", lambda name: None)
    reason = acceleration.compile_unavailable_reason("cpu")
    assert reason is not None and "C++ compiler" in reason
    model = nn.Linear(2, 2)
    with caplog.at_level(logging.WARNING, logger=acceleration.__name__):
        prepare_model(model, "cpu", channels_last=False, compile=True)
    assert model._compiled_call_impl is None and "C++ compiler" in caplog.text


def test_cudnn_benchmark_is_set_on_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    set_backend_flags("cpu")
    assert torch.backends.cudnn.benchmark is False
    set_backend_flags(torch.device("cuda"))  # sets the flag only; no CUDA device is needed for that
    assert torch.backends.cudnn.benchmark is True


@pytest.mark.parametrize(("device", "fused", "foreach"), [("cpu", None, True), ("cuda", True, None)])
def test_make_optimizer_picks_the_multi_tensor_kernel(device: str, fused: bool | None, foreach: bool | None) -> None:
    params = [nn.Parameter(torch.randn(5, 3)), nn.Parameter(torch.randn(3))]
    # CPU tensors stand in for the device's: the choice depends on `device` only, and fused Adam runs on the CPU too.
    optimizer = make_optimizer(params, lr=0.1, device=torch.device(device))
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["fused"] is fused and optimizer.defaults["foreach"] is foreach
    assert optimizer.defaults["lr"] == 0.1
    # Same update as the per-parameter loop.
    plain_params = [nn.Parameter(p.detach().clone()) for p in params]
    plain = torch.optim.Adam(plain_params, lr=0.1, foreach=False)
    for group in (params, plain_params):
        sum((p**2).sum() for p in group).backward()
    optimizer.step()
    plain.step()
    for fast, slow in zip(params, plain_params, strict=True):
        torch.testing.assert_close(fast, slow)


def test_benchmark_cli_writes_every_field(
    small_cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = tmp_path / "small.yaml"
    save_config(small_cfg, cfg_file)
    out = tmp_path / "bench.json"
    argv = [
        "--cfg", str(cfg_file), "--device", "cpu", "--batch", "2", "--warmup", "0", "--repeats", "2",
        "--peak-tflops", "1", "--data-workers", "1", "--data-samples", "4", "--synthetic-images", "2",
        "--synthetic-dir", str(tmp_path / "synthetic"), "--json", str(out), "train.train_batch_size=2",
    ]  # fmt: skip
    assert benchmark.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["settings"] == {
        "dtype": "fp32", "compile": False, "channels_last": False, "warmup": 0, "repeats": 2, "seed": 0
    }  # fmt: skip
    measured = [result["inference"]["batch_1"], result["inference"]["batch_large"], result["training"]]
    assert [m["batch"] for m in measured] == [1, 2, 2]
    for m in measured:
        assert m["images_per_s"] > 0 and len(m["runs_ms"]) == 2 and m["median_ms"] > 0
        assert m["images_per_s"] == pytest.approx(m["batch"] / m["median_ms"] * 1e3)
        assert isinstance(m["peak_memory_bytes"], int)
    flops = result["flops"]
    # A training step costs its forward plus a backward of about twice the forward's matmul/conv work.
    assert 0 < flops["inference_flops_per_image"] < flops["train_flops_per_image"]
    assert flops["peak_flops_per_s"] == 1e12
    assert flops["training_peak_fraction"] == pytest.approx(flops["training_flops_per_s"] / 1e12)
    assert flops["inference_peak_fraction"] > 0
    rows = result["data_pipeline"]["rows"]
    assert [row["workers"] for row in rows] == [1] and rows[0]["images_per_s"] > 0
    assert set(result["environment"]) >= {"device", "device_name", "torch", "load_average_1min"}
    table = capsys.readouterr().out
    assert "inference b=1" in table and "training b=2" in table and "data pipeline, 1 workers" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when CUDA is missing")
def test_benchmark_without_cuda_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(benchmark.main, ["--device", "cuda"], prog="benchmark.py") == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.gpu
def test_train_step_on_cuda_has_no_host_device_synchronisation(
    small_model: WholeBodyModel, small_cfg: Config, make_wholebody_targets: Callable
) -> None:
    device = torch.device("cuda")
    model = prepare_model(copy.deepcopy(small_model), device, channels_last=True, compile=False)
    batch = tuple({k: v.to(device) for k, v in part.items()} for part in make_wholebody_targets(small_cfg, 2))
    step = benchmark.make_train_step(model, small_cfg, "bf16", device, batch)
    step()  # first step: lazy initialisation (cuBLAS handles, optimizer state) may synchronise
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
