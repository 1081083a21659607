"""
Quickstart: a transformer that learns an induction head
=======================================================

``InductionHeadRegressor`` is the induction-head paper's two-layer multi-head transformer with
learnable ALiBi slopes. Trained by regression on the IH_2 target (the token that followed the
previous occurrence of the current token, softly), its first layer becomes a previous-token
head and its second layer an induction head.
"""

import numpy as np

from skloop import InductionHeadRegressor
from skloop.datasets import make_induction_head_task, make_repeated_tokens
from skloop.induction import uniform_attention_baseline

X, y = make_induction_head_task("ih2", 10000, seq_len=10, tokens="boolean", random_state=0)
X_test, y_test = make_induction_head_task("ih2", 2000, seq_len=10, tokens="boolean",
                                          random_state=1)

# %%
# Two heads of width 2, Adam, about 10 seconds on a CPU.
model = InductionHeadRegressor(n_heads=2, d_model=2, max_epochs=20, random_state=0).fit(X, y)
loss = 0.5 * np.mean((model.predict(X_test) - y_test) ** 2)
baseline = 0.5 * np.mean((uniform_attention_baseline(X_test, 2) - y_test) ** 2)
r2 = model.score(X_test, y_test)
print(f"test loss {loss:.4f} vs uniform attention {baseline:.4f}; R² {r2:.3f}")

# %%
# The mechanism: lag-1 attention of the layer-1 heads, and behaviour on repeated sequences.
print("previous-token score per head:", model.previous_token_score(X_test[:500]).round(3))
print("slopes:", model.net_.module_.attention[0].slopes.detach().numpy().round(2))
repeated = make_repeated_tokens(300, 5, tokens="boolean", random_state=2)
print("induction score:", {k: np.round(v, 3) for k, v in model.induction_score(repeated).items()})

# %%
# The hand-built transformer of Theorem 3.1 is exact up to e^{-p}.
oracle = InductionHeadRegressor.from_construction("ih2", p=20.0)
print("oracle mean |error|:", np.abs(oracle.predict(X_test) - y_test).mean())
