"""Benchmarks behind scripts/bench_*: each measures one part against a baseline doing the same
I/O by hand, alternating in one run, and reports ratios (the machine is shared and noisy)."""
