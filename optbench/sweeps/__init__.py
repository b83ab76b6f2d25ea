"""Batch-size and lr-scaling sweeps that never lose work, one job per module:

- `spec`: what decides a sweep (`SweepSpec`), its checks, the lr-scaling rules;
- `cells`: the grid of typed, frozen, content-keyed `Cell`s, and shards;
- `columns`: the one list of each table's columns;
- `adapters`: how a cell runs on each task (training, regression, surface);
- `store`: the folder (atomic, resumable cell files; claims and locks);
- `run`: scheduling (this process or worker processes that die with it);
- `analysis`: steps to target and the critical batch size; `noise_scale`: B_simple;
- `api`: `sweep(spec, folder)` returning a `SweepResult`, `load(folder)`.
"""

from .api import SweepPlan, SweepResult, load, sweep
from .cells import Cell
from .run import SweepInterrupted
from .spec import SweepSpec

__all__ = ["Cell", "SweepInterrupted", "SweepPlan", "SweepResult", "SweepSpec", "load", "sweep"]
