"""Mechanism scores (previous-token, induction, duplicate-token), InductionScore, and the
attention and head-score Displays, checked against their definitions on hand-built models."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from skloop import InductionDynamicsRegressor, InductionHeadRegressor
from skloop.datasets import make_induction_head_task, make_repeated_tokens
from skloop.induction import (
    InductionScore,
    duplicate_token_scores,
    induction_scores,
    previous_token_scores,
)
from skloop.plotting import AttentionPatternDisplay, HeadScoresDisplay

# A sharp similarity (W* = 10 I, Gaussian d = 4): the layer-2 head attends to one key.
W_STAR = 10 * np.eye(4)
ORACLE = InductionHeadRegressor.from_construction("ih2", W_star=W_STAR, p=20.0)
REPEATED = make_repeated_tokens(300, 6, n_features=4, random_state=0)  # R = 6, L = 12


def _layer2_weights(X, query, key):
    """Definition of the hand-built layer 2 (Thm 3.1): softmax over keys j = 1..query-1 of
    x_queryᵀ W* x_{j-1}; the weight on ``key`` (0 on key 0, masked: no previous token)."""
    if key < 1:
        return np.zeros(len(X))
    scores = np.einsum("nd,de,nje->nj", X[:, query], W_STAR, X[:, : query - 1])
    weights = np.exp(scores - scores.max(1, keepdims=True))
    return (weights / weights.sum(1, keepdims=True))[:, key - 1]


def test_scores_of_the_hand_built_model_match_their_definitions():
    R = 6
    queries = range(R, 2 * R)
    induction = induction_scores(ORACLE, REPEATED)
    duplicate = duplicate_token_scores(ORACLE, REPEATED)
    previous = previous_token_scores(ORACLE, REPEATED)
    assert induction.shape == duplicate.shape == previous.shape == (2, 1)
    expected = np.mean([_layer2_weights(REPEATED, t, t - R + 1) for t in queries])
    assert induction[1, 0] == pytest.approx(expected, abs=1e-9)
    assert induction[1, 0] > 0.7  # key t-R+1 holds y = x_{t-R} = x_t: the largest score
    expected = np.mean([_layer2_weights(REPEATED, t, t - R) for t in queries])
    assert duplicate[1, 0] == pytest.approx(expected, abs=1e-9) and duplicate[1, 0] < 0.05
    assert previous[0, 0] > 1 - 1e-6 and induction[0, 0] < 1e-6  # layer 1: previous token
    # Against the cache: the same numbers from the patterns.
    pattern = ORACLE.run_with_cache(REPEATED, names="blocks.1.attn.hook_pattern")["pattern", 1]
    t = np.arange(R, 2 * R)
    assert pattern[:, 0, t, t - R + 1].mean() == pytest.approx(induction[1, 0])


def test_scores_need_repeated_blocks_and_pad_missing_heads():
    with pytest.raises(ValueError, match="repeated twice"):
        induction_scores(ORACLE, REPEATED[:, :-1])
    Xm, ym = make_induction_head_task("mixed", 200, 12, random_state=0)
    model = InductionDynamicsRegressor(max_epochs=1, batch_size=50, random_state=0).fit(Xm, ym)
    scores = previous_token_scores(model, Xm)
    assert scores.shape == (2, 2) and np.isnan(scores[0, 1])
    assert scores[0, 0] == 1.0  # the oracle first layer: y_s = x_{s-1} exactly
    # Layer 2 reads the last query: its RPE head puts softmax(−p (L−1−s)) on s = L−1.
    rpe = model.attention_maps(Xm[:1])[1][0, 0, 0]
    assert scores[1, 0] == pytest.approx(rpe[-2], rel=1e-5)
    repeated = make_repeated_tokens(50, 6, random_state=0)
    assert np.isfinite(induction_scores(model, repeated)[1]).all()


def test_induction_score_is_a_documented_object_that_reads_like_the_old_dict():
    score = ORACLE.induction_score(REPEATED)
    assert isinstance(score, InductionScore)
    assert score.attention == pytest.approx(induction_scores(ORACLE, REPEATED)[1])
    assert score["attention"] is score.attention and score.error_ratio < 0.5
    assert set(score.to_dict()) == {"attention", "copy1_error", "copy2_error", "error_ratio"}
    assert dict(score).keys() == score.to_dict().keys()
    mixed = InductionHeadRegressor.from_construction("ih2", p=20.0)
    mixed.n_outputs_ = 2  # read-out width differs from the tokens: no copy errors
    partial = mixed.induction_score(make_repeated_tokens(20, 4, tokens="boolean",
                                                         random_state=0))
    assert partial.copy1_error is None and list(partial) == ["attention"]


def test_attention_pattern_display_draws_the_cached_patterns():
    display = AttentionPatternDisplay.from_estimator(ORACLE, REPEATED, sequence=3)
    cache = ORACLE.run_with_cache(REPEATED[3:4], names=lambda n: n.endswith("hook_pattern"))
    assert len(display.images_) == 2 and len(display.images_[0]) == 1
    np.testing.assert_array_equal(display.images_[1][0].get_array(), cache["pattern", 1][0, 0])
    assert display.axes_.shape == (2, 1)
    plt.close("all")
    X = make_induction_head_task("ih2", 3, 6, tokens="boolean", random_state=0)[0]
    boolean = InductionHeadRegressor.from_construction("ih2", p=20.0)
    display = AttentionPatternDisplay.from_estimator(boolean, X)
    labels = [t.get_text() for t in display.axes_[0, 0].get_xticklabels()]
    assert labels == [f"{v:+.2g}" for v in X[0, :, 0]]  # token values on the axes
    plt.close("all")


def test_head_scores_display_shows_the_scores():
    display = HeadScoresDisplay.from_estimator(ORACLE, REPEATED, score="induction")
    np.testing.assert_allclose(display.scores, induction_scores(ORACLE, REPEATED))
    assert len(display.texts_) == 2 and display.ax_.get_title() == "induction score"
    with pytest.raises(ValueError, match="score must be one of"):
        HeadScoresDisplay.from_estimator(ORACLE, REPEATED, score="copying")
    plt.close("all")
