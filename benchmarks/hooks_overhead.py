"""What the named hook points cost when unused: fit and predict of both induction models with
their forward passes as they are (hook points checked) and with hook-free reference forwards
(the same arithmetic, no checks), measured side by side in one run, interleaved (the order
alternating), medians and minima (on a loaded machine the minimum is the steadier).

The reference forwards are swapped in for the timing only: the standard model's attention and
layer loop, and the 6-parameter model's ``forward``. Both variants must give identical
predictions (checked). A last row times a ``run_with_cache`` of one hook point, the cost of
hooks when used. Target: < 5% on fit and predict.

Usage: ``python benchmarks/hooks_overhead.py [--quick] [--repeats N]``.
"""

import argparse
import contextlib
import time

import numpy as np
import torch

from skloop import InductionDynamicsRegressor, InductionHeadRegressor
from skloop.datasets import make_induction_head_task
from skloop.experiments._report import markdown_table
from skloop.induction._model import ALiBiAttention, InductionTransformer, attention_mask
from skloop.induction._reparameterized import ReparameterizedInduction


def reference_attention(self, Z, mask, hooks=None, prefix=""):
    """ALiBiAttention.forward without hook points (full D × D heads)."""
    q, k, v = (torch.einsum("hkD,blD->bhlk", W, Z) for W in (self.W_Q, self.W_K, self.W_V))
    position = torch.arange(Z.shape[1], device=Z.device)
    bias = -self.slopes[:, None, None] * ((position[:, None] - position[None, :]) - 1)
    scores = (self.scale * (q @ k.transpose(-1, -2)) + bias).masked_fill(~mask, -1e9)
    weights = torch.softmax(scores, dim=-1) * mask.any(-1, keepdim=True)
    return (weights @ v).sum(dim=1) @ self.W_O.T, weights


def reference_states(self, X):
    """InductionTransformer.states without hook points (attention-only layers)."""
    Z = self.embed(X)
    yield Z, None
    for u, attention in enumerate(self.attention):
        key_start = self.key_start if u == len(self.attention) - 1 else 0
        update, weights = attention(Z, attention_mask(X.shape[1], self.causal, key_start))
        Z = Z + update if self.residual[u] else update
        yield Z, weights


def reference_forward(self, X):
    """ReparameterizedInduction.forward without the hook test."""
    return self._heads(X, self.previous_token(X))[2]


@contextlib.contextmanager
def reference_forwards():
    """The hook-free forwards in place of the hooked ones, for the block."""
    saved = [(ALiBiAttention, "forward", reference_attention),
             (InductionTransformer, "states", reference_states),
             (ReparameterizedInduction, "forward", reference_forward)]
    originals = [(cls, name, vars(cls)[name]) for cls, name, _ in saved]
    for cls, name, function in saved:
        setattr(cls, name, function)
    try:
        yield
    finally:
        for cls, name, function in originals:
            setattr(cls, name, function)


def _seconds(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 9)
    scale = 1 if args.quick else 4
    X, y = make_induction_head_task("ihn", 2000 * scale, 10, n_gram=4, tokens="boolean",
                                    random_state=0)
    Xm, ym = make_induction_head_task("mixed", 4000 * scale, 40, random_state=0)
    X_test = make_induction_head_task("ihn", 20000, 10, n_gram=4, tokens="boolean",
                                      random_state=1)[0]
    Xm_test = make_induction_head_task("mixed", 20000, 40, random_state=1)[0]
    models = {
        "standard (H=2, D=8, L=10, batch 100)": (
            InductionHeadRegressor(n_heads=2, d_model=8, max_epochs=2, random_state=0),
            X, y, X_test),
        "6-parameter (L=40, batch 1000)": (
            InductionDynamicsRegressor(max_epochs=8, random_state=0), Xm, ym, Xm_test),
    }
    rows = []
    for label, (model, X_fit, y_fit, X_predict) in models.items():
        times = {key: [] for key in ("fit_ref", "fit", "predict_ref", "predict", "cache")}
        model.fit(X_fit, y_fit)  # warm-up
        with reference_forwards():
            reference = model.predict(X_predict)
        np.testing.assert_array_equal(model.predict(X_predict), reference)
        for repeat in range(repeats):  # interleaved: load changes hit both variants alike
            for use_reference in (repeat % 2 == 0, repeat % 2 == 1):  # order alternates
                suffix = "_ref" if use_reference else ""
                with reference_forwards() if use_reference else contextlib.nullcontext():
                    times["fit" + suffix].append(_seconds(model.fit, X_fit, y_fit))
                    times["predict" + suffix].append(_seconds(model.predict, X_predict))
            times["cache"].append(_seconds(model.run_with_cache, X_predict,
                                           names="blocks.1.attn.hook_pattern"))
        for step, reference in (("fit", "fit_ref"), ("predict", "predict_ref"),
                                ("cache", "predict_ref")):
            hooked, plain = np.asarray(times[step]), np.asarray(times[reference])
            rows.append([label, "run_with_cache (1 name)" if step == "cache" else step,
                         1000 * np.median(plain), 1000 * np.median(hooked),
                         f"{100 * (np.median(hooked) / np.median(plain) - 1):+.1f}%",
                         f"{100 * (hooked.min() / plain.min() - 1):+.1f}%"])
    print(f"{repeats} interleaved runs each, one torch thread, float32.\n")
    print(markdown_table(["model", "step", "hook-free ms (median)", "with hook points ms",
                          "overhead (medians)", "overhead (minima)"], rows))


if __name__ == "__main__":
    main()
