"""FreiHAND (right-hand crops, MANO GT) for the Pose2Pose hand model; evaluation writes the benchmark's pred.json."""

from data.FreiHAND.FreiHAND import FreiHAND

__all__ = ["FreiHAND"]
