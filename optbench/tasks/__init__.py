"""The executable task registry (`registry.py`), the problem interface (`problem.py`), and every
default with its reason (`defaults.py`)."""

from .defaults import (
    REGRESSION,
    SCALAR,
    SURFACE_LR,
    TRAINING,
    TUNING_RANGES,
    surface_defaults,
    training_defaults,
)
from .problem import Budget, Target, TaskKind, TrainingProblem
from .registry import (
    TASKS,
    ClassificationTask,
    LanguageModelTask,
    RegressionTask,
    SurfaceTask,
    Task,
    classification_task,
    describe,
    get_compare_task,
    get_surface_task,
    get_task,
    register,
    surface_task,
)

__all__ = [
    "REGRESSION",
    "SCALAR",
    "SURFACE_LR",
    "TASKS",
    "TRAINING",
    "TUNING_RANGES",
    "Budget",
    "ClassificationTask",
    "LanguageModelTask",
    "RegressionTask",
    "SurfaceTask",
    "Target",
    "Task",
    "TaskKind",
    "TrainingProblem",
    "classification_task",
    "describe",
    "get_compare_task",
    "get_surface_task",
    "get_task",
    "register",
    "surface_defaults",
    "surface_task",
    "training_defaults",
]
