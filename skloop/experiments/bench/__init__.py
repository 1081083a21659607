"""Speed benchmarks behind ``skloop bench`` and the scripts of ``benchmarks/``.

Each module prints tables of ratios measured side by side in one run; none is a test.
"""
