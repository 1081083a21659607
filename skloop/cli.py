"""Command-line interface: ``skloop demo``, ``skloop reproduce`` and ``skloop bench``.

Every sub-command has its own ``--help``. The ones that train take ``--device`` and ``--seed``
and one verbosity convention: ``-q/--quiet`` (no progress output), the default (a progress line
per step), ``-v/--verbose`` (also skorch's per-epoch log of every training run). Nothing heavy is
imported until a command runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]

EXPERIMENTS = {
    "power-method": "Figs 1, 2, 4, 5, 8 of the looped-transformer paper",
    "ood": "models trained on Task 1 against classical PCA on 7 distributions",
    "induction-heads": "Figs 3 and 9 (four phases), the plateau scaling, the literal Stage I, "
    "Fig 10 and a real-text run",
}


def _add_training_options(parser: argparse.ArgumentParser, *, out_help: str) -> None:
    """``--out``, ``--device``, ``--seed`` and the verbosity flags of a command that trains."""
    parser.add_argument("--out", default=None, help=out_help)
    parser.add_argument("--device", default="auto",
                        help="torch device of every model: auto (CUDA, then MPS, then CPU; the "
                        "default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the models "
                        "(default: 0, the seed of the published numbers)")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=0,
                           help="no progress output, only the report")
    verbosity.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=2,
                           help="also print skorch's per-epoch log of every training run")
    parser.set_defaults(verbosity=1)


BENCHMARKS = {
    "predict": dict(
        help="looped inference against torch power iteration, eigh and scikit-learn loops",
        description="Predict speed of LoopedTransformerPCA (its structural fast path and the "
        "general path) against batched torch power iteration with the same loops, batched "
        "eigh, and scikit-learn's per-matrix TruncatedSVD and PCA loops; one torch thread.",
        quick="three configurations instead of the full grid",
        device="torch device of the torch methods",
        dtype="dtype of the torch methods and of LoopedTransformerPCA",
    ),
    "fit": dict(
        help="training throughput of both estimators against a hand-written torch loop",
        description="Samples per second of LoopedTransformerPCA.fit and "
        "InductionHeadRegressor.fit against a plain torch loop with the same module, loss, "
        "optimizer and batches, and the time the paper's Fig 2 budget would take; one torch "
        "thread.",
        quick="2 epochs instead of 5",
        device="torch device of both sides",
        dtype="LoopedTransformerPCA dtype, both sides",
    ),
}


def benchmark_parser(name: str, parser: argparse.ArgumentParser | None = None):
    """The options of ``skloop bench <name>``, on ``parser`` or on a new parser.

    One definition for the CLI and for the benchmark modules' own ``main`` (the scripts of
    ``benchmarks/``).
    """
    spec = BENCHMARKS[name]
    if parser is None:
        parser = argparse.ArgumentParser(prog=f"skloop bench {name}",
                                         description=spec["description"])
    parser.add_argument("--quick", action="store_true", help=spec["quick"])
    parser.add_argument("--device", default="cpu", help=spec["device"] + " (default: cpu)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                        help=spec["dtype"] + " (default: float32, the package default)")
    if name == "fit":
        parser.add_argument("--compile", action="store_true",
                            help="also time LoopedTransformerPCA(compile=True) against the "
                            "hand-written loop under torch.compile (compilation excluded from "
                            "the timings)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``skloop`` argument parser, one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="skloop",
        description="Transformers that learn algorithms, measured against the classical ones.",
        epilog="Run 'skloop <command> --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    demo = commands.add_parser(
        "demo",
        help="train both estimator families, compare with classical PCA, write a report and "
        "plots",
        description="Train LoopedTransformerPCA (with and without layer normalization) on "
        "paper Task 1, compare it in and out of distribution with ExactPCA, the power method "
        "and scikit-learn's PCA, grid-search loops × normalization, and train the induction-head "
        "model through its four phases. Writes report.md and two PNGs. About a minute on a "
        "laptop CPU.",
    )
    _add_training_options(demo, out_help="output folder of the report and plots "
                          "(default: skloop-demo)")

    reproduce = commands.add_parser(
        "reproduce",
        help="reproduce a paper's experiments (PNG figures and a markdown report)",
        description="Reproduce a paper's experiments. The default is CPU-scaled (seconds to "
        "minutes); --full uses the paper's sizes and is meant for a GPU.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="experiments:\n" + "\n".join(f"  {name:16s}{text}"
                                           for name, text in EXPERIMENTS.items()),
    )
    reproduce.add_argument("experiment", choices=list(EXPERIMENTS), help="which experiment")
    reproduce.add_argument("--full", action="store_true",
                           help="paper sizes: d=16, n=32, 10 000 matrices, 2000 epochs, lr 0.1 "
                           "(induction-heads: lr 0.1, 46 000 Stage II steps, larger budgets)")
    reproduce.add_argument("--epochs", type=int, default=None,
                           help="override the number of training epochs (induction-heads: "
                           "Stage II epochs of 100 steps; its other budgets scale alike)")
    _add_training_options(reproduce,
                          out_help="output folder (default: skloop-output/<experiment>)")

    bench = commands.add_parser(
        "bench",
        help="speed benchmarks against the classical algorithms (tables of measured ratios)",
        description="Speed benchmarks, printed as tables of ratios measured side by side.",
    )
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="benchmark")
    for name, spec in BENCHMARKS.items():
        benchmark_parser(name, benchmarks.add_parser(name, help=spec["help"],
                                                     description=spec["description"]))
    return parser


def main(argv=None) -> int:
    """Entry point of the ``skloop`` command."""
    args = build_parser().parse_args(argv)
    from importlib import import_module

    if args.command == "demo":
        from .experiments.demo import run_demo

        out = args.out or "skloop-demo"
        print(run_demo(out, device=args.device, verbosity=args.verbosity, seed=args.seed))
        print(f"\nWrote {out}/report.md and its plots.")
    elif args.command == "reproduce":
        module = import_module(f".experiments.reproduce.{args.experiment.replace('-', '_')}",
                               "skloop")
        out = args.out or f"skloop-output/{args.experiment}"
        text = module.run(out, sizes=module.sizes_for(args.full, args.epochs), seed=args.seed,
                          device=args.device, verbosity=args.verbosity)
        print(text)
        print(f"Wrote {out}/report.md and its PNG figures.")
    else:
        import_module(f".experiments.bench.{args.benchmark}", "skloop").run(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
