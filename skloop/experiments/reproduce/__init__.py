"""Reproductions of the papers' experiments (``skloop reproduce ...``).

Every reproduction has a CPU-scaled default (minutes) and a ``full`` paper-sized mode meant
for a GPU; each writes PNG figures and a markdown file of the numbers behind them. Every
module has ``sizes_for(full, epochs)`` (the ``--full`` and ``--epochs`` options) and
``run(out_dir, *, sizes, seed, device, verbosity)``.
"""
