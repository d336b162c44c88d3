"""Config section `multiview`: multi-view data (Human3.6M multi-view labels and CMU Panoptic readers).

Each field: a comment that says what it is, its unit and the seed's value; `__post_init__` checks every field
with main/config_checks.py's helpers so that a wrong value fails naming its dotted key (`multiview.<field>`).
"""

from dataclasses import dataclass

__all__ = ["MultiViewDataConfig"]


@dataclass
class MultiViewDataConfig:
    """Multi-view data (the triangulation family's Human3.6M multi-view and CMU Panoptic readers)."""

    def __post_init__(self) -> None:
        pass
