"""optbench: see how gradient-based optimizers behave, exactly as torch.optim runs them.

The Python API: `compare`, `grid` and `noise_floor` run experiments and return result objects
(tables, `.save(folder)`, `.plot()`); `load(folder)` reads one back. See `optbench.experiments`.
"""

__version__ = "0.1.0"

from .experiments import (  # noqa: E402  (after __version__, which results.py reads)
    Comparison,
    GridMap,
    NoiseFloorStudy,
    TuningPlan,
    compare,
    grid,
    load,
    noise_floor,
    plan_tuning,
)

__all__ = ["Comparison", "GridMap", "NoiseFloorStudy", "TuningPlan", "compare", "grid", "load", "noise_floor",
           "plan_tuning"]
