"""Predict speed of LoopedTransformerPCA against the classical algorithms, side by side.

For each (N matrices, n points, d features, k loops): the transformer's looped forward (its
structural fast path, detected from exact zeros of trained-from-paper-init weights; and the
general associativity path for reference), batched torch power iteration with the same k
(Gram-first and matrix-free), ExactPCA's batched torch eigh, numpy eigh, and scikit-learn's
per-matrix TruncatedSVD / PCA loops (timed on 100 matrices, extrapolated). Also the estimators'
whole predict (validation and preprocessing included) and the memory-bandwidth floor: the time
to read X once, measured with a copy of X.

Usage: ``skloop bench predict [--quick] [--dtype float32|float64]`` or
``python benchmarks/predict.py ...``; one torch thread (the package default). The torch methods
all run in ``--dtype`` (float32 by default, the package default); numpy and scikit-learn in
float64.
"""

import time

import numpy as np
import torch
from sklearn.decomposition import PCA, TruncatedSVD

from skloop import LoopedTransformerPCA, PowerIterationPCA
from skloop._core.skorch import DTYPES
from skloop.cli import benchmark_parser
from skloop.datasets import make_sphere_matrices
from skloop.experiments._report import markdown_table
from skloop.pca import power_method_weights
from skloop.pca._linalg import last, power_iteration, top_eigenvectors


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def configurations(quick):
    if quick:
        return [(10_000, 20, 8, 20), (10_000, 100, 32, 20), (1_000, 20, 128, 50)]
    configs = []
    for d in (8, 32, 128):
        for n in (20, 100):
            for k in (5, 20, 50):
                for N in (1_000, 10_000, 100_000):
                    if N * n * d <= 2e7:  # keep the run within minutes on 2 cores
                        configs.append((N, n, d, k))
    return configs


def time_configuration(N, n, d, k, device, repeats, sync, dtype="float32"):
    """Median milliseconds of every method on one problem size."""
    X = make_sphere_matrices(N, n, d, random_state=0)
    Xt, nt = torch.from_numpy(X).to(device, DTYPES[dtype]), torch.full((N,), n, device=device)
    v = torch.from_numpy(np.random.RandomState(0).standard_normal((N, d))).to(Xt)
    # A fitted shell (training needs n >= d), then power-method weights as SGD from the paper
    # init leaves them: exact zeros outside the active blocks.
    shell = make_sphere_matrices(64, max(n, 2 * d), d, random_state=1)
    model = LoopedTransformerPCA(max_epochs=1, inference_loops=k, random_state=0,
                                 device=str(device), dtype=dtype).fit(shell)
    model = model.with_weights(*(w.numpy() for w in power_method_weights(d, 3.0, 3.0)))
    module = model.net_.module_
    power = PowerIterationPCA(k, shift=9.0, random_state=0).fit(X[:10])
    timings = {}
    def synced(fn):
        def run():
            fn()
            sync()
        return run

    with torch.no_grad():
        timings["transformer loop (fast path)"] = median_ms(
            synced(lambda: last(module.iterate(Xt, nt, v, k))), repeats)
        if N * n * d <= 2e6:
            timings["transformer loop (general path)"] = median_ms(
                synced(lambda: last(module.iterate(Xt, nt, v, k, path="general"))), 1)
        for method in ("gram", "matrix_free"):
            timings[f"torch power iteration ({method})"] = median_ms(synced(
                lambda m=method: power_iteration(Xt, nt, v[:, :, None], k, 9.0, m)), repeats)
        timings["torch batched eigh (ExactPCA core)"] = median_ms(
            synced(lambda: top_eigenvectors(Xt, nt, 1)), repeats)
    timings["numpy eigh"] = median_ms(
        lambda: np.linalg.eigh(np.swapaxes(X, 1, 2) @ X)[1][:, :, -1], repeats)
    timings["LoopedTransformerPCA.predict"] = median_ms(lambda: model.predict(X), repeats)
    timings["PowerIterationPCA.predict"] = median_ms(lambda: power.predict(X), repeats)
    subset = X[:100]
    for name, factory in (("sklearn TruncatedSVD loop", lambda: TruncatedSVD(1,
                          algorithm="arpack")), ("sklearn PCA loop", lambda: PCA(1))):
        timings[f"{name} (extrapolated)"] = median_ms(
            lambda f=factory: [f().fit(A) for A in subset], 1) * N / len(subset)
    timings["floor: read X once (copy)"] = median_ms(synced(lambda: Xt.clone()), repeats) / 2
    return timings


def main(argv=None):
    """Parse the command-line arguments ``argv`` (``skloop bench predict --help``) and run."""
    run(benchmark_parser("predict").parse_args(argv))


def run(args):
    """Run the benchmark with parsed arguments and print its tables."""
    device = torch.device(args.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    torch.set_num_threads(1)
    repeats = 3 if args.quick else 5
    rows = []
    for N, n, d, k in configurations(args.quick):
        timings = time_configuration(N, n, d, k, device, repeats, sync, args.dtype)
        reference = timings["torch power iteration (gram)"]
        for name, ms in timings.items():
            rows.append([f"{N}×{n}×{d}, k={k}", name, ms, ms / reference])
    print(markdown_table(["N×n×d, loops", "method", "median ms", "× torch power (gram)"], rows))
    print(f"\n{args.dtype} on {device}, one torch CPU thread; the floor halves a read+write "
          "copy of X; the estimators' predict validates and preprocesses in numpy on the CPU.")


if __name__ == "__main__":
    main()
