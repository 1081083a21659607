"""Thin wrapper: the benchmark lives in ``skloop.experiments.bench.predict``
(also ``skloop bench predict``)."""

import sys

from skloop.experiments.bench.predict import main

if __name__ == "__main__":
    main(sys.argv[1:])
