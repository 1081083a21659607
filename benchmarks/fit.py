"""Thin wrapper: the benchmark lives in ``skloop.experiments.bench.fit``
(also ``skloop bench fit``)."""

import sys

from skloop.experiments.bench.fit import main

if __name__ == "__main__":
    main(sys.argv[1:])
