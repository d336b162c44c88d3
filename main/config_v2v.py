"""Config section `v2v`: The V2V-PoseNet family's model, voxelisation and decoding (depth maps).

Each field: a comment that says what it is, its unit and the seed's value; `__post_init__` checks every field
with main/config_checks.py's helpers so that a wrong value fails naming its dotted key (`v2v.<field>`).
"""

from dataclasses import dataclass

__all__ = ["V2VConfig"]


@dataclass
class V2VConfig:
    """The V2V-PoseNet family's model, voxelisation and decoding (depth maps)."""

    def __post_init__(self) -> None:
        pass
