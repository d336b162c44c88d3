"""InterHand2.6M (one record per visible hand, MANO NeuralAnnot GT) for the Pose2Pose hand model."""

from data.InterHand26M.InterHand26M import InterHand26M

__all__ = ["InterHand26M"]
