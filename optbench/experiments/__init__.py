"""Experiments as a library: each takes parsed specs and returns a result object.

A result holds tidy DataFrames and `meta`; `.save(folder)` writes them through `optbench.results`,
`.plot()` returns {file stem: matplotlib Figure}, and `load(folder)` reads a saved one back, so
`optbench plot` redraws without re-running. The CLI commands are thin callers of these functions.
"""

from __future__ import annotations

from ..errors import OptbenchError
from ..results import read_metadata
from ..sweeps import load as load_sweep
from .compare import Comparison, TuningPlan, compare, plan_tuning
from .grid import GridMap, grid
from .noise_floor import NoiseFloorStudy, noise_floor
from .training import TrainingResult, train

__all__ = [
    "Comparison",
    "GridMap",
    "NoiseFloorStudy",
    "TrainingResult",
    "TuningPlan",
    "compare",
    "grid",
    "load",
    "noise_floor",
    "plan_tuning",
    "train",
]


def load(folder):
    """The result saved in `folder` by `compare`, `noise_floor`, `grid`, `train` or `sweep`: a
    Comparison, NoiseFloorStudy, GridMap, TrainingResult or `optbench.sweeps.SweepResult`.

    Raises OptbenchError for a folder that is not an optbench results folder or holds another kind.
    """
    meta = read_metadata(folder)
    if meta["kind"] == "grid":
        return GridMap.load(folder)
    if meta["kind"] == "compare":
        return (
            NoiseFloorStudy.load(folder)
            if meta["spec"].get("surface") == "linreg"
            else Comparison.load(folder)
        )
    if meta["kind"] == "train":
        return TrainingResult.load(folder)
    if meta["kind"] == "sweep":
        return load_sweep(folder)
    raise OptbenchError(
        f"{folder}: results of kind '{meta['kind']}' are not a compare, grid, train or sweep result"
    )
