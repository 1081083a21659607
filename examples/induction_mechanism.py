"""
Inside an induction head: attention maps, scores and the linear probe
=====================================================================

Interpretability is part of the estimator's API: ``attention_maps`` returns every layer's
attention weights, ``previous_token_score`` and ``induction_score`` summarise them, and
``probe`` (the paper's Fig 6) measures how well the layer-1 outputs linearly encode each of the
last ``n`` tokens. Here the hand-built IH_4 transformer (exact previous-token heads) is compared
with a briefly trained one.
"""

import numpy as np

from skloop import InductionHeadRegressor
from skloop.datasets import make_induction_head_task, make_repeated_tokens

X, y = make_induction_head_task("ihn", 10000, 10, n_gram=4, tokens="boolean", random_state=0)
X_test = make_induction_head_task("ihn", 1000, 10, n_gram=4, tokens="boolean",
                                  random_state=1)[0]

models = {
    "hand-built (Thm 3.3, eps=0.01)": InductionHeadRegressor.from_construction(
        "ihn", n_gram=4, eps=0.01),
    "trained (H = D = 8, 1k Adam steps)": InductionHeadRegressor(
        n_heads=8, d_model=8, max_epochs=10, random_state=0).fit(X, y),
}
repeated = make_repeated_tokens(300, 5, tokens="boolean", random_state=2)
for name, model in models.items():
    maps = model.attention_maps(X_test[:200])
    print(f"{name}: attention shapes {[m.shape for m in maps]}")
    last_query = maps[0][:, :, -1, :].mean(axis=0)  # layer 1, last position, mean over sequences
    print("  layer-1 attention of the last token to lags 1..4, per head:")
    for h, row in enumerate(last_query[:, -2:-6:-1]):
        print(f"    head {h}: {np.round(row, 3)}")
    probe = model.probe(X_test, n_gram=4)
    lag_mse = np.round(probe["lag_mse"], 3)
    print(f"  probe: FVU {probe['fvu']:.3f}, per-lag MSE (lag 3..0) {lag_mse}")
    scores = model.induction_score(repeated)
    print(f"  induction attention per head {np.round(scores['attention'], 3)}")
