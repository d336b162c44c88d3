"""Speed of the whole-body model: inference, training, memory, data pipeline and FLOP fraction, as a table and json.

    python tool/benchmark.py --cfg synthetic --body-model synthetic --device cpu --json output/benchmark.json
    python tool/benchmark.py --device cuda --dtype bf16 --compile --channels-last --batch 64 \\
        human_model_path=/path/to/human_model_files

Measures, on synthetic random batches of the config's input shape (common/utils/fake_batch.py):
    (a) inference images/s and latency at batch 1 and at --batch (test mode, no autograd);
    (b) training images/s of a full step (forward, loss, backward, optimizer step) at train.train_batch_size;
    (c) peak memory of (a) at --batch and of (b): torch.cuda.max_memory_allocated on CUDA; on the CPU the process'
        peak resident set size minus its resident size when the phase started;
    (d) data-pipeline images/s for 1..W loader workers on the synthetic dataset (tool/benchmark_data.py);
    (e) FLOPs per image (torch.utils.flop_counter: matmuls and convolutions) and the fraction of the device's peak
        FLOP rate that (a) and (b) reach;
    (f) with --onnx FILE (written by tool/export_onnx.py from a checkpoint of the same geometry): onnxruntime's
        latency and images/s at batch 1 and at --batch on the inputs of (a), with the execution provider it ran on
        (CUDA when --device cuda and onnxruntime has it, else the CPU with torch's thread count).
Each timing is the median of --repeats runs after --warmup runs that are not timed (they also absorb
torch.compile's compilation), with torch.cuda.synchronize around each timed run on CUDA. Seeds are fixed.
Figures measured on a machine shared with other work are distorted; the json records the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common` and `main`

import torch
from torch.utils.flop_counter import FlopCounterMode

from common.engine.acceleration import PRECISIONS, autocast, make_optimizer, prepare_model
from common.engine.cli import UsageError, run_cli
from common.paths import REPO_ROOT
from common.utils.atomic_io import write_json_atomic
from common.utils.fake_batch import make_wholebody_batch
from main.config import Config, ConfigError, load_config
from main.model import get_model

Batch = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]

# Dense peak FLOP rates (FLOP/s) from the vendors' data sheets, by a substring of torch.cuda.get_device_name and
# precision. fp32 is the CUDA-core rate: TF32 tensor cores stay off (they change fp32 results).
DEVICE_PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989e12, "fp32": 67e12},
    "H100": {"bf16": 989e12, "fp32": 67e12},  # SXM
    "A100": {"bf16": 312e12, "fp32": 19.5e12},
    "L40S": {"bf16": 362e12, "fp32": 91.6e12},
    "RTX 4090": {"bf16": 165e12, "fp32": 82.6e12},
}


def peak_flops(device: torch.device, dtype: str, given_tflops: float | None) -> float | None:
    """The device's peak FLOP/s for a precision: --peak-tflops if given, else the table for known GPUs, else None."""
    if given_tflops is not None:
        return given_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peaks[dtype] for key, peaks in DEVICE_PEAK_FLOPS.items() if key in name), None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(run: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls of `run`, after `warmup` untimed calls; synchronised on CUDA."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _rss_bytes() -> int | None:
    """The process' current resident set size (Linux /proc), or None elsewhere."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory of a phase (a context manager); `.bytes` after it, None where it cannot be measured.

    CUDA: torch.cuda.max_memory_allocated after resetting the peak, i.e. the tensors the phase held at most.
    CPU: the process' peak RSS (getrusage, kibibytes on Linux) minus its RSS when the phase started; it includes
    allocator caches and is only an upper bound when an earlier phase set a higher process peak.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes: int | None = None
        self._start: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._start = _rss_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.bytes = torch.cuda.max_memory_allocated(self.device)
        elif self._start is not None:
            self.bytes = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self._start, 0)


def _to_device(batch: Batch, device: torch.device, channels_last: bool) -> Batch:
    inputs, targets, meta_info = ({k: v.to(device) for k, v in part.items()} for part in batch)
    if channels_last:
        inputs["img"] = inputs["img"].contiguous(memory_format=torch.channels_last)
    return inputs, targets, meta_info


def _summary(times: Sequence[float], batch: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "batch": batch,
        "images_per_s": batch / median,
        "median_ms": median * 1e3,
        "runs_ms": [t * 1e3 for t in times],
    }


def measure_inference(
    model: torch.nn.Module, cfg: Config, args: argparse.Namespace, device: torch.device, batch: int
) -> dict[str, Any]:
    """(a) and (c): test-mode forward passes at one batch size; median latency, images/s and peak memory."""
    inputs, _, _ = _to_device(make_wholebody_batch(cfg, batch, seed=cfg.train.seed), device, args.channels_last)
    model.eval()

    def run() -> None:
        with torch.inference_mode(), autocast(device, args.dtype):
            model(inputs, None, None, "test")

    with PeakMemory(device) as memory:
        times = time_runs(run, device, args.warmup, args.repeats)
    return _summary(times, batch) | {"peak_memory_bytes": memory.bytes}


def measure_onnxruntime(path: Path, cfg: Config, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """(f): an ONNX export of the model run by onnxruntime on (a)'s inputs, at batch 1 and at --batch."""
    import onnxruntime

    cuda = device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same CPU threads as the PyTorch measurement
    options.log_severity_level = 3
    provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
    session = onnxruntime.InferenceSession(str(path), options, providers=[provider])
    declared = session.get_inputs()
    expected = [3, *cfg.model.input_img_shape]
    if [i.name for i in declared] != ["img"] or list(declared[0].shape[1:]) != expected:
        found = [(i.name, i.shape) for i in declared]
        raise UsageError(f"--onnx {path}: expected one input 'img' of shape (B, {expected}) for config {cfg.name}, "
                         f"found {found}")  # fmt: skip
    result: dict[str, Any] = {"file": str(path), "provider": session.get_providers()[0],
                              "intra_op_threads": options.intra_op_num_threads}  # fmt: skip
    for key, batch in (("batch_1", 1), ("batch_large", args.batch)):
        inputs, _, _ = make_wholebody_batch(cfg, batch, seed=cfg.train.seed)
        feeds = {"img": inputs["img"].numpy()}
        times = time_runs(lambda feeds=feeds: session.run(None, feeds), device, args.warmup, args.repeats)
        result[key] = _summary(times, batch)
    return result


def make_train_step(
    model: torch.nn.Module, cfg: Config, dtype: str, device: torch.device, batch: Batch
) -> Callable[[], None]:
    """One optimisation step on a fixed batch, as main/train.py takes it (loss values are not read: no sync)."""
    inputs, targets, meta_info = batch
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg.train.lr, device)
    clip = cfg.train.grad_clip_norm

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            losses = model(inputs, targets, meta_info, "train")
        torch.stack(list(losses.values())).sum().backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
        optimizer.step()

    return step


def measure_training(model: torch.nn.Module, cfg: Config, args: argparse.Namespace, device: torch.device) -> dict:
    """(b) and (c): full training steps at the config's batch size."""
    batch_size = cfg.train.train_batch_size
    batch = _to_device(make_wholebody_batch(cfg, batch_size, seed=cfg.train.seed), device, args.channels_last)
    model.train()
    step = make_train_step(model, cfg, args.dtype, device, batch)
    with PeakMemory(device) as memory:
        times = time_runs(step, device, args.warmup, args.repeats)
    return _summary(times, batch_size) | {"peak_memory_bytes": memory.bytes}


def count_flops(model: torch.nn.Module, cfg: Config, dtype: str, device: torch.device) -> dict[str, float]:
    """(e) FLOPs per image of a test-mode forward and of a training forward + backward, on the eager forward.

    `model.forward` is called directly: the in-place compiled `__call__` would hide the operations from the
    counter. Counts matmuls and convolutions (what the peak rates measure), not element-wise work.
    """
    batch = 2  # > 1 so that the 2D-only masking path of the loss is part of the count
    inputs, targets, meta_info = _to_device(make_wholebody_batch(cfg, batch, seed=cfg.train.seed), device, False)
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad(), autocast(device, dtype):
        model.forward(inputs, None, None, "test")
    inference = counter.get_total_flops() / batch
    model.train()
    with FlopCounterMode(display=False) as counter:
        with autocast(device, dtype):
            losses = model.forward(inputs, targets, meta_info, "train")
        torch.stack(list(losses.values())).sum().backward()
    model.zero_grad(set_to_none=True)
    return {"inference_flops_per_image": inference, "train_flops_per_image": counter.get_total_flops() / batch}


def measure_data(args: argparse.Namespace) -> dict[str, Any]:
    """(d) through tool/benchmark_data.measure_data_pipeline on the synthetic AGORA-format training set in
    --synthetic-dir (written first when absent); a skip reason when that tool is not available."""
    if args.skip_data:
        return {"skipped": "--skip-data"}
    try:
        from tool.benchmark_data import measure_data_pipeline
    except ImportError as error:
        return {"skipped": f"tool/benchmark_data.py is not available ({error})"}
    synthetic_dir = args.synthetic_dir.resolve()
    overrides = [f"data.dataset_roots={{AGORA: {synthetic_dir}}}", "data.trainset_3d=[AGORA]", "data.trainset_2d=[]"]
    cfg = _load_config(args, overrides)
    if not (synthetic_dir / "AGORA_train_SMPLX.json").is_file():
        from data.Synthetic import ensure_dataset

        print(f"writing {args.synthetic_images} synthetic training images to {synthetic_dir}", file=sys.stderr)
        ensure_dataset(synthetic_dir, "train", args.synthetic_images, human_model_path=cfg.human_model_path)
    workers = list(range(1, args.data_workers + 1))
    rows = measure_data_pipeline(cfg, args.data_samples, workers, cfg.train.train_batch_size)
    return {"dataset": str(synthetic_dir), "samples": args.data_samples, "rows": rows}


def _device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here")
    return torch.device(name)


def _load_config(args: argparse.Namespace, extra_overrides: Sequence[str] = ()) -> Config:
    overrides = [*args.overrides, *extra_overrides]
    if args.body_model == "synthetic":
        from common.body_models.synthetic import ensure_synthetic_body_models

        overrides.append(f"human_model_path={ensure_synthetic_body_models()}")
    return load_config(args.cfg, overrides)


def _environment(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {
        "device": str(device), "device_name": name, "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0],
    }  # fmt: skip


def run_benchmark(cfg: Config, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """All measurements for one config and set of speed settings; the json's content."""
    # The data pipeline first: its loader workers are forked processes, and a fork taken after this process has
    # run the model's multi-threaded CPU kernels can leave a worker waiting forever on a lock copied while held.
    print("measuring the data pipeline ...", file=sys.stderr)
    data_pipeline = measure_data(args)
    torch.manual_seed(cfg.train.seed)
    model = get_model(cfg, "train")
    flops = count_flops(model.to(device), cfg, args.dtype, device)
    prepare_model(model, device, args.channels_last, args.compile)
    result: dict[str, Any] = {
        "config": cfg.name, "settings": {
            "dtype": args.dtype, "compile": args.compile, "channels_last": args.channels_last,
            "warmup": args.warmup, "repeats": args.repeats, "seed": cfg.train.seed,
        },
        "environment": _environment(device),
    }  # fmt: skip
    print(f"measuring inference at batch 1 and {args.batch} ...", file=sys.stderr)
    result["inference"] = {
        "batch_1": measure_inference(model, cfg, args, device, 1),
        "batch_large": measure_inference(model, cfg, args, device, args.batch),
    }
    if args.onnx is not None:
        print(f"measuring onnxruntime on {args.onnx} at batch 1 and {args.batch} ...", file=sys.stderr)
        result["onnxruntime"] = measure_onnxruntime(args.onnx, cfg, args, device)
    print(f"measuring training at batch {cfg.train.train_batch_size} ...", file=sys.stderr)
    result["training"] = measure_training(model, cfg, args, device)
    peak = peak_flops(device, args.dtype, args.peak_tflops)
    achieved_inference = flops["inference_flops_per_image"] * result["inference"]["batch_large"]["images_per_s"]
    achieved_training = flops["train_flops_per_image"] * result["training"]["images_per_s"]
    result["flops"] = flops | {
        "peak_flops_per_s": peak,
        "inference_flops_per_s": achieved_inference,
        "training_flops_per_s": achieved_training,
        "inference_peak_fraction": achieved_inference / peak if peak else None,
        "training_peak_fraction": achieved_training / peak if peak else None,
    }
    result["data_pipeline"] = data_pipeline
    return result


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def format_table(result: dict[str, Any]) -> str:
    """The result as a two-column text table."""
    s, inf, train, flops = result["settings"], result["inference"], result["training"], result["flops"]
    env = result["environment"]
    fraction = flops["training_peak_fraction"]
    rows = [
        ("config", result["config"]),
        ("device", f"{env['device']} ({env['device_name']}), load {env['load_average_1min']:.1f}"),
        ("settings", f"{s['dtype']}, compile={s['compile']}, channels_last={s['channels_last']}"),
        ("inference b=1", f"{inf['batch_1']['images_per_s']:.1f} img/s, {inf['batch_1']['median_ms']:.1f} ms"),
    ]
    large = inf["batch_large"]
    rows.append((f"inference b={large['batch']}", f"{large['images_per_s']:.1f} img/s, {large['median_ms']:.1f} ms"))
    if "onnxruntime" in result:
        ort = result["onnxruntime"]
        for key in ("batch_1", "batch_large"):
            run = ort[key]
            rows.append((f"onnxruntime b={run['batch']} ({ort['provider']})",
                         f"{run['images_per_s']:.1f} img/s, {run['median_ms']:.1f} ms"))  # fmt: skip
    rows.append((f"training b={train['batch']}", f"{train['images_per_s']:.1f} img/s, {train['median_ms']:.1f} ms"))
    rows.append(
        ("peak memory inference / training", f"{_mib(large['peak_memory_bytes'])} / {_mib(train['peak_memory_bytes'])}")
    )
    rows.append(
        (
            "GFLOP/image inference / training",
            f"{flops['inference_flops_per_image'] / 1e9:.2f} / {flops['train_flops_per_image'] / 1e9:.2f}",
        )
    )
    peak = flops["peak_flops_per_s"]
    rows.append(("peak fraction (training)", "unknown peak (--peak-tflops)" if peak is None else f"{fraction:.1%}"))
    data = result["data_pipeline"]
    if "rows" in data:
        rows += [(f"data pipeline, {r['workers']} workers", f"{r['images_per_s']:.1f} img/s") for r in data["rows"]]
    else:
        rows.append(("data pipeline", f"skipped: {data['skipped']}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def write_json(result: dict[str, Any], path: Path) -> None:
    """Writes the result atomically (a temporary file renamed over `path`)."""
    write_json_atomic(path, result, indent=2)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg", default=None, help="config yaml (a name in main/configs/ or a path)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--dtype", choices=PRECISIONS, default=None, help="default: the config's train.precision")
    parser.add_argument("--batch", type=int, default=None, help="large inference batch (default test_batch_size)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="default: config")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None, help="default: config")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before each measurement")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measurement (the median is kept)")
    parser.add_argument(
        "--data-workers",
        type=int,
        default=None,
        help="W: measure 1..W workers (default data.num_thread, at most the CPU count)",
    )
    parser.add_argument("--data-samples", type=int, default=200, help="samples per data-pipeline measurement")
    parser.add_argument("--synthetic-dir", type=Path, default=REPO_ROOT / "output" / "data" / "Synthetic")
    parser.add_argument("--synthetic-images", type=int, default=100, help="images written when the set is absent")
    parser.add_argument("--skip-data", action="store_true", help="do not measure the data pipeline")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for the FLOP fraction")
    parser.add_argument("--body-model", choices=("synthetic",), default=None, help="use the generated stand-in")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this json file")
    parser.add_argument("--onnx", type=Path, default=None, help="also time this ONNX export with onnxruntime")
    parser.add_argument("overrides", nargs="*", help="config key=value overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = _load_config(args)
    device = _device(args.device)
    args.dtype = args.dtype or cfg.train.precision
    args.compile = cfg.train.compile if args.compile is None else args.compile
    args.channels_last = cfg.train.channels_last if args.channels_last is None else args.channels_last
    args.batch = args.batch or cfg.test.test_batch_size
    args.data_workers = args.data_workers or max(1, min(cfg.data.num_thread, os.cpu_count() or 1))
    for name in ("batch", "repeats", "data_workers", "data_samples"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be at least 0, got {args.warmup}")
    if args.onnx is not None and not args.onnx.is_file():
        raise UsageError(f"--onnx {args.onnx}: no such file (write one with tool/export_onnx.py)")
    result = run_benchmark(cfg, args, device)
    print(format_table(result))
    if args.json is not None:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, user_errors=(ConfigError,)))
