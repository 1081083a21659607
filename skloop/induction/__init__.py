"""Transformers that learn induction heads: targets, models, constructions, estimators."""

from ._dynamics import detect_phases, plateau_time_theory, simulate_population
from ._dynamics_regressor import InductionDynamicsRegressor
from ._hooks import HookPoint
from ._interventions import ActivationCache, InterventionResult
from ._mechanism import (
    InductionScore,
    duplicate_token_scores,
    induction_scores,
    previous_token_scores,
)
from ._regressor import InductionHeadRegressor
from ._targets import gihn, ih2, ihn, mixed_target, uniform_attention_baseline

__all__ = [
    "ActivationCache",
    "HookPoint",
    "InductionScore",
    "InterventionResult",
    "duplicate_token_scores",
    "induction_scores",
    "previous_token_scores",
    "InductionDynamicsRegressor",
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
