"""Out-of-distribution benchmark: LoopedTransformerPCA trained on Task 1 vs classical PCA.

The same run as ``skloop reproduce ood``: mean and 90th-percentile angular error and wall time
of the looped transformer (LN, its isotropic projection, no LN), the power method with the same
loops, ExactPCA and scikit-learn's per-matrix loops on Task 1/2, spiked Gaussians, digits,
image patches and wine matrices.

Usage: ``python benchmarks/ood.py [--full] [--epochs N] [--out DIR]``.
"""

import argparse

from skloop.experiments.reproduce import ood
from skloop.experiments.reproduce._common import sizes_for

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="paper sizes (GPU)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    parser.add_argument("--out", default="skloop-output/ood", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(ood.run(args.out, sizes=sizes_for(args.full, args.epochs), seed=args.seed))
