"""aiolens benchmarks: side-by-side measurements, each printed as a ratio to a baseline.

Run ``python -m benchmarks`` (``--help`` for the options); see ``benchmarks/README.md``.
"""
