"""Command-line options every benchmark shares."""

import argparse

from skloop._core.skorch import DTYPES


def benchmark_parser(doc: str, *, quick: str, device: str, dtype: str) -> argparse.ArgumentParser:
    """A parser with ``--quick``, ``--device`` (default cpu) and ``--dtype`` (default float32,
    the package default); ``doc``'s first line describes the benchmark, the others the options."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--device", default="cpu", help=device)
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES), help=dtype)
    return parser
