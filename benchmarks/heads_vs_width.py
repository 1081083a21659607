"""Need for heads and width (the paper's Figs 2/7) at CPU scale.

Boolean IH_4 (n = 4, d = 1, L = 10, W* = I), attention-only two-layer ALiBi transformers with
H = D ∈ {2, 4, 8}, Adam (lr 2e-3, 4× the paper's 5e-4, batch 100) on 100 000 training
sequences; test loss on 4 000 fixed sequences every 1 000 iterations, next to the
uniform-attention baseline (0.136) and the zero predictor (0.2255); at the end, the Fig 6
linear probe of layer-1 outputs (per-lag residual MSE, lag 3..0).
The paper trains 200 000 iterations (loss → 0 for H = D = 8); that is beyond a CPU budget, so
the claims checked here are relative: H = D = 8 ends below H = D = 2 and below the baseline.

Usage: ``python benchmarks/heads_vs_width.py [--quick] [--iterations N]``.
"""

import argparse
import time

import numpy as np
import torch
from skorch.callbacks import Callback

from skloop import InductionHeadRegressor
from skloop.datasets import make_induction_head_task
from skloop.experiments._report import markdown_table
from skloop.induction import uniform_attention_baseline


class TestLoss(Callback):
    """Record ½MSE on fixed test sequences after every epoch."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def on_epoch_end(self, net, **kwargs):
        with torch.no_grad():
            pred = net.module_(torch.from_numpy(self.X).float().to(net.device)).cpu().numpy()
        net.history.record("test_loss", float(0.5 * np.mean(np.sum((pred - self.y) ** 2, 1))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="2 000 iterations per model")
    parser.add_argument("--iterations", type=int, default=None, help="iterations per model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    iterations = args.iterations or (2000 if args.quick else 6000)
    per_epoch = 1000
    X, y = make_induction_head_task("ihn", per_epoch * 100, 10, n_gram=4, tokens="boolean",
                                    random_state=args.seed)
    X_test, y_test = make_induction_head_task("ihn", 4000, 10, n_gram=4, tokens="boolean",
                                              random_state=args.seed + 1)
    uniform = 0.5 * np.mean((y_test - uniform_attention_baseline(X_test, 4)) ** 2)
    zero = 0.5 * np.mean(y_test**2)
    curves, probes, times = {}, {}, {}
    for width in (2, 4, 8):
        start = time.perf_counter()
        model = InductionHeadRegressor(
            n_heads=width, d_model=width, max_epochs=max(1, iterations // per_epoch),
            callbacks=[TestLoss(X_test, y_test)], random_state=args.seed,
        ).fit(X, y)
        times[width] = time.perf_counter() - start
        curves[width] = model.history_[:, "test_loss"]
        probes[width] = model.probe(X_test[:1000], 4)
    epochs = range(len(curves[2]))
    print(f"Boolean IH_4, L = 10; uniform-attention baseline {uniform:.4f}, zero predictor "
          f"{zero:.4f}; Adam lr 2e-3, batch 100.\n")
    print(markdown_table(
        ["iterations", "H = D = 2", "H = D = 4", "H = D = 8"],
        [[(e + 1) * per_epoch, *(curves[w][e] for w in (2, 4, 8))] for e in epochs],
    ))
    print()
    print(markdown_table(
        ["H = D", "final test loss", "probe dist", "probe FVU", "lag-3 MSE", "lag-2 MSE",
         "lag-1 MSE", "lag-0 MSE", "ms / iteration"],
        [[w, curves[w][-1], probes[w]["dist"], probes[w]["fvu"], *probes[w]["lag_mse"],
          1000 * times[w] / (len(curves[w]) * per_epoch)] for w in (2, 4, 8)],
    ))


if __name__ == "__main__":
    main()
