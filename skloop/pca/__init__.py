"""Principal components of batches of matrices: exact baselines (and learned models)."""

from ._baselines import ExactPCA, PowerIterationPCA

__all__ = ["ExactPCA", "PowerIterationPCA"]
