"""Config section `triangulation`: the learnable-triangulation model (algebraic, RANSAC, volumetric).

Each field: a comment that says what it is, its unit and the seed's value; `__post_init__` checks every field
with main/config_checks.py's helpers so that a wrong value fails naming its dotted key (`triangulation.<field>`).
"""

from dataclasses import dataclass

__all__ = ["TriangulationConfig"]


@dataclass
class TriangulationConfig:
    """The triangulation family's model (learnable triangulation: algebraic, RANSAC, volumetric)."""

    def __post_init__(self) -> None:
        pass
