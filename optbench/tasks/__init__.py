"""The executable task registry (`registry.py`), the problem interface (`problem.py`), every default with
its reason (`defaults.py`), and the task names checked without torch (`names.py`).

The names below are loaded on first use (PEP 562), so `optbench.tasks.defaults` and `optbench.tasks.names`
are read without importing the registry, which builds its tasks with torch.
"""

import importlib

# public name -> the module here that defines it
_HOMES = {
    **dict.fromkeys(
        (
            "REGRESSION",
            "SCALAR",
            "SURFACE_LR",
            "TRAINING",
            "TUNING_RANGES",
            "surface_defaults",
            "training_defaults",
        ),
        "defaults",
    ),
    **dict.fromkeys(("Budget", "Target", "TaskKind", "TrainingProblem"), "problem"),
    **dict.fromkeys(
        (
            "TASKS",
            "ClassificationTask",
            "LanguageModelTask",
            "RegressionTask",
            "SurfaceTask",
            "Task",
            "classification_task",
            "describe",
            "get_compare_task",
            "get_surface_task",
            "get_task",
            "register",
            "surface_task",
        ),
        "registry",
    ),
}

__all__ = sorted(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
