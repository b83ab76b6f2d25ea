"""The task registry (`registry.py`) and every default with its reason (`defaults.py`)."""

from .defaults import (
    REGRESSION,
    SCALAR,
    SURFACE_LR,
    TRAINING,
    TUNING_RANGES,
    surface_defaults,
    training_defaults,
)
from .registry import TASKS, Task, describe, get_task, task_kind

__all__ = [
    "REGRESSION",
    "SCALAR",
    "SURFACE_LR",
    "TASKS",
    "TRAINING",
    "TUNING_RANGES",
    "Task",
    "describe",
    "get_task",
    "surface_defaults",
    "task_kind",
    "training_defaults",
]
