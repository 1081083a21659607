"""Principal components of batches of matrices: the looped transformer and exact baselines."""

from ._baselines import ExactPCA, PowerIterationPCA
from ._looped import LoopedTransformerPCA
from ._model import power_method_weights
from ._net import WeightSnapshots

__all__ = [
    "ExactPCA",
    "LoopedTransformerPCA",
    "PowerIterationPCA",
    "WeightSnapshots",
    "power_method_weights",
]
