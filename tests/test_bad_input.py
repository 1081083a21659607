"""Every bad input raises a clear ValueError/TypeError naming the problem, for every estimator,
and a failed call never changes what a fitted model predicts."""

import datetime

import numpy as np
import pytest
import scipy.sparse
import torch

from skloop import ExactPCA, InductionHeadRegressor, LoopedTransformerPCA, PowerIterationPCA
from skloop.datasets import make_induction_head_task, make_sphere_matrices

MATRICES = make_sphere_matrices(6, n_points=8, n_features=3, random_state=0)
SEQUENCES, TARGETS = make_induction_head_task("ih2", 12, 6, 1, random_state=0)


def _edit(X, index, value):
    X = X.copy()
    X[index] = value
    return X


def _common(good):
    """Bad X shared by all estimators (``good`` is a valid 3-D batch)."""
    n, L, d = good.shape
    return [
        ("nan", _edit(good, (1, 2, 0), np.nan), ValueError, "NaN"),
        ("inf", _edit(good, (1, 2, 0), np.inf), ValueError, "infinity"),
        ("-inf", _edit(good, (0, 0, 0), -np.inf), ValueError, "infinity"),
        ("empty batch", np.empty((0, L, d)), ValueError, "empty batch"),
        ("empty list", [], ValueError, "empty batch"),
        ("no points", np.empty((2, 0, d)), ValueError, "0 points"),
        ("no features", np.empty((2, L, 0)), ValueError, "0 features"),
        ("1-D", np.ones(5), ValueError, "3-D array"),
        ("2-D", good[0], ValueError, r"X\[np.newaxis\]"),
        ("4-D", good[None], ValueError, "3-D array"),
        ("complex", good.astype(complex), TypeError, "complex"),
        ("strings", np.full((2, L, d), "a"), TypeError, "strings"),
        ("objects", np.array([[[object()] * d] * L] * 2), TypeError, "non-numeric"),
        ("None", None, TypeError, "3-D array"),
        ("scalar", 3.0, TypeError, "3-D array"),
        ("string", "abc", TypeError, "3-D array"),
        ("dict", {"X": good}, TypeError, "3-D array"),
        ("ragged features", [np.ones((4, d)), np.ones((4, d + 1))], ValueError,
         "different numbers"),
        ("ragged 1-D member", [np.ones((4, d)), np.ones(d)], ValueError, r"X\[1\] must be"),
        ("ragged nan member", [np.ones((4, d)), np.full((5, d), np.nan)], ValueError, "NaN"),
        ("wrong feature count", np.ones((2, L, d + 2)), ValueError, "features"),
        # What numpy would misread or fails on with a raw message.
        ("list of sparse", [scipy.sparse.csr_matrix(m) for m in good], TypeError,
         r"X\[0\] is a scipy sparse csr_matrix.*toarray"),
        ("sparse", scipy.sparse.csr_array(good[0]), TypeError, r"sparse csr_array.*X.toarray\(\)"),
        ("tensor requiring grad", torch.tensor(good, requires_grad=True), TypeError,
         r"requires grad; pass X.detach\(\)"),
        ("tensors requiring grad", [torch.tensor(m, requires_grad=True) for m in good],
         TypeError, r"X\[0\] is a torch tensor that requires grad"),
        ("ragged rows", [good[0].tolist(), good[1].tolist()[:-1] + [[1.0] * (d - 1)]],
         ValueError, rf"X\[1\] has rows of different lengths \(rows of \[{d - 1}, {d}\] values\)"),
        ("empty member", [good[0], good[1][:0], good[2]], ValueError,
         rf"X\[1\] has 0 points \(shape \(0, {d}\)\)"),
        ("featureless member", [good[0], good[1][:, :0]], ValueError, r"X\[1\] has 0 features"),
        ("datetime64", np.zeros(good.shape, dtype="datetime64[s]"), TypeError,
         r"datetimes \(datetime64\[s\]\).*convert"),
        ("timedelta64", np.zeros(good.shape, dtype="timedelta64[s]"), TypeError, "time spans"),
        ("python datetimes", _edit(good.astype(object), (0, 0, 0), datetime.datetime(2020, 1, 1)),
         TypeError, r"datetimes \(datetime\)"),
        ("None value", _edit(good.astype(object), (0, 1, 0), None), ValueError,
         r"missing values \(None\)"),
        ("masked", np.ma.masked_greater(good, 0.5), ValueError, r"masked array with \d+ masked"),
        ("None member", [good[0], None], TypeError, r"X\[1\] must be a 2-D matrix.*NoneType"),
        ("iterator", iter(good), TypeError, r"iterator \(\w+\); pass a list"),
        ("huge Python int", _edit(good.astype(object), (0, 0, 0), 10**400), ValueError,
         "too large for float64"),
        ("numeric strings", _edit(good.astype(object), (0, 0, 0), "1.5"), TypeError, "strings"),
    ]


PCA_EXTRA = [("zero-norm point", _edit(MATRICES, (2, 3), 0.0), ValueError, "zero-norm point")]
SEQUENCE_EXTRA = [
    ("ragged sequences", [SEQUENCES[0], SEQUENCES[1, :4]], ValueError, "equal length"),
    ("overflowing float32", SEQUENCES * 1e30, ValueError, "overflow float32"),
]

PCA_ESTIMATORS = [ExactPCA(), PowerIterationPCA(3, random_state=0),
                  LoopedTransformerPCA(max_epochs=1, random_state=0)]
CASES = [(est, MATRICES, None, bad) for est in PCA_ESTIMATORS
         for bad in _common(MATRICES) + PCA_EXTRA]
CASES += [(InductionHeadRegressor(max_epochs=1, random_state=0), SEQUENCES, TARGETS, bad)
          for bad in _common(SEQUENCES) + SEQUENCE_EXTRA]


def _id(case):
    estimator, _, _, bad = case
    return f"{type(estimator).__name__}-{bad[0]}"


@pytest.mark.parametrize("estimator, good, y, bad", CASES, ids=[_id(c) for c in CASES])
def test_bad_x_at_fit_and_predict_leaves_the_model_intact(estimator, good, y, bad):
    _, X, error, message = bad
    fitted = estimator.fit(good, y)
    before = fitted.predict(good)
    if bad[0] != "wrong feature count":  # a valid batch at fit time
        with pytest.raises(error, match=message):
            estimator.fit(X, y)
        fitted = estimator.fit(good, y)
    with pytest.raises(error, match=message):
        fitted.predict(X)
    np.testing.assert_array_equal(fitted.predict(good), before)


def test_pandas_frames_with_missing_values_name_them():
    pd = pytest.importorskip("pandas")
    frames = [pd.DataFrame(m).astype("Float64") for m in MATRICES]
    frames[2].iloc[1, 0] = pd.NA
    for estimator in PCA_ESTIMATORS[:2]:
        with pytest.raises(ValueError, match=r"X\[2\] holds missing values \(pd.NA\)"):
            estimator.fit(frames)
    dates = [pd.DataFrame({"t": pd.date_range("2020", periods=8), "x": m[:, 0]}) for m in MATRICES]
    with pytest.raises(TypeError, match=r"X\[0\] holds datetimes \(Timestamp\)"):
        ExactPCA().fit(dates)
    assert ExactPCA().fit([pd.DataFrame(m) for m in MATRICES]).predict(MATRICES).shape == (6, 3)


def test_at_least_twenty_bad_inputs_per_estimator():
    counts = {}
    for estimator, *_ in CASES:
        counts[type(estimator).__name__] = counts.get(type(estimator).__name__, 0) + 1
    assert min(counts.values()) >= 20, counts


BAD_Y = [
    ("short y", TARGETS[:5], "y must have shape"),
    ("3-D y", TARGETS[:, :, None], "y must have shape|dim 3"),
    ("nan y", np.full_like(TARGETS, np.nan), "NaN"),
    ("inf y", np.full_like(TARGETS, np.inf), "infinity"),
    ("string y", np.full(TARGETS.shape, "a"), "could not convert|strings|numeric"),
    ("complex y", TARGETS.astype(complex), "[Cc]omplex"),
    ("missing y", None, "y"),
]


@pytest.mark.parametrize("label, y, message", BAD_Y, ids=[b[0] for b in BAD_Y])
def test_bad_targets_for_the_regressor(label, y, message):
    with pytest.raises((ValueError, TypeError), match=message):
        InductionHeadRegressor(max_epochs=1).fit(SEQUENCES, y)


def test_training_needs_as_many_points_as_features():
    few = make_sphere_matrices(10, n_points=3, n_features=5, random_state=0)
    with pytest.raises(ValueError, match="n_points >= n_features"):
        LoopedTransformerPCA(max_epochs=1).fit(few)
    # ... while the exact baselines and predict accept them (Assumption 4.4).
    assert ExactPCA().fit(few).predict(few).shape == (10, 5)
    model = LoopedTransformerPCA(max_epochs=1, random_state=0).fit(
        make_sphere_matrices(50, n_points=8, n_features=5, random_state=0))
    assert model.predict(few).shape == (10, 5)


def test_huge_values_are_exact_or_raise():
    huge = MATRICES * 1e300
    expected = ExactPCA().fit(MATRICES).predict(MATRICES)
    for estimator in (ExactPCA(), ExactPCA(normalize_points=False)):  # scaled internally
        np.testing.assert_allclose(estimator.fit(huge).predict(huge), expected, atol=1e-12)
    # The looped model computes on the raw points in its dtype: their XᵀX must fit it.
    with pytest.raises(ValueError, match="overflows torch.float32, the model's dtype"):
        LoopedTransformerPCA(normalize_points=False, max_epochs=1).fit(huge)


def test_large_inputs_never_give_silent_nan():
    model = InductionHeadRegressor(max_epochs=1, random_state=0).fit(SEQUENCES, TARGETS)
    for scale in (1e10, 1e15, 1e18, 1e19, 1e25):
        try:
            predictions = model.predict(SEQUENCES * scale)
        except (FloatingPointError, ValueError) as error:
            assert "float32" in str(error)
        else:
            assert np.all(np.isfinite(predictions)), scale


def test_divergence_stops_training_with_a_clear_message():
    with pytest.raises(FloatingPointError, match="diverged.*lr"):
        InductionHeadRegressor(optimizer="sgd", lr=1e8, max_epochs=3, init_scale=1.0,
                               random_state=0).fit(SEQUENCES * 10, TARGETS)
