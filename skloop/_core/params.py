"""Declarative hyper-parameter validation, shared by every skloop estimator.

Each estimator declares, next to its class, scikit-learn's ``_parameter_constraints`` (types and
ranges: :class:`Number` for numbers, ``StrOptions`` for choices) and ``_parameter_applies``
(the configuration each optional parameter belongs to, as :class:`AppliesWhen` rules). One call,
:func:`validate_params`, runs both, at ``fit`` on every parameter and again at
``predict``/``transform``/``score`` on the parameters those read (users ``set_params`` after
``fit``), and on the parameters read back by ``load``.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "AppliesWhen",
    "HasMethods",
    "Integral",
    "InvalidParameterError",
    "Number",
    "Options",
    "Real",
    "StrOptions",
    "applies_when",
    "validate_params",
]

Integral, Real = numbers.Integral, numbers.Real


class Number(Interval):
    """scikit-learn's ``Interval`` that also refuses bools (``lr=True``) and non-finite values.

    Parameters
    ----------
    type : {numbers.Integral, numbers.Real}
        The accepted number type.
    left, right : float or None
        Bounds (``None``: unbounded).
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval.
    """

    def is_satisfied_by(self, val):
        if isinstance(val, (bool, np.bool_)):
            return False
        if isinstance(val, Real) and not np.isfinite(float(val)):
            return False
        return super().is_satisfied_by(val)

    def __str__(self):
        return "a finite " + super().__str__().removeprefix("a ").removeprefix("an ")


@dataclass(frozen=True)
class AppliesWhen:
    """A parameter that only has an effect in one configuration of its estimator.

    Attributes
    ----------
    condition : callable
        ``condition(params) -> bool`` on the estimator's ``get_params(deep=False)``.
    description : str
        The configuration in words, for the error message (``"objective='layerwise'"``).
    """

    condition: Callable[[dict], bool]
    description: str


def applies_when(name: str, *values) -> AppliesWhen:
    """The rule "applies when parameter ``name`` takes one of ``values``"."""
    shown = " or ".join(f"{name}={value!r}" for value in values)
    return AppliesWhen(lambda params: params[name] in values, shown)


def _differs(value, default) -> bool:
    try:
        return bool(value != default)
    except (TypeError, ValueError):  # arrays and other objects without a plain equality
        return value is not default


def _defaults(cls) -> dict:
    signature = inspect.signature(cls.__init__)
    return {name: p.default for name, p in signature.parameters.items() if name != "self"}


def validate_params(estimator, names=None) -> None:
    """Validate the estimator's hyper-parameters against its declared tables.

    Runs, in order: the types and ranges of ``_parameter_constraints``; the applicability rules
    of ``_parameter_applies`` (a parameter set away from its default in a configuration that
    does not use it is an error, never silently ignored); the estimator's own cross-parameter
    checks ``_check_param_combinations()`` when it defines them.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator.
    names : iterable of str or None, default=None
        Only these parameters (those an inference method reads); ``None``: all of them.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        (a ``ValueError`` and a ``TypeError``) naming the parameter, what it must be and the
        value it got.
    """
    params = estimator.get_params(deep=False)
    selected = params if names is None else {name: params[name] for name in names}
    validate_parameter_constraints(
        estimator._parameter_constraints, selected, caller_name=type(estimator).__name__
    )
    defaults = _defaults(type(estimator))
    for name, rule in getattr(estimator, "_parameter_applies", {}).items():
        if name in selected and not rule.condition(params):
            if _differs(params[name], defaults[name]):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(estimator).__name__} only applies when "
                    f"{rule.description}; got {name}={params[name]!r} in a configuration that "
                    f"does not use it. Leave it at its default ({defaults[name]!r}) or change "
                    "the configuration."
                )
    check = getattr(estimator, "_check_param_combinations", None)
    if check is not None:
        check(selected)
