"""Seeds and random-number-generator state (python, numpy, torch, CUDA), saved with snapshots for exact resumes.

The saved state holds only tensors, lists, ints, floats, strings and None, which
``torch.load(weights_only=True)`` rebuilds without running code (`common.engine.snapshot`); numpy's
own state tuple holds an ndarray, which it refuses.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng_state", "restore_rng_state", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seeds python's, numpy's and torch's global generators (every CUDA device included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def capture_rng_state() -> dict[str, Any]:
    """The global generators' states as weights_only-loadable values.

    Returns:
        {'python': {'version': int, 'internal': list of 625 ints, 'gauss_next': float | None},
         'numpy': {'bit_generator': str, 'key': list of 624 ints (uint32 values), 'pos': int,
                   'has_gauss': int, 'cached_gaussian': float},
         'torch': (5056,) uint8 CPU tensor, 'cuda': list of uint8 CPU tensors, one per device (empty without CUDA)}
    """
    version, internal, gauss_next = random.getstate()
    bit_generator, key, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {
            "bit_generator": str(bit_generator),
            "key": key.tolist(),  # exact: python ints
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),  # exact: a float64
        },
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Puts back what `capture_rng_state` returned (the CUDA states when this machine has as many devices)."""
    python, legacy = state["python"], state["numpy"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
    np.random.set_state((legacy["bit_generator"], np.asarray(legacy["key"], dtype=np.uint32), legacy["pos"],
                         legacy["has_gauss"], legacy["cached_gaussian"]))  # fmt: skip
    torch.set_rng_state(state["torch"])
    if state["cuda"] and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
