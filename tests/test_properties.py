"""Property-based tests: for batches drawn across dtypes, scales, shapes and spectra, every
estimator returns a correct result or raises a clear error, and a failed call leaves a fitted
estimator bit-identical.

"Correct" is checked against references computed here by another route: ``numpy.linalg.eigh``
and a plain power iteration on a copy rescaled by its largest value (skloop scales by powers
of two), the looped model's own training path, and the induction models' forward pass.
Examples per property: ``max_examples`` of the hypothesis profile (``tests/conftest.py``).
"""

import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st

from skloop import (
    ExactPCA,
    InductionDynamicsRegressor,
    InductionHeadRegressor,
    LoopedTransformerPCA,
    PowerIterationPCA,
)
from skloop._core import estimator as core_estimator
from skloop._core.skorch import plain_module
from skloop.datasets import make_induction_head_task, make_spectrum_matrices, make_sphere_matrices
from skloop.metrics import angular_error, leading_subspace, subspace_distance
from skloop.pca._model import power_method_weights
from skloop.pca._vectors import random_query_vectors

ERRORS = (ValueError, TypeError, FloatingPointError)
FLOAT32 = np.finfo(np.float32)
DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_, object]
SPECTRA = ["gaussian", "tied", "rank1", "identical", "integers", "wide"]


# ------------------------------------------------------------------ strategies
def _matrix(spectrum, n, d, rng):
    if spectrum == "gaussian":
        return rng.standard_normal((n, d))
    if spectrum == "tied":  # ±e_i in turn: equal top eigenvalues (multiplicity > 1)
        return np.eye(d)[np.arange(n) % d] * rng.choice([-1.0, 1.0], (n, 1))
    direction = rng.standard_normal(d)
    if spectrum == "rank1":
        return rng.standard_normal((n, 1)) * direction
    if spectrum == "identical":
        return np.tile(direction, (n, 1))
    if spectrum == "wide":  # point norms spread over 10**±150 within one matrix
        return rng.standard_normal((n, d)) * 10.0 ** rng.integers(-150, 151, (n, 1))
    return rng.integers(-3, 4, (n, d)).astype(float)


@st.composite
def batches(draw, n_features=None, max_points=6, ragged=True, min_points=1):
    """A batch as a user may pass it: a 3-D array or a list of matrices (ragged, or with an
    empty member), of any dtype, scaled by 10**e for e in [-320, 308] (subnormal to inf)."""
    d = n_features or draw(st.integers(1, 4))
    n_matrices = draw(st.integers(1, 3))
    spectrum = draw(st.sampled_from(SPECTRA))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if ragged and draw(st.booleans()):
        counts = [draw(st.integers(min_points, max_points)) for _ in range(n_matrices)]
    else:
        counts = [draw(st.integers(min_points, max_points))] * n_matrices
    matrices = [_matrix(spectrum, n, d, rng) for n in counts]
    dtype = draw(st.sampled_from(DTYPES))
    if dtype in (np.int64, np.int8):
        matrices = [np.rint(np.clip(3 * m, -100, 100)).astype(dtype) for m in matrices]
    elif dtype is np.bool_:
        matrices = [m > 0 for m in matrices]
    else:
        scale = 10.0 ** draw(st.integers(-320, 308))
        with np.errstate(over="ignore", under="ignore"):
            matrices = [(m * scale).astype(dtype) for m in matrices]
    if ragged and draw(st.integers(0, 7)) == 0:  # an empty member, somewhere
        matrices.insert(draw(st.integers(0, len(matrices))), matrices[0][:0])
    if len({m.shape for m in matrices}) == 1 and draw(st.booleans()):
        return np.stack(matrices)
    return matrices


def _as_float64(X):
    return [np.asarray(m, dtype=np.float64) for m in X]


def _state(estimator):
    """Everything a fitted estimator holds, comparable for bit-identity."""
    state = {}
    for name, value in sorted(vars(estimator).items()):
        if name == "net_":
            module = plain_module(value)
            state[name] = {k: v.detach().cpu().numpy().tobytes()
                           for k, v in module.state_dict().items()}
            state["net_history"] = repr(value.history.to_list())
        elif isinstance(value, np.ndarray):
            state[name] = (value.dtype.str, value.shape, value.tobytes())
        elif name != "history_":
            state[name] = repr(value)
    return state


def _call(estimator, method, X, **kwargs):
    """``method(X)``, or the clear error it raised; a failure must leave ``estimator`` as it
    was, bit for bit."""
    before = _state(estimator)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # casts of the strategies
            result = getattr(estimator, method)(X, **kwargs)
    except ERRORS as error:
        assert len(str(error)) > 20, error  # says what, not only that
        assert _state(estimator) == before
        event(f"{method}: {type(error).__name__}: {str(error)[:40]}")
        return error
    event(f"{method}: returned")
    return result


# ------------------------------------------------------------------ references
def _reference(A, center, normalize):
    """Preprocessed points of one matrix on a copy rescaled by its largest |value|, and the
    square of that scale; None where the estimator must refuse (zero points / matrix)."""
    scale = np.max(np.abs(A))
    if scale == 0:
        return None
    A = A / scale
    if center:  # a point equal to the mean up to rounding counts as zero
        A = A - A.mean(axis=0)
        noise = 2 * (len(A) + 1) * np.finfo(float).eps * np.sqrt(A.shape[1])
        A[np.linalg.norm(A, axis=1) <= noise] = 0.0
        peak = np.max(np.abs(A))
        if peak == 0:
            return None
        A, scale = A / peak, scale * peak
    if normalize:
        peaks = np.max(np.abs(A), axis=1, keepdims=True)
        if np.any(peaks == 0):
            return None
        A = A / peaks
        return A / np.linalg.norm(A, axis=1, keepdims=True), 1.0
    with np.errstate(over="ignore"):
        return A, scale * scale


def _top_space(P, rtol=1e-8):
    values, vectors = np.linalg.eigh(P.T @ P / len(P))
    return vectors[:, values >= values[-1] - rtol * abs(values[-1])]


def _cos2(space, v):
    return np.sum((space.T @ v) ** 2) / np.sum(v**2)


def _shifted_step(P, c2, rho, v):
    """One step ``(I + ρΣ)v`` normalized, ``Σ = c2 PᵀP/n``; ``ρ = None``: ``Σv`` normalized."""
    w = P.T @ (P @ v) / len(P)
    if rho is not None:
        with np.errstate(over="ignore", under="ignore"):
            gain = rho * c2
        w = v / gain + w if gain > 1 else v + gain * w
    return w / np.linalg.norm(w)


def _expected_refusal(members, center, normalize, n_components=1):
    """Whether the batch must be refused, from the data alone."""
    if any(m.shape[0] == 0 for m in members) or not all(np.all(np.isfinite(m)) for m in members):
        return True
    return n_components > members[0].shape[1] or any(
        _reference(m, center, normalize) is None for m in members)


# ------------------------------------------------------------------ exact baselines
@given(X=batches(), center=st.booleans(), normalize=st.booleans(),
       n_components=st.integers(1, 2))
def test_exact_pca_is_eigh_on_a_rescaled_copy_or_refuses(X, center, normalize, n_components):
    estimator = ExactPCA(n_components, center=center, normalize_points=normalize)
    refused = _expected_refusal(_as_float64(X), center, normalize, n_components)
    fitted = _call(estimator, "fit", X)
    assert isinstance(fitted, Exception) == refused, fitted
    if refused:
        return
    members = _as_float64(X)
    predicted = _call(estimator, "predict", X)
    predicted = predicted.reshape(len(members), n_components, -1)
    for m, components in zip(members, predicted, strict=True):
        np.testing.assert_allclose(components @ components.T, np.eye(n_components), atol=1e-9)
        assert _cos2(_top_space(_reference(m, center, normalize)[0]), components[0]) > 1 - 1e-9
    assert estimator.score(X) > 1 - 1e-9  # the score agrees


@given(X=batches(), center=st.booleans(), normalize=st.booleans(),
       shift=st.one_of(st.none(), st.integers(-3, 300).map(lambda e: 10.0**e)),
       n_iter=st.integers(1, 12), method=st.sampled_from(["gram", "matrix_free"]))
def test_power_iteration_is_the_power_method_on_a_rescaled_copy(X, center, normalize, shift,
                                                                 n_iter, method):
    estimator = PowerIterationPCA(n_iter, shift=shift, center=center, normalize_points=normalize,
                                  method=method, random_state=0)
    members = _as_float64(X)
    refused = _expected_refusal(members, center, normalize)
    fitted = _call(estimator, "fit", X)
    assert isinstance(fitted, Exception) == refused, fitted
    if refused:
        return
    predicted = _call(estimator, "predict", X)
    starts = random_query_vectors(np.random.RandomState(0), len(members), members[0].shape[1])
    scores = []
    for m, start, component in zip(members, starts[:, :, 0], predicted, strict=True):
        P, c2 = _reference(m, center, normalize)
        v = start
        for _ in range(n_iter):
            v = _shifted_step(P, c2, shift, v)
        assert np.linalg.norm(component) == pytest.approx(1.0, abs=1e-12)
        assert abs(component @ v) > 1 - 1e-8, (component, v)
        scores.append(_cos2(_top_space(P), v))
    # The score is the reference's cos² (never a good score for a wrong answer).
    assert estimator.score(X) == pytest.approx(np.mean(scores), abs=1e-7)


# ------------------------------------------------------------------ looped transformer
_LOOPED = {}


def _looped(d, dtype, normalize):
    """A fitted tiny model (one per feature count and dtype), refitted never."""
    key = (d, dtype)
    if key not in _LOOPED:
        X = make_sphere_matrices(8, n_points=d + 1, n_features=d, random_state=0)
        _LOOPED[key] = LoopedTransformerPCA(objective="layerwise", max_epochs=1, batch_size=8,
                                            dtype=dtype, random_state=0).fit(X)
    return _LOOPED[key].set_params(normalize_points=normalize)


@given(X=batches(n_features=3), normalize=st.booleans(),
       dtype=st.sampled_from(["float64", "float32"]),
       u=st.integers(-2, 3).map(lambda e: 10.0**e), w=st.floats(0.1, 10.0),
       loops=st.integers(1, 8))
def test_looped_predict_is_its_shifted_power_method_or_refuses(X, normalize, dtype, u, w, loops):
    """Power-method weights with LN: loop 1 on the points as given, then loops on unit
    points: predict (its fast path) matches that reference, computed on a rescaled copy."""
    model = _looped(3, dtype, normalize).with_weights(
        *(a.numpy() for a in power_method_weights(3, u, w))).set_params(n_loops=loops)
    predicted = _call(model, "predict", X)
    members = _as_float64(X)
    refused = _expected_refusal(members, False, normalize)
    info = np.finfo(dtype)
    if not refused and not normalize:  # the raw points must fit the model's dtype
        tiny = any(np.any((p > 0) & (p < info.tiny)) for p in
                   (np.max(np.abs(m), axis=1) for m in members)) and dtype == "float32"
        with np.errstate(over="ignore"):
            traces = [np.sum(_norms(m / np.sqrt(info.max)) ** 2) for m in members]
        refused = tiny or max(traces) >= 1
    if isinstance(predicted, FloatingPointError):  # an update beyond the dtype: near its edge
        assert "overflows" in str(predicted)
        with np.errstate(over="ignore"):
            trace = max(len(m) * 3 * np.max(np.abs(m)) ** 2 for m in members)
        assert max(u, w, u * w) * trace > 1e-3 * info.max
        return
    assert isinstance(predicted, Exception) == refused, predicted
    if refused:
        return
    starts = random_query_vectors(np.random.RandomState(0), len(members), 3)[:, :, 0]
    tolerance = 1e-9 if dtype == "float64" else 2e-4
    for m, v, component in zip(members, starts, predicted, strict=True):
        raw, c2 = _reference(m, False, normalize)
        v = _shifted_step(raw, c2, u * w, v)  # loop 1 on the points as given ...
        for _ in range(loops - 1):  # ... then on the points LN made unit
            v = _shifted_step(_unit_rows(raw), 1.0, u * w, v)
        assert abs(component @ v) > 1 - tolerance, (component, v)


def _norms(P):
    peaks = np.max(np.abs(P), axis=1)
    safe = np.where(peaks > 0, peaks, 1.0)
    return peaks * np.linalg.norm(P / safe[:, None], axis=1)


def _unit_rows(P):
    norms = _norms(P)[:, None]
    return P / np.where(norms > 0, norms, 1.0)


@given(X=batches(n_features=3, ragged=False), normalize=st.booleans(),
       dtype=st.sampled_from(["float64", "float32"]), rho=st.floats(0.01, 100.0),
       extra=st.sampled_from(["folded", "frozen_data"]), loops=st.integers(1, 6),
       seed=st.integers(0, 100))
def test_fast_paths_agree_with_the_training_path(X, normalize, dtype, rho, extra, loops, seed):
    model = _looped(3, dtype, normalize)
    W_pv, W_kq = (a.numpy() for a in power_method_weights(3, 1.0, rho))
    if extra == "frozen_data":  # blocks that keep Σ fixed but leave the power method
        rng = np.random.default_rng(seed)
        W_kq[3:, 3:] = 0.3 * rng.standard_normal((3, 3))
        W_pv[:3, :3] = 0.3 * rng.standard_normal((3, 3))
    model = model.with_weights(W_pv, W_kq).set_params(n_loops=loops)
    batch = _call(model, "_prepare", X, reset=False)  # predict's checks and preprocessing
    if isinstance(batch, Exception):
        return
    module = model._module()
    assert module.inference_path(3) == extra
    parameter = next(module.parameters())
    inputs = (torch.from_numpy(batch.data).to(parameter.dtype), torch.from_numpy(batch.n_points),
              torch.from_numpy(model._query_vectors(batch)[:, :, 0]).to(parameter.dtype))
    with torch.no_grad():
        fast = list(module.iterate(*inputs, loops))
        general = list(module.iterate(*inputs, loops, path="general"))
    for a, b in zip(fast, general, strict=True):
        if not (torch.all(torch.isfinite(a)) and torch.all(torch.isfinite(b))):
            continue  # an overflow, reported by predict as a FloatingPointError
        cos = torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)
        assert torch.all(cos > 1 - (1e-9 if dtype == "float64" else 1e-4)), cos


# ------------------------------------------------------------------ induction models
_INDUCTION = {}


def _induction(kind):
    if kind not in _INDUCTION:
        if kind == "head":
            X, y = make_induction_head_task("ih2", 16, 6, 1, random_state=0)
            model = InductionHeadRegressor(max_epochs=1, random_state=0).fit(X, y)
        elif kind == "oracle":
            model = InductionHeadRegressor.from_construction("ih2", p=5.0)
        else:
            X, y = make_induction_head_task("mixed", 16, 8, random_state=0)
            model = InductionDynamicsRegressor(max_epochs=1, batch_size=8, random_state=0).fit(
                X, y)
        _INDUCTION[kind] = model
    return _INDUCTION[kind]


@given(X=batches(n_features=1, max_points=9, min_points=3),
       kind=st.sampled_from(["head", "oracle", "dynamics"]), budget=st.sampled_from([None, 7]))
def test_induction_predict_is_the_forward_pass_or_refuses(X, kind, budget):
    model = _induction(kind)
    with mock.patch.object(core_estimator, "PREDICT_BUDGET", budget or core_estimator.
                           PREDICT_BUDGET):  # 7 values: one sequence per chunk
        predicted = _call(model, "predict", X)
    members = _as_float64(X)
    dtype = np.dtype(str(model._module_dtype()).removeprefix("torch."))
    peaks = [np.max(np.abs(m)) for m in members if m.size]
    refused = (len({m.shape for m in members}) > 1
               or not all(np.all(np.isfinite(m)) for m in members)
               or max(peaks, default=0) >= np.sqrt(np.finfo(dtype).max)
               or any(0 < p < np.finfo(dtype).tiny for p in peaks))
    if isinstance(predicted, FloatingPointError):
        assert "not finite" in str(predicted)
        return
    assert isinstance(predicted, Exception) == refused, predicted
    if refused:
        return
    assert np.all(np.isfinite(predicted))
    with torch.no_grad():
        forward = model._module()(torch.tensor(np.stack(members), dtype=model._module_dtype()))
    expected = forward.double().numpy().reshape(predicted.shape)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(predicted, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


# ------------------------------------------------------------------ the measured defects
X6 = make_spectrum_matrices(20, n_points=16, n_features=6, random_state=0)
S4 = make_sphere_matrices(32, n_points=8, n_features=4, random_state=0)


@pytest.mark.parametrize("estimator, X, expected", [
    # was 65° off, with score() = 1.0
    (ExactPCA(normalize_points=False), X6 * 1e-170, ExactPCA().fit(X6).predict(X6)),
    # was "the second moment XᵀX/n overflows float64"
    (ExactPCA(normalize_points=False), X6 * 1e300, ExactPCA().fit(X6).predict(X6)),
    # were "unit" vectors of norm 1e138, then zeros
    (PowerIterationPCA(normalize_points=False, random_state=0), X6 * 1e-150,
     PowerIterationPCA(random_state=0).fit(X6).predict(X6)),
    (PowerIterationPCA(normalize_points=False, random_state=0), X6 * 1e-160,
     PowerIterationPCA(random_state=0).fit(X6).predict(X6)),
    # was zeros: (I + ρΣ)v with ρ = 1e155 is the power method's Σv
    (PowerIterationPCA(shift=1e155, random_state=0), X6,
     PowerIterationPCA(random_state=0).fit(X6).predict(X6)),
    # were a raw LinAlgError (exact) and NaN (power)
    (ExactPCA(center=True), (X6 + 3) * 1.5e307, ExactPCA(center=True).fit(X6 + 3).predict(X6 + 3)),
    (PowerIterationPCA(center=True, random_state=0), (X6 + 3) * 1.5e307,
     PowerIterationPCA(center=True, random_state=0).fit(X6 + 3).predict(X6 + 3)),
    # points whose norm exceeds float64 (1.5e308 √2) were divided by inf: zero points
    (ExactPCA(), S4 * 1.5e308, ExactPCA().fit(S4).predict(S4)),
], ids=["exact-1e-170", "exact-1e300", "power-1e-150", "power-1e-160", "shift-1e155",
        "exact-center-1e307", "power-center-1e307", "norm-beyond-float64"])
def test_extreme_scales_give_the_answer_of_ordinary_ones(estimator, X, expected):
    predicted = estimator.fit(X).predict(X)
    if isinstance(estimator, ExactPCA):  # any vector of a tied top eigenspace is exact
        reference = X6 + 3 if estimator.center else X6 if len(X) == len(X6) else S4
        np.testing.assert_allclose(angular_error(reference, predicted, center=estimator.center),
                                   0.0, atol=1e-9)
        assert estimator.score(X) == pytest.approx(1.0, abs=1e-12)
    else:
        np.testing.assert_allclose(predicted, expected, atol=1e-9)


def test_score_is_scale_invariant_so_a_wrong_answer_scores_badly():
    rough = PowerIterationPCA(n_iter=1, normalize_points=False, random_state=0)
    ordinary = rough.fit(X6).score(X6)
    assert ordinary < 0.99
    for scale in (1e-170, 1e-300, 1e300):
        assert rough.fit(X6 * scale).score(X6 * scale) == pytest.approx(ordinary, abs=1e-12)


def test_points_equal_to_their_mean_have_no_direction():  # found by hypothesis
    identical = np.tile(np.array([[0.34558419, 0.82161814, 0.33043708]]), (1, 6, 1))
    with pytest.raises(ValueError, match="zero-norm point.*after centering"):
        ExactPCA(center=True).fit(identical)
    with pytest.raises(ValueError, match="all-zero matrix.*after centering"):
        PowerIterationPCA(center=True, normalize_points=False).fit(identical)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [1e-13, 1e-19, 1e-30])
def test_looped_tiny_raw_points_are_normalized_by_ln(dtype, scale):
    """Loop 1 on points of norm s moves v by ρs²Σv (nothing), LN makes them unit, and the
    other loops are the shifted power method: was 9.9° (float64) to 89.9° (float32) off."""
    model = _looped(4, dtype, False).with_weights(
        *(a.numpy() for a in power_method_weights(4, 1.0, 3.0))).set_params(n_loops=12)
    expected = PowerIterationPCA(11, shift=3.0, random_state=0).fit(S4).predict(S4)
    atol = 1e-9 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(model.predict(S4 * scale), expected, atol=atol)


@pytest.mark.parametrize("scale", [1e15, 1e18])
def test_looped_float32_large_raw_points_with_ln(scale):  # was "output is zero ... without LN"
    weights = [a.numpy() for a in power_method_weights(4, 1.0, 3.0)]
    single = _looped(4, "float32", False).with_weights(*weights).set_params(n_loops=12)
    double = _looped(4, "float64", False).with_weights(*weights).set_params(n_loops=12)
    np.testing.assert_allclose(single.predict(S4 * scale), double.predict(S4 * scale), atol=1e-4)


def test_looped_out_of_range_raw_points_and_overflows_say_why():
    model = _looped(4, "float32", False)
    with pytest.raises(ValueError, match="overflows torch.float32, the model's dtype.*rescale"):
        model.predict(S4 * 1e20)
    with pytest.raises(ValueError, match="too small for torch.float32.*dtype='float64'"):
        model.predict(S4 * 1e-40)
    huge = model.with_weights(*(a.numpy() for a in power_method_weights(4, 1e20, 1e20)))
    with pytest.raises(FloatingPointError, match="update .* overflows torch.float32"):
        huge.set_params(normalize_points=True).predict(S4)
    X = make_sphere_matrices(8, n_points=5, n_features=4, random_state=0)
    no_ln = LoopedTransformerPCA(normalization=None, objective="layerwise", target="unnormalized",
                                 max_epochs=1, random_state=0).fit(X)
    no_ln = no_ln.with_weights(*(a.numpy() for a in power_method_weights(4, 10.0, 10.0)))
    with pytest.raises(FloatingPointError, match="without LN its norm grows"):
        no_ln.set_params(n_loops=200).predict(S4)


def test_point_deflation_of_small_raw_points():  # was "rank < n_components" at 1e-10
    model = _looped(4, "float64", False).with_weights(
        *(a.numpy() for a in power_method_weights(4, 1.0, 30.0)))
    components = model.set_params(n_components=2, deflation="points").predict(S4 * 1e-10)
    np.testing.assert_allclose(components @ components.transpose(0, 2, 1),
                               np.broadcast_to(np.eye(2), (32, 2, 2)), atol=1e-9)


def test_metrics_at_extreme_scales():
    y = ExactPCA().fit(X6).predict(X6)
    for scale in (1e200, 1e-200):
        np.testing.assert_allclose(angular_error(X6, y * scale), 0.0, atol=1e-10)  # was 45°
    noisy = y + 1e-3 * np.eye(6)[0]
    np.testing.assert_allclose(subspace_distance(X6, noisy * 1e-200),  # was 0
                               subspace_distance(X6, noisy) * 1e-200, rtol=1e-12)
    tiny = leading_subspace(X6 * 1e-200, normalize_points=False)  # was NaN
    np.testing.assert_allclose(tiny.eigengap_ratio,
                               leading_subspace(X6, normalize_points=False).eigengap_ratio)
    with pytest.raises(ValueError, match="NaN or infinity"):
        angular_error(X6, np.full_like(y, np.nan))


def test_induction_inputs_beyond_the_dtype_raise_a_clear_error():
    model = _induction("head")
    X, _ = make_induction_head_task("ih2", 4, 6, 1, random_state=1)
    with pytest.raises(ValueError, match="whose squares"):  # was a raw OverflowError
        model.predict(X * 1e200)
    with pytest.raises(ValueError, match="smallest normal number"):  # was read as zeros
        model.predict(X * 1e-200)
