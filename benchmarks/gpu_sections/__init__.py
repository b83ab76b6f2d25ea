"""The sections of `benchmarks/gpu_check.py`: each a `run(settings, report, budget)` that writes markdown."""
