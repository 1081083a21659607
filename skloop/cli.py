"""Command-line interface: ``skloop demo``."""

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
    return parser


def main(argv=None) -> int:
    """Entry point of the ``skloop`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import baseline_report

        print(baseline_report(args.n_matrices, args.n_points, args.n_features, args.seed))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
