"""Exports a trained model to ONNX: an image crop in, the family's test-mode outputs out, batch axis dynamic.

    python tool/export_onnx.py --ckpt output/model_dump/snapshot_6.pth.tar --out output/hand4whole.onnx
    python tool/export_onnx.py --ckpt PATH --out model.onnx [--cfg NAME] [--opset 17] [--no-mesh] [--batch 2] \\
        [key=value ...]

The model is built as the demo builds it (demo/inference.py): the config embedded in the checkpoint unless --cfg
names one, key=value overrides on top, weights loaded strictly. The ONNX model's input is `img` (B, 3, H, W)
float32 RGB in [0, 1], (H, W) = model.input_img_shape (and, for pose2pose_hand, `is_left` (B,) bool); its outputs
are the family's test-mode outputs under the same names (Hand4Whole: smplx_{root,body,lhand,rhand,jaw}_pose,
smplx_shape, smplx_expr, cam_trans, joint_cam, joint_img, smplx_joint_proj, the part boxes and smplx_mesh_cam),
without the camera-frame mesh under --no-mesh (the graph still skins every vertex: the joints need them). The
whole-body model's SMPL-X layer is replaced by `common.body_models.export_lbs.ExportSMPLX` (the same vertices and
joints, written to be traced); the part families keep their smplx layers (SMPL, MANO, FLAME), which trace too.
Every family exports, with or without its mesh: hand4whole, pose2pose_body, pose2pose_hand, pose2pose_face and
integral (no mesh).

The exporter: torch.export-based (`dynamo=True`) first; when that one fails (it needs the onnxscript package,
which requirements.txt does not list), the TorchScript-based one. After the export, onnxruntime (CPU) runs the
file on a random crop batch of another size than the traced one (so a batch size baked into the graph shows),
and the largest absolute difference to PyTorch, in float32 and in float64, is printed per output. The file
fails the check (exit code 1) where onnxruntime is further from PyTorch float64 than FLOAT32_NOISE_FACTOR times
PyTorch float32's own distance to it plus --atol (each output in its own unit), or is not finite. Bad input (a
missing or unreadable checkpoint, an unwritable --out, a bad option or config key) ends with one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `main`, `demo`

import numpy as np
import torch
from torch import Tensor, nn

from common.body_models.export_lbs import ExportSMPLX
from common.engine.cli import UsageError, run_cli
from common.engine.snapshot import read_snapshot
from common.nets.smplx_head import SMPLXHead
from common.utils.atomic_io import OutputWriteError, write_bytes_atomic
from demo.inference import build_model, demo_config
from main.config import Config, ConfigError
from main.model import get_family

logger = logging.getLogger(__name__)

PROG = "export_onnx.py"
DEFAULT_OPSET = 17
# RoiAlign with its coordinate_transformation_mode (torchvision's aligned flag) needs 16; 20 is the newest opset
# the TorchScript-based exporter writes.
OPSETS = range(16, 21)
BATCH_AXIS = "batch"
# The check after the export: onnxruntime's error against PyTorch float64 may be up to FLOAT32_NOISE_FACTOR times
# PyTorch float32's own error, plus --atol (in each output's unit). Float32 rounding moves a network's outputs by
# 1e-6 .. 1e-4 with trained weights, and by up to radians with random ones (both libraries alike, each by its own
# summation order); a broken export (a wrong crop, a baked batch size) is off by far more than either.
FLOAT32_NOISE_FACTOR = 10.0
DEFAULT_ATOL = 1e-3


class OnnxExportModule(nn.Module):
    """A model's test-mode forward as a function of tensors, its outputs in a fixed order.

    Args:
        model: a family's model in eval mode (`model(inputs, None, None, 'test')` -> dict of (B, ...) tensors).
        output_names: the output keys to return, in this order.
        takes_hand_side: the model reads inputs['is_left'] (the hand family), which becomes the second input.
    """

    def __init__(self, model: nn.Module, output_names: Sequence[str], takes_hand_side: bool = False) -> None:
        super().__init__()
        self.model = model
        self.output_names = tuple(output_names)
        self.takes_hand_side = takes_hand_side

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("img", "is_left") if self.takes_hand_side else ("img",)

    def forward(self, img: Tensor, is_left: Tensor | None = None) -> tuple[Tensor, ...]:
        """(B, 3, H, W) float32 RGB in [0, 1] (and (B,) bool left-hand flags) -> the outputs, each (B, ...)."""
        inputs = {"img": img}
        if is_left is not None:
            inputs["is_left"] = is_left
        out = self.model(inputs, None, None, "test")
        return tuple(out[name] for name in self.output_names)


def make_export_module(model: nn.Module, cfg: Config, with_mesh: bool = True) -> OnnxExportModule:
    """The module to export: `model` in eval mode, its SMPL-X layer (if any) swapped for `ExportSMPLX`.

    The swap is made in `model` itself (the part models hold joint sets that cannot be deep-copied); the new
    layer gives the same vertices and joints as the old one, so `model` predicts what it predicted before.

    Args:
        model: the family's model with its weights; modified as said above.
        cfg: its config (the family and the input shape).
        with_mesh: keep the camera-frame mesh output (the family's `MeshView.mesh_key`).

    Returns:
        The module; its `output_names` are the model's test-mode keys, in the model's order, less the mesh when
        `with_mesh` is False.
    """
    family = get_family(cfg)
    view = family.mesh_view(cfg) if family.mesh_view is not None else None
    model.eval()
    head = getattr(model, "smplx_head", None)
    if isinstance(head, SMPLXHead) and not isinstance(head.layer, ExportSMPLX):
        head.layer = ExportSMPLX(head.layer)
    takes_hand_side = view is not None and view.takes_hand_side
    probe = _example_inputs(cfg, 1, takes_hand_side, next(model.parameters()).device, seed=0)
    with torch.inference_mode():
        inputs = dict(zip(("img", "is_left")[: len(probe)], probe, strict=True))
        keys = list(model(inputs, None, None, "test"))  # the test-mode output keys, in the model's order
    if not with_mesh and view is not None:
        keys.remove(view.mesh_key)
    # eval() on the wrapper too: the exporter restores the wrapper's own mode on every submodule afterwards.
    return OnnxExportModule(model, keys, takes_hand_side).eval()


def _example_inputs(
    cfg: Config, batch: int, takes_hand_side: bool, device: torch.device, seed: int
) -> tuple[Tensor, ...]:
    """A random crop batch (B, 3, H, W) in [0, 1] (and alternating left-hand flags (B,)), seeded."""
    generator = torch.Generator().manual_seed(seed)
    img = torch.rand(batch, 3, *cfg.model.input_img_shape, generator=generator).to(device)
    if not takes_hand_side:
        return (img,)
    return img, (torch.arange(batch) % 2 == 0).to(device)


@contextlib.contextmanager
def _dynamic_unflatten(opset: int) -> Iterator[None]:
    """Registers, for one TorchScript-based export, an `aten::unflatten` translation that keeps the batch dynamic.

    The exporter's own translation gives the result the static shape of the traced example, and the exporter then
    folds every later `tensor.shape[0]` into that constant (a roi_align batch index, a reshape), so that another
    batch size fails in onnxruntime. This one slices the kept dimensions out of the input's runtime shape.
    """
    from torch.onnx import register_custom_op_symbolic, symbolic_helper, unregister_custom_op_symbolic

    @symbolic_helper.parse_args("v", "i", "v")
    def unflatten(g: torch.Graph, input: torch.Value, dim: int, sizes: torch.Value) -> torch.Value:
        rank = symbolic_helper._get_tensor_rank(input)
        if rank is None:
            return symbolic_helper._unimplemented("unflatten", "the input's rank must be known at export time")
        dim %= rank
        shape = g.op("Shape", input)

        def kept(start: int, end: int) -> torch.Value:
            starts, ends = (g.op("Constant", value_t=torch.tensor([i], dtype=torch.int64)) for i in (start, end))
            return g.op("Slice", shape, starts, ends)

        parts = ([kept(0, dim)] if dim > 0 else []) + [sizes] + ([kept(dim + 1, rank)] if dim < rank - 1 else [])
        return g.op("Reshape", input, g.op("Concat", *parts, axis_i=0))

    register_custom_op_symbolic("aten::unflatten", unflatten, opset)
    try:
        yield
    finally:
        unregister_custom_op_symbolic("aten::unflatten", opset)


def export_onnx(
    module: OnnxExportModule, example: tuple[Tensor, ...], path: Path, opset: int = DEFAULT_OPSET
) -> tuple[str, str | None]:
    """Writes `module` to `path` as ONNX with a dynamic batch axis on every input and output.

    Args:
        module: from `make_export_module`.
        example: the example inputs the export traces (any batch size: the axis stays dynamic).
        path: the .onnx file to write (weights inside it).
        opset: the ONNX opset.

    Returns:
        (exporter, why_not_dynamo): 'dynamo' or 'torchscript', and the torch.export-based exporter's error when
        the TorchScript-based one was used.
    """
    names = {"input_names": list(module.input_names), "output_names": list(module.output_names)}
    try:
        batch = torch.export.Dim(BATCH_AXIS, min=1)
        shapes = {name: {0: batch} for name in module.input_names}
        program = torch.onnx.export(module, example, dynamo=True, opset_version=opset, dynamic_shapes=shapes,
                                    external_data=False, **names)  # fmt: skip
        program.save(str(path))  # type: ignore[union-attr]
        return "dynamo", None
    except Exception as error:  # the dynamo exporter fails in many ways; any of them means: try the other one
        why = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        logger.info("the torch.export-based ONNX exporter failed (%s); using the TorchScript-based one", why)
    axes = {name: {0: BATCH_AXIS} for name in (*module.input_names, *module.output_names)}
    with _dynamic_unflatten(opset), torch.no_grad(), _quiet_legacy_exporter():
        torch.onnx.export(module, example, str(path), dynamo=False, opset_version=opset, dynamic_axes=axes, **names)
    return "torchscript", why


@contextlib.contextmanager
def _quiet_legacy_exporter() -> Iterator[None]:
    """Silences the TorchScript-based exporter's expected warnings: its deprecation, a tracer warning for every
    traced shape value, strided slices left unfolded, and torchvision's note that roi_align's sampling_ratio -1
    becomes ONNX's 0 (both mean the adaptive sampling grid)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="ONNX export for RoIAlign with a non-zero sampling_ratio")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")  # a strided slice stays a node
        yield


@dataclass(frozen=True)
class OutputDifference:
    """One output's largest absolute differences, in the output's own unit (nan: not finite or shapes differ).

    Attributes:
        shape: the output's shape from onnxruntime.
        onnx_vs_float32: |onnxruntime - PyTorch float32|.
        onnx_vs_float64: |onnxruntime - PyTorch float64|, the error of the export against the exact model.
        float32_vs_float64: |PyTorch float32 - PyTorch float64|: how much these weights amplify float32 rounding.
    """

    shape: tuple[int, ...]
    onnx_vs_float32: float
    onnx_vs_float64: float
    float32_vs_float64: float

    def within(self, atol: float) -> bool:
        """The export is as accurate as PyTorch's float32 (up to FLOAT32_NOISE_FACTOR) plus `atol`."""
        return self.onnx_vs_float64 <= FLOAT32_NOISE_FACTOR * self.float32_vs_float64 + atol


def _max_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0.0))


def compare_with_onnxruntime(
    module: OnnxExportModule, path: Path, inputs: tuple[Tensor, ...]
) -> dict[str, OutputDifference]:
    """Runs the ONNX file with onnxruntime's CPU provider, and the module in PyTorch float32 and float64.

    The float64 run is the reference: with random or badly conditioned weights, float32 rounding alone moves the
    outputs (PyTorch's as much as onnxruntime's), which a difference to PyTorch float32 cannot tell from an
    export error. The module is converted to float64 and back (exactly: its float32 values are float64 values).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Errors only: the memory planner warns when two tensors whose batch sizes differ (B, 2B) could share a buffer.
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {name: tensor.cpu().numpy() for name, tensor in zip(module.input_names, inputs, strict=True)}
    got = session.run(list(module.output_names), feeds)
    float64_inputs = tuple(x.double() if x.is_floating_point() else x for x in inputs)
    with torch.inference_mode():
        float32 = [tensor.cpu().numpy() for tensor in module(*inputs)]
        module.double()
        try:
            float64 = [tensor.cpu().numpy() for tensor in module(*float64_inputs)]
        finally:
            module.float()
    differences = {}
    for name, ours, f32, f64 in zip(module.output_names, got, float32, float64, strict=True):
        differences[name] = OutputDifference(tuple(ours.shape), _max_abs_difference(ours, f32),
                                             _max_abs_difference(ours, f64), _max_abs_difference(f32, f64))  # fmt: skip
    return differences


@dataclass
class ExportReport:
    """What `export_checkpoint` did: the exporter, the outputs and their differences to PyTorch."""

    path: Path
    exporter: str
    why_not_dynamo: str | None
    input_names: tuple[str, ...]
    differences: dict[str, OutputDifference]
    verify_batch: int


def _check_output_path(out: Path) -> None:
    """Refuses a folder and an unwritable location before the (slow) export, naming the path."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the .onnx file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise OutputWriteError.from_os_error(out, error) from error


def export_checkpoint(
    cfg: Config, network_state: dict[str, Tensor], out: Path, opset: int, with_mesh: bool, batch: int
) -> ExportReport:
    """Builds the config's model with the weights, exports it to `out` (atomically) and checks it.

    The ONNX file is written in a temporary folder, checked with onnxruntime on a random batch of another size
    than the traced one (1, or 2 when `batch` is 1), and only then moved to `out`.
    """
    model = build_model(cfg, network_state, torch.device("cpu"))
    module = make_export_module(model, cfg, with_mesh)
    verify_batch = 1 if batch > 1 else 2
    with tempfile.TemporaryDirectory(prefix="export_onnx_") as tmp:
        path = Path(tmp) / "model.onnx"
        example = _example_inputs(cfg, batch, module.takes_hand_side, torch.device("cpu"), seed=0)
        exporter, why_not_dynamo = export_onnx(module, example, path, opset)
        verify = _example_inputs(cfg, verify_batch, module.takes_hand_side, torch.device("cpu"), seed=1)
        differences = compare_with_onnxruntime(module, path, verify)
        write_bytes_atomic(out, path.read_bytes(), durable=True)
    return ExportReport(out, exporter, why_not_dynamo, module.input_names, differences, verify_batch)


def print_report(report: ExportReport, opset: int, atol: float) -> list[str]:
    """Prints the exporter and the table of differences; returns the outputs that fail the check."""
    exporter = {"dynamo": "torch.export-based", "torchscript": "TorchScript-based"}[report.exporter]
    print(f"wrote {report.path} with the {exporter} exporter, opset {opset}, dynamic batch axis")
    if report.why_not_dynamo:
        print(f"  (the torch.export-based exporter failed: {report.why_not_dynamo})")
    print(f"onnxruntime (CPU) on a random batch of {report.verify_batch}: max |difference| per output to PyTorch")
    width = max(len(name) for name in report.differences)
    print(f"  {'output':<{width}}  {'shape':<18}  {'float32':>10}  {'float64':>10}  {'(float32 vs float64)':>20}")
    for name, diff in report.differences.items():
        print(f"  {name:<{width}}  {str(diff.shape):<18}  {diff.onnx_vs_float32:>10.3g}  {diff.onnx_vs_float64:>10.3g}"
              f"  {diff.float32_vs_float64:>20.3g}")  # fmt: skip
    noisy = [name for name, diff in report.differences.items() if not diff.float32_vs_float64 <= atol]
    if noisy:
        print(f"note: float32 rounding alone (PyTorch's too) moves {', '.join(noisy)} by more than --atol {atol:g} "
              "with these weights; there the check only bounds the export's error by that rounding's")  # fmt: skip
    return [name for name, diff in report.differences.items() if not diff.within(atol)]


class _Parser(argparse.ArgumentParser):
    """argparse whose errors become one line (UsageError, exit code 2 through run_cli)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, type=Path, help="snapshot file (snapshot_N.pth.tar)")
    parser.add_argument("--cfg", default=None, help="config yaml or name in main/configs/ (default: the snapshot's)")
    parser.add_argument("--out", required=True, type=Path, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, {OPSETS[0]}-{OPSETS[-1]}")
    parser.add_argument("--no-mesh", action="store_true", help="leave the camera-frame mesh out of the outputs")
    parser.add_argument("--batch", type=int, default=2, help="batch size of the traced example (the axis is dynamic)")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                        help="accepted error against PyTorch float64 beyond float32 rounding")  # fmt: skip
    parser.add_argument("overrides", nargs="*", help="config key=value overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.opset not in OPSETS:
        raise UsageError(f"--opset {args.opset}: supported are {OPSETS[0]}-{OPSETS[-1]}")
    if args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    _check_output_path(args.out)
    snapshot = read_snapshot(args.ckpt)
    cfg, cfg_source = demo_config(args.cfg, args.overrides, snapshot)
    print(f"checkpoint {args.ckpt} (epoch {snapshot.get('epoch')}); {cfg_source}; model.arch={cfg.model.arch}")
    report = export_checkpoint(cfg, snapshot["network"], args.out, args.opset, not args.no_mesh, args.batch)
    failed = print_report(report, args.opset, args.atol)
    if failed:
        print(f"{PROG}: wrote {report.path}, but onnxruntime differs from the model by more than float32 rounding "
              f"({FLOAT32_NOISE_FACTOR:g} x PyTorch float32's error + --atol {args.atol:g}) in {', '.join(failed)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog=PROG, user_errors=(ConfigError,)))
