"""Thin wrapper: the benchmark lives in ``skloop.bench.fit`` (also ``skloop bench fit``)."""

import sys

from skloop.bench.fit import main

if __name__ == "__main__":
    main(sys.argv[1:])
