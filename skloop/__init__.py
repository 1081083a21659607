"""skloop: scikit-learn estimators that train small transformers to learn algorithms.

Public estimators are importable from the top level; data generators live in
:mod:`skloop.datasets` and metrics in :mod:`skloop.metrics`.
"""

from .induction import InductionDynamicsRegressor, InductionHeadRegressor
from .pca import ExactPCA, LoopedTransformerPCA, PowerIterationPCA

__all__ = [
    "ExactPCA",
    "InductionDynamicsRegressor",
    "InductionHeadRegressor",
    "LoopedTransformerPCA",
    "PowerIterationPCA",
]
__version__ = "0.2.0"
