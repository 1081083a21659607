"""Command-line interface: ``skloop demo``, ``skloop reproduce`` and ``skloop bench``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``skloop`` argument parser, one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="skloop",
        description="Transformers that learn algorithms, measured against the classical ones.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train both estimators, compare with classical PCA, write a report and plots",
        description="Train LoopedTransformerPCA (LN and no LN) on paper Task 1, compare it in "
        "and out of distribution with ExactPCA, the power method and sklearn PCA, grid-search "
        "loops × normalization, and train the induction-head model through its four phases. "
        "About a minute on a laptop CPU.",
    )
    demo.add_argument("--out", default="skloop-demo", help="output folder for report and plots")
    demo.add_argument("--device", default="auto", help="torch device (default: CUDA if any)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--seed", type=int, default=0, help="random seed")

    reproduce = commands.add_parser(
        "reproduce",
        help="reproduce a paper's experiments (PNG figures + markdown tables)",
        description="Reproduce a paper's experiments. The default is CPU-scaled (minutes); "
        "--full uses the paper's sizes and is meant for a GPU.",
    )
    reproduce.add_argument(
        "experiment",
        choices=["power-method", "ood", "induction-heads"],
        help="power-method: Figs 1, 2, 4, 5, 8 of the looped-transformer paper; "
        "ood: models trained on Task 1 against classical PCA on other distributions; "
        "induction-heads: Figs 3 and 9 (four phases) and the plateau scaling",
    )
    reproduce.add_argument("--full", action="store_true",
                           help="paper sizes: d=16, n=32, 10 000 matrices, 2000 epochs, lr 0.1 "
                           "(induction-heads: lr 0.1, 46 000 Stage II steps, larger budgets)")
    reproduce.add_argument("--epochs", type=int, default=None,
                           help="override the number of training epochs (induction-heads: "
                           "Stage II epochs of 100 steps; its other budgets scale alike)")
    reproduce.add_argument("--out", default=None,
                           help="output folder (default: skloop-output/<experiment>)")
    reproduce.add_argument("--seed", type=int, default=0, help="random seed")
    reproduce.add_argument("--verbose", action="store_true", help="progress bars")

    bench = commands.add_parser(
        "bench",
        help="speed benchmarks against the classical algorithms (tables of measured ratios)",
        description="predict: LoopedTransformerPCA's looped inference against torch power "
        "iteration, eigh and scikit-learn's per-matrix loops; fit: samples/s of both "
        "estimators against a hand-written torch loop. Extra arguments (--quick, --device, "
        "--dtype; fit: --compile) go to the benchmark.",
    )
    bench.add_argument("benchmark", choices=["predict", "fit"], help="which benchmark")
    return parser


def main(argv=None) -> int:
    """Entry point of the ``skloop`` command."""
    args, extra = build_parser().parse_known_args(argv)
    if extra and args.command != "bench":
        build_parser().parse_args(argv)  # the usual error for unknown arguments
    if args.command == "demo":
        from .experiments.demo import run_demo

        print(run_demo(args.out, device=args.device, quiet=args.quiet, seed=args.seed))
        print(f"\nWrote {args.out}/report.md and its plots.")
    elif args.command == "reproduce":
        from importlib import import_module

        name = args.experiment.replace("-", "_")
        module = import_module(f".experiments.reproduce.{name}", "skloop")
        out = args.out or f"skloop-output/{args.experiment}"
        text = module.run(out, sizes=module.sizes_for(args.full, args.epochs), seed=args.seed,
                          verbose=int(args.verbose))
        print(text)
        print(f"Wrote {out}/report.md and its PNG figures.")
    elif args.command == "bench":
        from importlib import import_module

        import_module(f".experiments.bench.{args.benchmark}", "skloop").main(extra)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
