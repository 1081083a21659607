"""Shared plumbing of the reproductions: sizes, output folder, figures and tables."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._report import markdown_table

__all__ = ["Sizes", "CPU_SIZES", "FULL_SIZES", "Report", "sizes_for"]


@dataclass(frozen=True)
class Sizes:
    """Problem and training sizes of one run."""

    n_features: int
    n_points: int
    n_train: int
    n_test: int
    max_epochs: int
    lr: object  # float or "auto"
    batch_size: int = 128
    end_to_end_loops: int = 3
    label: str = "CPU default"


# CPU default: the paper's d=8, n=16 setting of the math note's calibration, 2000 training
# matrices, lr scaled with d; full: the paper's Figs 1-2 (d=16, n=32, 10 000 matrices, 2000
# epochs, lr 0.1, batch 128, L=10), meant for a GPU.
CPU_SIZES = Sizes(8, 16, 2000, 500, 40, "auto", end_to_end_loops=3)
FULL_SIZES = Sizes(16, 32, 10000, 2000, 2000, 0.1, end_to_end_loops=10,
                   label="paper size (--full)")


def sizes_for(full: bool, max_epochs: int | None = None) -> Sizes:
    """The run's sizes, with an optional epoch override."""
    sizes = FULL_SIZES if full else CPU_SIZES
    return sizes if max_epochs is None else replace(sizes, max_epochs=max_epochs)


class Report:
    """Collects markdown sections and PNG figures in an output folder.

    ``sizes`` is the run's :class:`Sizes` or, with ``mode`` given, any sizes with a ``label``.
    With ``progress``, a line per finished table goes to stderr (the CLI's default verbosity).
    """

    def __init__(self, out_dir, title: str, sizes, seed: int, mode: str | None = None,
                 progress: bool = False):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.sizes = sizes
        self.seed = seed
        self.mode = mode
        self.progress = progress
        self.sections: list[str] = []
        self.figures: list[Path] = []
        self.start = time.perf_counter()

    def table(self, heading: str, headers, rows, note: str = "") -> str:
        """Add a markdown table (and return it)."""
        text = f"### {heading}\n\n{note + chr(10) + chr(10) if note else ''}"
        text += markdown_table(list(headers), [list(r) for r in rows])
        self.sections.append(text)
        if self.progress:
            print(f"[{time.perf_counter() - self.start:5.0f} s] {heading}", file=sys.stderr,
                  flush=True)
        return text

    def save(self, figure, name: str, tight: bool = True) -> Path:
        """Write a matplotlib figure as ``name.png`` and close it (``tight``: lay it out
        first; figures that placed their legend outside did so already)."""
        import matplotlib.pyplot as plt

        path = self.out_dir / f"{name}.png"
        if tight:
            figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        self.figures.append(path)
        return path

    def write(self) -> str:
        """Write ``report.md`` and return its text."""
        elapsed = time.perf_counter() - self.start
        s = self.sizes
        mode = self.mode or (
            f"d={s.n_features}, n={s.n_points}, {s.n_train} training / {s.n_test} test "
            f"matrices, {s.max_epochs} epochs, batch {s.batch_size}, lr={s.lr}. Uncentered "
            "second moment of unit-norm points; errors are angles to the top eigenspace "
            "(degrees, median over test matrices unless stated)"
        )
        header = (f"## {self.title}\n\nMode: {s.label} ({mode}); seed {self.seed}; "
                  f"{elapsed:.0f} s.\n")
        figures = "\n".join(f"- `{p.name}`" for p in self.figures)
        text = "\n\n".join([header, *self.sections, f"Figures:\n{figures}"]) + "\n"
        (self.out_dir / "report.md").write_text(text)
        return text


def median_errors(errors: np.ndarray, loops) -> list[float]:
    """Median over matrices of an ``(n_loops, n_matrices)`` error array at chosen loops."""
    return [float(np.median(errors[k - 1])) for k in loops]
