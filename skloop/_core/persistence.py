"""A safe file format for fitted skloop estimators.

``save`` writes one file through ``torch.save`` holding only plain data: a format tag, the
estimator's class name, its hyper-parameters and fitted scalars as JSON text, its training
history as JSON text, and the module's weights as tensors. ``load`` reads it with
``torch.load(weights_only=True)``, which refuses to unpickle arbitrary objects, so loading a
file never executes code from it; the content is then checked (a SHA-256 checksum over header
and weights, a known class, known parameters, exactly the expected tensors) before the
estimator is rebuilt. Unlike pickle, the file does
not depend on skloop's private module layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import numbers
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from .estimator import ROUTED_PREFIXES
from .params import InvalidParameterError, validate_params
from .skorch import plain_module, resolve_device

__all__ = ["save_estimator", "load_estimator", "restore_net", "PersistenceMixin", "FORMAT"]

FORMAT = "skloop-estimator"
VERSION = 1


def _jsonable(value):
    """The value if JSON can hold it faithfully, else None (e.g. callbacks, RandomState)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = [_jsonable(v) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value,
                                                                        strict=True)) else items
    return None


def save_estimator(estimator, path, fitted: dict) -> Path:
    """Write ``estimator`` (fitted) to ``path``; ``fitted`` holds its extra JSON-able state."""
    params, dropped = {}, []
    for name, value in estimator.get_params(deep=False).items():
        converted = _jsonable(value)
        if isinstance(value, type) and value.__module__.startswith("torch.optim"):
            converted = f"{_TORCH_OPTIM}{value.__name__}"  # a torch optimizer class, by name
        if converted is None and value is not None:
            if name == "random_state":
                raise ValueError("save needs random_state to be None or an int.")
            dropped.append(name)  # not representable (callbacks, a sampler object, ...)
            continue
        params[name] = converted
    # A parameter whose enabling parameter was not kept (steps_per_epoch without the sampler)
    # would make the file unloadable: it goes back to its default too.
    params, inapplicable = drop_inapplicable(type(estimator), params)
    dropped += inapplicable
    if dropped:
        warnings.warn(
            f"{type(estimator).__name__}.save keeps the weights and every parameter but "
            f"{dropped} (objects JSON cannot hold); the loaded model has their defaults. "
            "Pass them again with set_params after load to continue training with them.",
            UserWarning,
            stacklevel=3,
        )
    net = getattr(estimator, "net_", None)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "estimator": type(estimator).__name__,
        "params": json.dumps(params),
        "fitted": json.dumps(fitted),
        "history": json.dumps(net.history.to_list() if net is not None else [],
                              default=_history_default),
        "state_dict": {} if net is None else {
            k: v.detach().cpu().clone() for k, v in plain_module(net).state_dict().items()
        },
    }
    payload["checksum"] = _checksum(payload)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"save takes a file path (str or os.PathLike); got {type(path).__name__}. File "
            "objects are not supported: the file is written atomically by renaming."
        )
    path = Path(path)
    _write_atomically(payload, path)
    return path


def _write_atomically(payload: dict, path: Path) -> None:
    """Write to a temporary file beside ``path``, flush it to disk, then rename it over
    ``path``: a save that fails half-way leaves any existing file untouched."""
    if path.is_dir():
        raise IsADirectoryError(f"cannot save to {path}: it is a directory; give a file name.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save to {path}: the folder {path.parent} does not exist.")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, _file_mode(path))
        os.replace(temporary, path)
        _sync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def drop_inapplicable(cls, params: dict) -> tuple[dict, list]:
    """``params`` without the values their configuration does not use (the class's
    ``_parameter_applies`` rules, on the class defaults completed by ``params``)."""
    defaults = cls().get_params(deep=False)
    full = {**defaults, **params}
    dropped = [name for name, rule in getattr(cls, "_parameter_applies", {}).items()
               if name in params and not rule.condition(full)
               and repr(params[name]) != repr(defaults[name])]
    return {k: v for k, v in params.items() if k not in dropped}, dropped


_TORCH_OPTIM = "torch.optim."


def _optimizer_by_name(path, name: str):
    """The ``torch.optim`` class a file names (nothing else can be named)."""
    optimizer = getattr(torch.optim, name.removeprefix(_TORCH_OPTIM), None)
    if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
        raise ValueError(f"{path} names an unknown optimizer {name!r}.")
    return optimizer


def _file_mode(path: Path) -> int:
    """The replaced file's mode, or a new file's (0666 less the umask): ``mkstemp`` makes 0600."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (where the system lets a folder be opened)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _checksum(payload: dict) -> str:
    """SHA-256 of the header texts and every tensor's bytes: detects corrupted or edited files."""
    digest = hashlib.sha256()
    for key in ("format", "estimator", "params", "fitted", "history"):
        digest.update(str(payload[key]).encode())
    for name in sorted(payload["state_dict"]):
        tensor = payload["state_dict"][name]
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _history_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"history entry of type {type(value).__name__} is not serializable")


def load_estimator(path, registry: dict, device=None):
    """Read a file written by :func:`save_estimator` and rebuild the estimator.

    Parameters
    ----------
    path : str or Path
        The file.
    registry : dict
        Estimator class name → class allowed to be loaded.
    device : str or None, default=None
        Device of the rebuilt model; None keeps the saved ``device`` parameter, or the CPU
        when that device is not available here (weights are read on the CPU). A device asked
        for that is not available raises a ``ValueError`` listing the available ones.

    Raises
    ------
    ValueError
        If the file is missing pieces, truncated, tampered with, or not a skloop file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError,
            AttributeError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable skloop model file ({exc}).") from None
    except Exception as exc:  # pickle.UnpicklingError and friends from a tampered file
        raise ValueError(f"{path} is not a valid skloop model file ({exc}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skloop model file.")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path} has format version {payload.get('version')}; "
                         f"this skloop reads version {VERSION}.")
    cls = registry.get(payload.get("estimator"))
    if cls is None:
        raise ValueError(f"{path} holds an unknown estimator {payload.get('estimator')!r}.")
    try:
        params = json.loads(payload["params"])
        fitted = json.loads(payload["fitted"])
        history = json.loads(payload["history"])
        state = payload["state_dict"]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} has a damaged header ({exc}).") from None
    if not (isinstance(params, dict) and isinstance(fitted, dict) and isinstance(history, list)):
        raise ValueError(f"{path} has a damaged header (its parts are not a mapping / list).")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{path} has malformed weights.")
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise ValueError(f"{path} holds weights that are not finite (NaN or infinity).")
    if payload.get("checksum") != _checksum(payload):
        raise ValueError(f"{path} fails its checksum: the file was corrupted or modified.")
    upgrade = getattr(cls, "_upgrade_saved_params", None)
    if upgrade is not None:  # a file of an earlier layout of this estimator's parameters
        name, params = upgrade(params)
        cls = registry[name]
        params = drop_inapplicable(cls, params)[0]  # values 0.1 accepted and ignored
    unknown = {name for name in set(params) - set(cls().get_params(deep=False))
               if name.partition("__")[0] not in ROUTED_PREFIXES or "__" not in name}
    optimizer = params.get("optimizer")
    if isinstance(optimizer, str) and optimizer.startswith(_TORCH_OPTIM):
        params["optimizer"] = _optimizer_by_name(path, optimizer)
    if unknown:
        raise ValueError(f"{path} has unknown parameters {sorted(unknown)} for {cls.__name__}.")
    if "dtype" in cls().get_params(deep=False) and "dtype" not in params and state:
        # A file written before the estimator had a dtype parameter: keep its weights' dtype
        # (LoopedTransformerPCA was float64-only) rather than today's default.
        wide = any(v.dtype == torch.float64 for v in state.values())
        params["dtype"] = "float64" if wide else "float32"
    if "device" in params:
        saved = params["device"]
        if device is None:  # the saved device, or the CPU where it is not available
            try:
                resolve_device(saved)
                device = saved
            except ValueError:
                device = "cpu"
        else:
            resolve_device(device)  # an unavailable device asked for: a clear ValueError
        params["device"] = device
    estimator = cls(**params)
    try:
        validate_params(estimator)
    except InvalidParameterError as exc:
        raise ValueError(f"{path} holds invalid hyper-parameters: {exc}") from None
    try:
        estimator._restore(fitted, state, history)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} does not match a {cls.__name__} ({exc}).") from None
    return estimator


def _registry() -> dict:
    from .. import (
        ExactPCA,
        InductionDynamicsRegressor,
        InductionHeadRegressor,
        LoopedTransformerPCA,
        PowerIterationPCA,
    )

    classes = (ExactPCA, PowerIterationPCA, LoopedTransformerPCA, InductionHeadRegressor,
               InductionDynamicsRegressor)
    return {cls.__name__: cls for cls in classes}


def restore_net(net, state: dict, history: list, dtype=None):
    """Initialize a freshly built skorch net and load saved weights and history into it."""
    from skorch.history import History

    net.initialize()
    if dtype is not None:
        net.module_.to(dtype)
    plain_module(net).load_state_dict(state, strict=True)
    net.history = History(history)
    return net


class PersistenceMixin:
    """``save(path)`` / ``load(path)`` in the safe format of :mod:`skloop._core.persistence`.

    Estimators implement ``_fitted_state()`` (JSON-able fitted scalars) and
    ``_restore(fitted, state_dict, history)``.
    """

    def save(self, path):
        """Write the fitted estimator to ``path`` (weights-only tensors + JSON, no pickle).

        The file is written to a temporary file in the same folder, flushed to disk and then
        renamed over ``path``: a save that fails leaves an existing file untouched.
        Hyper-parameters that JSON cannot hold (``callbacks``, a ``sampler`` object) are not
        saved, with a warning naming them: the reloaded estimator has their defaults. A
        ``torch.optim`` optimizer class is saved by name.

        Parameters
        ----------
        path : str or Path
            Destination file.

        Returns
        -------
        path : Path

        Raises
        ------
        OSError
            If ``path`` is a folder or its folder does not exist, or writing fails.
        TypeError
            If ``path`` is a file object rather than a path.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return save_estimator(self, path, self._fitted_state())

    @classmethod
    def load(cls, path, device=None):
        """Read an estimator written by :meth:`save`; executes no code from the file.

        Parameters
        ----------
        path : str or Path
            The file.
        device : str or None, default=None
            Device of the reloaded model; None keeps the saved one, or the CPU when that was
            a CUDA device and CUDA is unavailable.

        Returns
        -------
        estimator : object
            A fitted estimator of this class, predicting exactly as the saved one.
        """
        estimator = load_estimator(path, _registry(), device)
        if not isinstance(estimator, cls):
            raise ValueError(f"{path} holds a {type(estimator).__name__}, not a {cls.__name__}.")
        return estimator
