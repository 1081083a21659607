"""skloop: scikit-learn estimators that train small transformers to learn algorithms.

Public estimators are importable from the top level; data generators live in
:mod:`skloop.datasets` and metrics in :mod:`skloop.metrics`. The estimators (and torch) are
imported on first use, so that ``skloop --help`` answers at once.
"""

from importlib import import_module

__all__ = [
    "ExactPCA",
    "InductionDynamicsRegressor",
    "InductionHeadRegressor",
    "LoopedTransformerPCA",
    "PowerIterationPCA",
]
__version__ = "0.2.0"

_HOMES = {
    "ExactPCA": ".pca",
    "InductionDynamicsRegressor": ".induction",
    "InductionHeadRegressor": ".induction",
    "LoopedTransformerPCA": ".pca",
    "PowerIterationPCA": ".pca",
}


def __getattr__(name):  # PEP 562: the estimators are imported on first access
    if name in _HOMES:
        value = getattr(import_module(_HOMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skloop' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
