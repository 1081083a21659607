"""Transformers that learn induction heads: targets, model, constructions, estimator."""

from ._dynamics import detect_phases, plateau_time_theory, simulate_population
from ._estimator import InductionHeadRegressor
from ._targets import gihn, ih2, ihn, mixed_target, uniform_attention_baseline

__all__ = [
    "InductionHeadRegressor",
    "detect_phases",
    "plateau_time_theory",
    "simulate_population",
    "gihn",
    "ih2",
    "ihn",
    "mixed_target",
    "uniform_attention_baseline",
]
