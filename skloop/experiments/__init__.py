"""Experiments built on the library: the demo, the paper reproductions and the benchmarks.

Behind the ``skloop demo``, ``skloop reproduce`` and ``skloop bench`` commands. The library
never imports this subpackage; it may import any part of the library.
"""
