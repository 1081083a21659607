"""Principal components of batches of matrices: the looped transformer and exact baselines."""

from ._baselines import ExactPCA, PowerIterationPCA
from ._estimator import LoopedTransformerPCA

__all__ = ["ExactPCA", "LoopedTransformerPCA", "PowerIterationPCA"]
