"""Experiments as a library: each takes parsed specs and returns a result object.

Every result keeps one contract (`result.Result`): a unique kind, `tables()`, `save(folder, force)`
(never draws), `load(folder)` and `plot()` returning {file stem: matplotlib Figure}; `load(folder)`
reads back any saved result, so `optbench plot` redraws without re-running. The CLI commands are thin callers of these functions.
"""

from __future__ import annotations

from .compare import Comparison, TuningPlan, compare, plan_tuning
from .grid import GridMap, grid
from .noise_floor import NoiseFloorStudy, noise_floor
from .result import Result, load
from .training import TrainingResult, train

__all__ = [
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
]
