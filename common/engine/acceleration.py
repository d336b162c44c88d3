"""Speed settings shared by training, testing and the benchmark: autocast, memory format, compile, optimizer.

Each setting keeps the model's results (up to the rounding of the chosen precision) and its checkpoint format:
`prepare_model` compiles in place (`nn.Module.compile`), so `state_dict()` keys carry no `_orig_mod.` prefix and
snapshots stay interchangeable between compiled and eager runs.

    model = prepare_model(get_model(cfg, "train"), device, cfg.train.channels_last, cfg.train.compile)
    optimizer = make_optimizer(model.parameters(), cfg.train.lr, device)
    with autocast(device, cfg.train.precision):
        losses = model(inputs, targets, meta_info, "train")
"""

import contextlib
import logging
import shutil
from collections.abc import Iterable, Iterator

import torch
from torch import nn

__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "autocast",
    "compile_unavailable_reason",
    "make_optimizer",
    "prepare_model",
    "set_backend_flags",
    "to_memory_format",
]

logger = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
"""Accepted values of `dtype` in `autocast` (config key train.precision)."""
OPTIMIZERS: tuple[str, ...] = ("adam", "rmsprop")
"""Accepted values of `name` in `make_optimizer` (config key train.optimizer)."""

# 4D weights whose memory format channels_last changes. Conv3d (V2V head) keeps its 5D default layout:
# torch.channels_last is defined for 4D tensors only, and channels_last_3d is not faster for its small volumes.
_CONV2D_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.ConvTranspose2d)


@contextlib.contextmanager
def autocast(device: torch.device | str, dtype: str) -> Iterator[None]:
    """Mixed precision for the forward pass and the loss (not for backward or the optimizer step).

    'bf16' runs matmuls and convolutions in bfloat16 through `torch.autocast` on the device's type; the model
    keeps its fp32 weights and computes rotations, the SMPL-X layer and the loss in fp32 (`full_precision`).
    bfloat16 has fp32's range, so no gradient scaler is needed.

    Args:
        device: the device the model runs on (its type selects the autocast backend: 'cuda' or 'cpu').
        dtype: 'fp32' (no autocast) or 'bf16'.

    Raises:
        ValueError: an unknown dtype.
    """
    if dtype not in PRECISIONS:
        raise ValueError(f"unknown precision {dtype!r}; accepted: {PRECISIONS}")
    if dtype == "fp32":
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
        yield


def set_backend_flags(device: torch.device | str) -> None:
    """Process-wide backend settings for speed that leave results unchanged.

    On CUDA: cudnn.benchmark, which times the convolution algorithms once per input shape and keeps the fastest
    (the model's shapes are fixed by the config). TF32 matmuls are left off: they change fp32 results.
    """
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True


def compile_unavailable_reason(device: torch.device | str) -> str | None:
    """Why torch.compile's default (inductor) backend cannot run on a device here, or None when it can.

    Inductor generates C++ for the CPU (a C++ compiler on PATH) and Triton kernels for CUDA.
    """
    if torch.device(device).type == "cuda":
        from torch.utils._triton import has_triton  # private, but it is what inductor itself asks

        return None if has_triton() else "inductor needs the triton package for CUDA and it is not installed"
    compilers = ("c++", "g++", "clang++")
    if not any(shutil.which(name) for name in compilers):
        return f"inductor needs a C++ compiler for the CPU and none of {compilers} is on PATH"
    return None


def to_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    """Sets the memory format of the model's 2D convolution weights in place and returns the model.

    Convolutions whose weight is channels_last also give channels_last outputs, so the backbones run in NHWC
    from their first layer on; ops that need NCHW (roi_align, reshapes into heatmap volumes) make their own
    contiguous copies.
    """
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for module in model.modules():
        if isinstance(module, _CONV2D_TYPES):
            module.to(memory_format=memory_format)
    return model


def prepare_model(
    model: nn.Module,
    device: torch.device | str,
    channels_last: bool,
    compile: bool,
    *,
    compile_backend: str = "inductor",
) -> nn.Module:
    """Moves a model to its device and applies the speed settings; returns the same module object.

    Args:
        model: the network (not yet wrapped in DistributedDataParallel: wrap the returned module).
        device: where to run it; on CUDA this also sets `set_backend_flags`.
        channels_last: NHWC weights for the 2D convolutions (`to_memory_format`).
        compile: compile the module's forward in place with torch.compile. When the backend cannot run here
            (`compile_unavailable_reason`) a warning says why and the model stays eager.
        compile_backend: torch.compile's backend; 'aot_eager' traces without generating code (for tests).

    Returns:
        `model`, on `device`; its state_dict keys are unchanged by compiling.
    """
    device = torch.device(device)
    set_backend_flags(device)
    model.to(device)
    to_memory_format(model, channels_last)
    if compile:
        reason = compile_unavailable_reason(device) if compile_backend == "inductor" else None
        if reason is None:
            model.compile(backend=compile_backend)
        else:
            logger.warning("torch.compile skipped, the model runs eagerly: %s", reason)
    return model


def make_optimizer(
    params: Iterable[nn.Parameter], lr: float, device: torch.device | str, name: str = "adam"
) -> torch.optim.Optimizer:
    """Adam (Hand4Whole's optimizer) or RMSprop (V2V-PoseNet's) with the fastest update kernel for the device.

    Adam on CUDA: `fused=True`, one kernel for all parameters; otherwise `foreach=True`, the multi-tensor path. Both
    compute the same update as the per-parameter loop. RMSprop has V2V's settings, torch's defaults: alpha 0.99,
    eps 1e-8, no momentum, no weight decay.

    Args:
        params: the parameters (or parameter groups) to optimise.
        lr: the learning rate.
        device: where the parameters live.
        name: one of `OPTIMIZERS` (config key train.optimizer).

    Raises:
        ValueError: an unknown name.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; accepted: {OPTIMIZERS}")
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-8, foreach=True)
    if torch.device(device).type == "cuda":
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)
