"""optbench: see how gradient-based optimizers behave, exactly as torch.optim runs them.

The Python API: `compare`, `grid`, `noise_floor`, `train`, `sweep` and `bench` run experiments and return
result objects (tidy tables, `.save(folder)`, `.plot()`); `load(folder)` reads a saved one back.
See `optbench.experiments` and `optbench.sweeps`.

The names below are loaded on first use: `import optbench` itself loads neither torch, pandas, scipy
nor matplotlib, so the command line answers `--help` and a mistyped name at once.
"""

import importlib

__version__ = "0.1.0"

# public name -> the subpackage that defines it
_HOMES = {
    **dict.fromkeys(
        (
            "Comparison",
            "GridMap",
            "NoiseFloorStudy",
            "Result",
            "TrainingResult",
            "TuningPlan",
            "compare",
            "grid",
            "load",
            "noise_floor",
            "plan_tuning",
            "train",
        ),
        "experiments",
    ),
    **dict.fromkeys(("SweepResult", "SweepSpec", "sweep"), "sweeps"),
    "BenchResult": "bench",
}

__all__ = sorted([*_HOMES, "bench"])  # optbench.bench: the subpackage, callable as `bench.run.bench`


def __getattr__(name):
    if name == "bench":  # the subpackage, callable (see optbench/bench/__init__.py)
        return importlib.import_module(".bench", __name__)
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
