"""Principal components of batches of matrices: the looped transformer and exact baselines."""

from ._baselines import ExactPCA, PowerIterationPCA
from ._estimator import LoopedTransformerPCA, WeightSnapshots
from ._model import power_method_weights

__all__ = [
    "ExactPCA",
    "LoopedTransformerPCA",
    "PowerIterationPCA",
    "WeightSnapshots",
    "power_method_weights",
]
