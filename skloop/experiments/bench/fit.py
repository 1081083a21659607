"""Training speed: skloop's skorch-based fit against a hand-written torch loop, side by side.

Samples (matrices or sequences) per second of ``LoopedTransformerPCA.fit`` (one LN layer, the
layerwise objective) and ``InductionHeadRegressor.fit`` against a plain loop over pre-made tensor
batches with the same module, loss, optimizer and batch size; then the wall time the paper's
Fig 2 budget (10⁴ matrices × 2000 epochs, d = 16, n = 32, batch 128) would take at the
measured rate. ``--compile`` adds LoopedTransformerPCA(compile=True) against the hand-written
loop with its loss step under ``torch.compile`` (compilation excluded from the timings).

Usage: ``skloop bench fit [--quick] [--dtype float32|float64] [--compile]`` or
``python benchmarks/fit.py ...``; one torch thread.
"""

import time

import torch

from skloop import InductionHeadRegressor, LoopedTransformerPCA
from skloop.cli import benchmark_parser
from skloop.datasets import make_induction_head_task, make_sphere_matrices
from skloop.experiments._report import markdown_table
from skloop.induction._model import InductionTransformer, initialize_weights
from skloop.pca._model import LoopedLinearAttention
from skloop.pca._objectives import layerwise_loss, one_step_target


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def hand_written_pca(X, batch_size, epochs, lr, device="cpu", dtype=torch.float32,
                     compile=False):
    """The same layer, loss and SGD as LoopedTransformerPCA(objective="layerwise").

    With ``compile``, the loss step runs under ``torch.compile``; returns the seconds of the
    timed epochs and of the untimed first (compiling) epoch.
    """
    d = X.shape[2]
    module = LoopedLinearAttention(d, dtype=dtype).to(device)
    optimizer = torch.optim.SGD(module.parameters(), lr=lr)
    Xt = torch.from_numpy(X).to(device, dtype)
    n = torch.full((len(X),), X.shape[1], device=device)
    v = torch.randn(len(X), d, dtype=dtype, device=device)
    v /= v.norm(dim=1, keepdim=True)
    batches = [(Xt[i:i + batch_size], n[i:i + batch_size], v[i:i + batch_size])
               for i in range(0, len(X), batch_size)]

    def step_loss(xb, nb, vb):
        return layerwise_loss(module(xb, nb, vb, n_loops=1), one_step_target(xb, nb, vb))

    loss_fn = torch.compile(step_loss) if compile else step_loss

    def run(n_epochs):
        start = time.perf_counter()
        for _ in range(n_epochs):
            for xb, nb, vb in batches:
                optimizer.zero_grad()
                loss_fn(xb, nb, vb).backward()
                optimizer.step()
        _sync(device)
        return time.perf_counter() - start

    warmup = run(1) if compile else 0.0
    return run(epochs), warmup


def hand_written_induction(X, y, batch_size, epochs, lr, device="cpu"):
    """The same transformer, ½MSE and Adam as InductionHeadRegressor()."""
    module = InductionTransformer(1, y.shape[1], 8, n_heads=(2, 2))
    initialize_weights(module, "auto", torch.Generator().manual_seed(0))
    module = module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    Xt = torch.tensor(X, dtype=torch.float32, device=device)
    yt = torch.tensor(y, dtype=torch.float32, device=device)
    batches = [(Xt[i:i + batch_size], yt[i:i + batch_size])
               for i in range(0, len(X), batch_size)]
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in batches:
            optimizer.zero_grad()
            loss = 0.5 * ((module(xb) - yb) ** 2).sum(-1).mean()
            loss.backward()
            optimizer.step()
    _sync(device)
    return time.perf_counter() - start


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    """Parse the command-line arguments ``argv`` (``skloop bench fit --help``) and run."""
    run(benchmark_parser("fit").parse_args(argv))


def run(args):
    """Run the benchmark with parsed arguments and print its tables."""
    device, dtype = args.device, getattr(torch, args.dtype)
    torch.set_num_threads(1)
    epochs = 2 if args.quick else 5
    X = make_sphere_matrices(4096, 32, 16, random_state=0)
    S, y = make_induction_head_task("ih2", 4096, 10, tokens="boolean", random_state=0)
    # Warm-up: the first fit pays one-off imports (torch optimizers, skorch) of ~1.5 s.
    LoopedTransformerPCA(max_epochs=1, random_state=0, device=device,
                         dtype=args.dtype).fit(X[:64])
    InductionHeadRegressor(max_epochs=1, random_state=0, device=device).fit(S[:64], y[:64])
    hand_written_pca(X[:64], 16, 1, 0.1, device, dtype)
    hand_written_induction(S[:64], y[:64], 16, 1, 2e-3, device)
    rows, rates, compiled_rates = [], {}, {}
    for batch in (16, 128, 1024):
        n_samples = len(X) * epochs
        pca = LoopedTransformerPCA(objective="layerwise", lr=0.1, batch_size=batch,
                                   max_epochs=epochs, random_state=0, device=device,
                                   dtype=args.dtype)
        skloop_s = timed(lambda p=pca: p.fit(X))
        plain_s, _ = hand_written_pca(X, batch, epochs, 0.1, device, dtype)
        rates[batch] = n_samples / skloop_s
        rows.append([f"LoopedTransformerPCA (d=16, n=32, {args.dtype})", batch,
                     n_samples / skloop_s, n_samples / plain_s, plain_s / skloop_s])
        if args.compile:  # both sides compiled; the one-off compilation is not timed
            compiled = pca.set_params(compile=True, max_epochs=1)
            compiled.fit(X)
            compiled.set_params(max_epochs=epochs)
            skloop_s = timed(lambda p=compiled: p.fit(X))
            plain_s, compile_s = hand_written_pca(X, batch, epochs, 0.1, device, dtype,
                                                  compile=True)
            compiled_rates[batch] = n_samples / skloop_s
            rows.append([f"  same, compile=True (hand-written: first epoch {compile_s:.1f} s)",
                         batch, n_samples / skloop_s, n_samples / plain_s, plain_s / skloop_s])
        induction = InductionHeadRegressor(n_heads=2, d_model=8, batch_size=batch,
                                           max_epochs=epochs, random_state=0, device=device)
        skloop_s = timed(lambda m=induction: m.fit(S, y))
        plain_s = hand_written_induction(S, y, batch, epochs, 2e-3, device)
        rows.append(["InductionHeadRegressor (H=2, D=8, L=10)", batch, n_samples / skloop_s,
                     n_samples / plain_s, plain_s / skloop_s])
    print(markdown_table(["model", "batch", "skloop samples/s", "hand-written samples/s",
                          "skloop / hand-written"], rows))
    budget = 10_000 * 2000
    print(f"\nDevice: {device}; LoopedTransformerPCA in {args.dtype}, the regressor in "
          "float32.")
    print(f"Paper Fig 2 budget (one LN layer, d=16, n=32, 10^4 matrices x 2000 epochs, "
          f"batch 128): {budget / rates[128] / 60:.1f} min at the measured "
          f"{rates[128]:.0f} matrices/s" + (f"; {budget / compiled_rates[128] / 60:.1f} min with "
                                              "compile=True." if compiled_rates else "."))


if __name__ == "__main__":
    main()
