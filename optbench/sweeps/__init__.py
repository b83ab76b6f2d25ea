"""Batch-size and lr-scaling sweeps that never lose work, one job per module:

- `spec`: what decides a sweep (`SweepSpec`), its checks, the lr-scaling rules;
- `cells`: the grid of typed, frozen, content-keyed `Cell`s, and shards;
- `columns`: the one list of each table's columns;
- `adapters`: how a cell runs on each task (training, regression, surface);
- `run`: the sweep's groups and job on the cell engine (`optbench.cells`: store, scheduler, executors);
- `analysis`: steps to target and the critical batch size; `noise_scale`: B_simple;
- `api`: `sweep(spec, folder)` returning a `SweepResult`, `load(folder)`.
"""

from .api import SweepPlan, SweepResult, load, sweep
from .cells import Cell
from .spec import SweepSpec

__all__ = ["Cell", "SweepPlan", "SweepResult", "SweepSpec", "load", "sweep"]
