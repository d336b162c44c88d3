"""Strict network-state loading with a readable report of mismatched keys.

Hand4Whole loaded non-strictly, so a renamed or missing head silently kept its random weights. Here every
load is strict; a mismatch raises one error that lists the missing keys, the unexpected keys and the shape
differences. A `module.` prefix (what DataParallel/DDP add, and what the public Hand4Whole snapshots carry) is
accepted and stripped.
"""

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from torch import Tensor, nn

__all__ = ["StateDictMismatchError", "load_network_state", "strip_module_prefix"]

_PREFIX = "module."
_LISTED = 20  # keys listed per category before "... and N more"


class StateDictMismatchError(RuntimeError):
    """A state_dict that does not fit a model.

    Attributes:
        missing: keys the model has and the state_dict lacks, sorted.
        unexpected: keys the state_dict has and the model lacks, sorted.
        shape_mismatch: (key, shape in the state_dict, shape in the model), sorted by key.
    """

    def __init__(
        self,
        model_name: str,
        missing: list[str],
        unexpected: list[str],
        shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        self.missing, self.unexpected, self.shape_mismatch = missing, unexpected, shape_mismatch
        parts = [f"state_dict does not match {model_name}"]
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
        if shape_mismatch:
            shapes = [f"{key} {list(got)} (model {list(want)})" for key, got, want in shape_mismatch]
            parts.append(f"{len(shape_mismatch)} shape mismatch(es): {_listing(shapes)}")
        super().__init__("; ".join(parts))


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_LISTED])
    return shown + (f", ... and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def strip_module_prefix(state_dict: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    """Removes a leading `module.` from every key that has one (DataParallel/DDP checkpoints).

    Args:
        state_dict: a network state_dict.

    Returns:
        A new ordered dict with the same tensors, in the same order.
    """
    return OrderedDict((key[len(_PREFIX) :] if key.startswith(_PREFIX) else key, value)
                       for key, value in state_dict.items())  # fmt: skip


def load_network_state(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Loads a state_dict into a model with strict=True after stripping `module.` prefixes.

    Args:
        model: the network (not wrapped in DDP).
        state_dict: its saved state, with or without `module.` prefixes.

    Raises:
        StateDictMismatchError: keys are missing or unexpected, or shapes differ; the message lists the first
            few of each kind and the attributes hold the full lists. A missing BatchNorm `num_batches_tracked`
            counter is not an error.
    """
    state = strip_module_prefix(state_dict)
    expected = model.state_dict()
    # BatchNorm's step counter is absent from older files (torchvision's ImageNet weights among them); it is not
    # a weight, and BatchNorm's own loader fills it in for a state_dict without version metadata, as here.
    missing = sorted(key for key in set(expected) - set(state) if not key.endswith(".num_batches_tracked"))
    unexpected = sorted(set(state) - set(expected))
    shape_mismatch = [
        (key, tuple(state[key].shape), tuple(expected[key].shape))
        for key in sorted(set(state) & set(expected))
        if tuple(state[key].shape) != tuple(expected[key].shape)
    ]
    if missing or unexpected or shape_mismatch:
        raise StateDictMismatchError(type(model).__name__, missing, unexpected, shape_mismatch)
    model.load_state_dict(state, strict=True)
