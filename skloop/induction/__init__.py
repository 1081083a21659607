"""Transformers that learn induction heads: targets, model, constructions, estimator."""

from ._estimator import InductionHeadRegressor
from ._targets import gihn, ih2, ihn, mixed_target, uniform_attention_baseline

__all__ = [
    "InductionHeadRegressor",
    "gihn",
    "ih2",
    "ihn",
    "mixed_target",
    "uniform_attention_baseline",
]
