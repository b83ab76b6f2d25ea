"""Hand-written, line-by-line re-implementations of every torch.optim algorithm.

Each class is a drop-in `torch.optim.Optimizer` with the same name, arguments and state keys as
its torch twin; `optbench verify` certifies that they compute the same numbers.
"""

import importlib

from .registry import ALGORITHMS, PRESETS, Algorithm, get

__all__ = [algorithm.class_name for algorithm in ALGORITHMS.values()] + \
    ["ALGORITHMS", "PRESETS", "Algorithm", "get", "fast", "FAST_ALGORITHMS", "PerTrialSchedule"]
_MODULE_OF = {
    **{algorithm.class_name: algorithm.module for algorithm in ALGORITHMS.values()},
    "fast": "fast_path",
    "FAST_ALGORITHMS": "fast_path",
    "PerTrialSchedule": "per_trial_schedule",
}


def __getattr__(name):
    # Imported on first use (each loads torch), so that the registry's names need no torch and one
    # module's error stays local.
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
