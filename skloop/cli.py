"""Command-line interface: ``skloop demo`` and ``skloop reproduce``."""

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
        help="run the baselines on the paper's tasks and on real data and print a table",
        description="Compare exact eigendecomposition, the power method and scikit-learn's "
        "per-matrix loop on paper Task 1/2, spiked Gaussians, digits and image patches.",
    )
    demo.add_argument("--n-matrices", type=int, default=500, help="matrices per data set")
    demo.add_argument("--n-points", type=int, default=16, help="points per matrix (n)")
    demo.add_argument("--n-features", type=int, default=8, help="dimension of the points (d)")
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
                           help="paper sizes: d=16, n=32, 10 000 matrices, 2000 epochs, lr 0.1")
    reproduce.add_argument("--epochs", type=int, default=None,
                           help="override the number of training epochs")
    reproduce.add_argument("--out", default=None,
                           help="output folder (default: skloop-output/<experiment>)")
    reproduce.add_argument("--seed", type=int, default=0, help="random seed")
    reproduce.add_argument("--verbose", action="store_true", help="progress bars")
    return parser


def main(argv=None) -> int:
    """Entry point of the ``skloop`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import baseline_report

        print(baseline_report(args.n_matrices, args.n_points, args.n_features, args.seed))
    elif args.command == "reproduce":
        from importlib import import_module

        from .reproduce._common import sizes_for

        module = import_module(f".reproduce.{args.experiment.replace('-', '_')}", "skloop")
        out = args.out or f"skloop-output/{args.experiment}"
        text = module.run(out, sizes=sizes_for(args.full, args.epochs), seed=args.seed,
                          verbose=int(args.verbose))
        print(text)
        print(f"Wrote {out}/report.md and its PNG figures.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
