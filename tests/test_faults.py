"""Fault injection: a disk that fills up or a process killed in the middle of a save, and files
that are truncated, damaged at random, of another class, or forged with a valid checksum.

Whatever happens, an existing model file stays loadable, and ``load`` either returns the model
that was saved or raises a ``ValueError`` that says what is wrong with the file.
"""

import errno
import json
import os
import signal

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from skloop import (
    ExactPCA,
    InductionDynamicsRegressor,
    InductionHeadRegressor,
    LoopedTransformerPCA,
    PowerIterationPCA,
)
from skloop._core.persistence import _checksum
from skloop.datasets import make_induction_head_task, make_sphere_matrices

X = make_sphere_matrices(20, n_points=6, n_features=3, random_state=0)
SEQ, TARGET = make_induction_head_task("ih2", 20, 6, random_state=0)
MIXED, MIXED_TARGET = make_induction_head_task("mixed", 16, 8, random_state=0)
NAMES = ["dynamics", "exact", "induction", "looped", "power"]


@pytest.fixture(scope="module")
def models():
    """A fitted model of each estimator and its inputs (built when first needed)."""
    return {
        "exact": (ExactPCA().fit(X), X),
        "power": (PowerIterationPCA(3, random_state=0).fit(X), X),
        "looped": (LoopedTransformerPCA(max_epochs=1, random_state=0).fit(X), X),
        "induction": (InductionHeadRegressor(max_epochs=1, random_state=0).fit(SEQ, TARGET),
                      SEQ),
        "dynamics": (InductionDynamicsRegressor(max_epochs=1, batch_size=8,
                                                random_state=0).fit(MIXED, MIXED_TARGET), MIXED),
    }


@pytest.fixture(scope="module")
def saved(models, tmp_path_factory):
    """Each model's file bytes."""
    folder = tmp_path_factory.mktemp("saved")
    return {name: model.save(folder / f"{name}.skl").read_bytes()
            for name, (model, _) in models.items()}


# ------------------------------------------------------------------ a save that fails
def _save_in_a_child(model, path, limit):
    """Save ``model`` to ``path`` in a forked child whose files may not exceed ``limit`` bytes
    (``RLIMIT_FSIZE``): once with ``SIGXFSZ`` ignored, as on a full disk (``write`` fails with
    EFBIG), then with its default action, which kills the child in the middle of the write.
    Returns what the first save raised and how the child ended."""
    import resource

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report on the pipe, never return into pytest
        try:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            try:
                model.save(path)
                os.write(write, b"saved")
            except OSError as error:
                os.write(write, f"OSError {error.errno}".encode())
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            model.save(path)
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        return pipe.read(), status


def test_a_full_disk_or_a_kill_during_save_keeps_the_existing_file(models, tmp_path):
    pytest.importorskip("resource")
    model, data = models["looped"]
    target = model.save(tmp_path / "model.skl")
    good = target.read_bytes()
    other = LoopedTransformerPCA(max_epochs=1, random_state=1).fit(X * 2)
    size = other.save(tmp_path / "scratch.skl").stat().st_size
    raised, status = _save_in_a_child(other, target, size // 2)
    assert raised == f"OSError {errno.EFBIG}"  # raised to the caller, not swallowed
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXFSZ  # killed half-way
    assert target.read_bytes() == good
    np.testing.assert_array_equal(LoopedTransformerPCA.load(target).predict(data),
                                  model.predict(data))
    # The failed save removed its temporary file; the killed one could not remove its own.
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers[-2:] == ["model.skl", "scratch.skl"] and len(leftovers) == 3, leftovers


# ------------------------------------------------------------------ damaged files
@given(data=st.data())
def test_a_truncated_file_never_loads(tmp_path_factory, models, saved, data):
    name = data.draw(st.sampled_from(NAMES), label="model")
    raw = saved[name]
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    path = tmp_path_factory.mktemp("cut") / "model.skl"
    path.write_bytes(raw[:cut])
    with pytest.raises(ValueError, match="skloop model file|checksum|damaged|malformed"):
        type(models[name][0]).load(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch, on a damaged file
@given(data=st.data())
def test_random_damage_is_refused_or_harmless(tmp_path_factory, models, saved, data):
    """Bytes overwritten at random places: a ValueError, or (damage where nothing is read,
    e.g. zip padding) the very model that was saved."""
    name = data.draw(st.sampled_from(NAMES), label="model")
    raw = bytearray(saved[name])
    for _ in range(data.draw(st.integers(1, 4), label="hits")):
        where = data.draw(st.integers(0, len(raw) - 1), label="offset")
        raw[where] ^= data.draw(st.integers(1, 255), label="xor")
    path = tmp_path_factory.mktemp("damaged") / "model.skl"
    path.write_bytes(bytes(raw))
    model, inputs = models[name]
    try:
        loaded = type(model).load(path)
    except ValueError as error:
        assert str(path) in str(error)
        return
    np.testing.assert_array_equal(loaded.predict(inputs), model.predict(inputs))


@pytest.mark.parametrize("size", [0, 1, 22, 1000])
def test_random_bytes_are_not_a_model(tmp_path, size):
    path = tmp_path / "random.skl"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    with pytest.raises(ValueError, match="skloop model file"):
        LoopedTransformerPCA.load(path)


@pytest.mark.parametrize("reader", NAMES)
@pytest.mark.parametrize("writer", NAMES)
def test_a_file_of_another_class_is_refused(tmp_path, models, saved, reader, writer):
    path = tmp_path / "model.skl"
    path.write_bytes(saved[writer])
    cls = type(models[reader][0])
    if reader == writer:
        assert isinstance(cls.load(path), cls)
        return
    with pytest.raises(ValueError, match=type(models[writer][0]).__name__):
        cls.load(path)


# ------------------------------------------------------------------ forged files
def _forge(path, change):
    """Edit a saved payload with ``change`` and recompute its checksum."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    change(payload)
    payload["checksum"] = _checksum(payload)
    torch.save(payload, path)
    return path


def _json(key, edit):
    def change(payload):
        value = json.loads(payload[key])
        edit(value)
        payload[key] = json.dumps(value)
    return change


FORGERIES = [  # (model, what, change, message of the ValueError)
    ("looped", "n_loops=-5", _json("params", lambda p: p.update(n_loops=-5)), "'n_loops'"),
    ("looped", "lr=True", _json("params", lambda p: p.update(lr=True)), "'lr'"),
    ("looped", "unknown parameter", _json("params", lambda p: p.update(bogus=1)), "bogus"),
    ("looped", "other feature count", _json("fitted", lambda f: f.update(n_features_in_=5)),
     "does not match"),
    ("looped", "missing fitted value", _json("fitted", lambda f: f.pop("n_features_in_")),
     "does not match"),
    ("looped", "weights of another shape",
     lambda p: p["state_dict"].update(W_pv=torch.zeros(4, 4)), "does not match"),
    ("looped", "an extra tensor", lambda p: p["state_dict"].update(extra=torch.zeros(1)),
     "does not match"),
    ("looped", "another estimator's name", lambda p: p.update(estimator="ExactPCA"),
     "unknown parameters"),
    ("exact", "weights for a model without any",
     lambda p: p["state_dict"].update(W=torch.zeros(2)), "no weights"),
    ("induction", "another output count", _json("fitted", lambda f: f.update(n_outputs_=3)),
     "does not match"),
    ("looped", "format version 2", lambda p: p.update(version=2), "version 2"),
]
# Found here by the fault search, then refused by the persistence module.
FORGERIES += [
    ("looped", "NaN weights", lambda p: p["state_dict"]["W_pv"].fill_(float("nan")),
     "finite"),
    ("induction", "infinite weights",
     lambda p: next(iter(p["state_dict"].values())).fill_(float("inf")), "finite"),
    ("looped", "parameters not a dict", lambda p: p.update(params=json.dumps([1])), "header"),
]


@pytest.mark.parametrize("name, what, change, message", FORGERIES,
                         ids=[f[1] for f in FORGERIES])
def test_a_forged_file_with_a_valid_checksum_is_refused(models, tmp_path, name, what, change,
                                                        message):
    model, _ = models[name]
    path = _forge(model.save(tmp_path / "forged.skl"), change)
    with pytest.raises(ValueError, match=message):
        type(model).load(path)
