"""optbench: see how gradient-based optimizers behave, exactly as torch.optim runs them.

The Python API: `compare`, `grid`, `noise_floor`, `train` and `sweep` run experiments and return
result objects (tidy tables, `.save(folder)`, `.plot()`); `load(folder)` reads a saved one back.
See `optbench.experiments` and `optbench.sweeps`.
"""

__version__ = "0.1.0"

from .experiments import (  # noqa: E402  (after __version__, which results.py reads)
    Comparison,
    GridMap,
    NoiseFloorStudy,
    Result,
    TrainingResult,
    TuningPlan,
    compare,
    grid,
    load,
    noise_floor,
    plan_tuning,
    train,
)
from .sweeps import SweepResult, SweepSpec, sweep  # noqa: E402

__all__ = [
    "Comparison",
    "GridMap",
    "NoiseFloorStudy",
    "Result",
    "SweepResult",
    "SweepSpec",
    "TrainingResult",
    "TuningPlan",
    "compare",
    "grid",
    "load",
    "noise_floor",
    "plan_tuning",
    "sweep",
    "train",
]
