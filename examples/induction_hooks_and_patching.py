"""
Hooks, ablation and activation patching: finding the induction circuit
======================================================================

Every intermediate tensor of the induction models has a TransformerLens-style name
(``model.hook_names()``): the embedding, per layer the queries, keys, values, attention scores
and pattern, each head's output, the attention output and the residual stream. Here a
two-layer, two-head transformer is trained on the IH_2 target; head scores find its
previous-token head (layer 1) and its induction head (layer 2), ablations show what each
contributes to the loss, activation patching locates where the current token enters, and two
Displays draw the patterns and the scores.
"""

import matplotlib.pyplot as plt
import numpy as np

from skloop import InductionHeadRegressor
from skloop.datasets import make_induction_head_task, make_repeated_tokens
from skloop.induction import induction_scores, previous_token_scores, uniform_attention_baseline
from skloop.plotting import AttentionPatternDisplay, HeadScoresDisplay

X, y = make_induction_head_task("ih2", 10000, seq_len=10, tokens="boolean", random_state=0)
X_test, y_test = make_induction_head_task("ih2", 2000, seq_len=10, tokens="boolean",
                                          random_state=1)
# 2 000 Adam steps: about 10 seconds on a CPU.
model = InductionHeadRegressor(n_heads=2, d_model=2, max_epochs=20, random_state=0).fit(X, y)
uniform = 0.5 * np.mean((uniform_attention_baseline(X_test, 2) - y_test) ** 2)
loss = 0.5 * np.mean((model.predict(X_test) - y_test) ** 2)
print(f"test loss {loss:.4f}; uniform attention {uniform:.4f}")

# %%
# Which heads do what? The previous-token score (attention on key t − 1) on any sequences, the
# induction score (attention on the token after the previous occurrence of the current one)
# on random blocks repeated twice. One score per layer (rows) and head (columns).
repeated = make_repeated_tokens(500, 5, tokens="boolean", random_state=2)
previous = previous_token_scores(model, X_test[:500])
induction = induction_scores(model, repeated)
print("previous-token scores:\n", previous.round(3))
print("induction scores:\n", induction.round(3))
previous_head = (0, int(np.argmax(previous[0])))

# %%
# Ablate each head (replace its output by zero, or by its mean over the test set) and see the
# loss change: the previous-token head and the induction head carry the task.
for layer in range(2):
    for head in range(2):
        zero = model.ablate_heads(X_test, y_test, (layer, head))
        mean = model.ablate_heads(X_test, y_test, (layer, head), method="mean")
        print(f"ablating head {head} of layer {layer}: loss {zero.loss:.4f} (zero), "
              f"{mean.loss:.4f} (mean); change {zero.loss_change:+.4f}")

# %%
# Activation patching. Corrupt the input by flipping the last token (the query of the
# induction head), then copy the clean layer-1 residual stream back in at one position at a
# time, measuring the loss against the clean targets: only the last position restores it.
corrupted = X_test.copy()
corrupted[:, -1] *= -1
for position in (0, 5, 8, 9):
    patched = model.patch_activations(corrupted, X_test, y_test,
                                      names="blocks.0.hook_resid_post", positions=position)
    print(f"patch position {position}: loss {patched.loss:.4f} "
          f"(corrupted {patched.reference_loss:.4f})")
# Patching undoes an ablation too: zero the previous-token head, then put it back.
restored = model.patch_activations(X_test, X_test, y_test, heads=previous_head,
                                   hooks=model.ablation_hooks(previous_head))
print(f"ablated {restored.reference_loss:.4f} -> patched back {restored.loss:.4f}")

# %%
# The cache holds any activation as numpy, only the names asked for; the Displays draw the
# patterns of one sequence (token values on the axes) and the head scores.
cache = model.run_with_cache(X_test[:100], names=lambda name: name.endswith("hook_pattern"))
print(cache)
AttentionPatternDisplay.from_estimator(model, X_test, sequence=0)
HeadScoresDisplay.from_estimator(model, repeated, score="induction")
plt.show()
