"""`grid`: a stability map, the final loss over two hyperparameters, run as one batched tensor.

    >>> result = optbench.grid("sgd", {"lr": lrs, "momentum": momenta}, "elliptic")
    >>> result.best()        # the best cell by a robust criterion (`best_cell`), also marked in metrics["best"]

Every cell is a trial whose hyperparameters are `[trials, 1]` tensors stepped by one optimizer
(`runners.surface`); the first axis is the heat map's x axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import OptbenchError
from ..objectives import Surface, get_surface
from ..plots.grid_map import plot_grid
from ..progress import Progress
from ..results import META_FILE, read_metadata
from ..runners.surface import fixed_starts, run_surface
from ..runners.tuning import RESOLUTION
from ..specs import OptimizerSpec
from ..theory import stability_edge
from ..values import axis_values
from .inputs import (
    as_spec,
    as_surface,
    check_axes_not_in_spec,
    check_axis,
    check_run_settings,
    check_start,
    require_surface_budget,
)
from .result import (
    CURVE,
    FLAG,
    KEY,
    MEASURE,
    TEXT,
    Result,
    TableSchema,
    read_tables,
    require_spec,
    require_tables,
)


@dataclass(repr=False)
class GridMap(Result):
    """The tables of one grid; `meta` is what `save` records in meta.json (its "spec")."""

    kind = "grid"
    surface: Surface
    trajectory: pd.DataFrame | None  # one row per (cell, recorded step); None when not saved
    metrics: pd.DataFrame  # one row per cell: the two axis columns, final_loss, diverged, ...
    meta: dict
    seed: int

    @property
    def axes(self) -> list[str]:
        return list(self.meta["axes"])

    def best(self) -> pd.Series | None:
        """The row of `metrics` marked `best` (`best_cell`); None when every cell diverged."""
        marked = self.metrics[self.metrics["best"]] if "best" in self.metrics else self.metrics.iloc[:0]
        return marked.iloc[0] if len(marked) else None

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {"trajectory": self.trajectory, "metrics": self.metrics}
        return {stem: table for stem, table in tables.items() if table is not None}

    @classmethod
    def load(cls, folder) -> GridMap:
        """The grid saved in `folder` (its trajectories too, when they were saved)."""
        folder = Path(folder)
        meta = read_metadata(folder)
        spec = require_spec(folder, meta, "surface", "axes")
        axes = spec["axes"]
        if not (isinstance(axes, list) and len(axes) == 2 and all(isinstance(axis, str) for axis in axes)):
            raise OptbenchError(f"{folder / META_FILE}: the grid's axes must be two names, got {axes!r}")
        require_tables(folder)
        tables = read_tables(folder, meta, cls.schemas(spec))
        surface = get_surface(spec["surface"])
        return cls(surface, tables["trajectory"], tables["metrics"], spec, meta.get("seed", 0))

    @staticmethod
    def schemas(spec: dict) -> list[TableSchema]:
        """The tables of a saved grid (`result.TableSchema`): one metrics row per cell of its two axes."""
        axes, ranges = spec["axes"], spec.get("ranges")
        sized = isinstance(ranges, dict) and all(isinstance(ranges.get(axis), list) for axis in axes)
        cells = len(ranges[axes[0]]) * len(ranges[axes[1]]) if sized else None
        metrics = {"optimizer": TEXT, "final_loss": MEASURE, "diverged": FLAG, **dict.fromkeys(axes, KEY)}
        return [
            TableSchema("metrics", metrics, rows=cells),
            TableSchema("trajectory", {"step": KEY, "loss": CURVE}, required=False),
        ]

    def plot(self) -> dict:
        """{"grid": Figure}: the final loss per cell, diverged cells marked, SGD's stability limit where known."""
        best = self.best()
        return {
            "grid": plot_grid(
                self.metrics,
                self.surface,
                *self.axes,
                best=None if best is None else tuple(best[axis] for axis in self.axes),
                criterion=BEST_LABEL,
                stability=stability_edge(self.metrics, self.surface, *self.axes),
            )
        }


def grid(
    optimizer: OptimizerSpec | str,
    axes: dict,
    surface: Surface | str = "elliptic",
    *,
    steps: int | None = None,
    start=None,
    noise: float = 0.0,
    seed: int = 0,
    progress: Callable[[Progress], None] | None = None,
    allow_long: bool = False,
) -> GridMap:
    """Run `optimizer` once per cell of the two axes (name -> values; x axis first); returns a `GridMap`.

    optimizer: a spec or its text ("sgd", "adam:eps=1e-6"). axes: two names, each with a list of values,
    a range "START:STOP:NUM[:log|lin]" ("1e-3:1:8" as the CLI's --lr takes it) or a list "0,0.5,0.9".
    surface: a surface task's name ("elliptic", "quadratic:dim=20"), the task, or a `Surface`.

    Any tensor hyperparameter of the algorithm may be an axis (`beta1`/`beta2` address `betas`).
    Raises OptbenchError unless exactly two axes with values are given, or for a name the algorithm
    cannot take per trial, or a grid whose memory estimate exceeds what this machine has available.
    progress: called with a `Progress` (steps taken of steps) while the grid runs.
    allow_long: run even when the work estimate exceeds `budget.WORK_LIMIT` coordinate-steps.
    """
    spec, surface = as_spec(optimizer), as_surface(surface)
    steps = check_run_settings(surface, steps, seed, noise)
    point = check_start(surface, start)
    axes = {name: axis_values(name, values) for name, values in axes.items()}
    if len(axes) != 2:
        raise OptbenchError(f"a grid needs exactly two axes (got {len(axes)}: {', '.join(axes) or 'none'})")
    (x_name, x_values), (y_name, y_values) = axes.items()
    check_axes_not_in_spec(spec, axes)
    if not len(x_values) or not len(y_values):
        raise OptbenchError("each grid axis needs at least one value")
    require_surface_budget(
        f"a {len(x_values):,} x {len(y_values):,} grid of {steps:,} steps on {surface.name}",
        surface,
        len(x_values) * len(y_values),
        steps,
        allow_long=allow_long,
    )
    for name, values in axes.items():
        check_axis(spec, name, values)
    x_grid, y_grid = torch.meshgrid(
        torch.tensor(x_values, dtype=torch.float64),
        torch.tensor(y_values, dtype=torch.float64),
        indexing="xy",
    )
    trials = x_grid.numel()
    torch.manual_seed(seed)
    run = run_surface(
        spec,
        surface,
        fixed_starts(surface, point, trials),
        steps,
        grid={x_name: x_grid.reshape(-1), y_name: y_grid.reshape(-1)},
        noise=noise,
        seed=seed,
        progress=progress and (lambda t: progress(Progress(spec.name, t, steps))),
    )
    meta = {
        "surface": surface.name,
        "optimizer": spec.name,
        "axes": [x_name, y_name],
        "ranges": {x_name: list(x_values), y_name: list(y_values)},
        "steps": steps,
        "start": list(point or surface.start),
        "noise": noise,
        "record_every": run.record_every,
        "per_trial": run.per_trial,
        "origin": spec.origin.as_dict() if spec.origin is not None else None,
    }
    metrics = run.metrics
    metrics["best"] = metrics.index == best_cell(metrics, surface, x_name, y_name)
    meta["best_criterion"] = BEST_CRITERION
    return GridMap(surface, run.trajectory, metrics, meta, seed)


BEST_LABEL = "fewest steps to tol, off the stability edge"  # BEST_CRITERION in a legend's words
BEST_CRITERION = (
    "fewest steps to tolerance; ties (and cells that never reach it) by final f - f_min floored "
    "at 1e-6 x the tolerance; cells next to a diverged one (the stability edge) only if no other"
)


def best_cell(metrics: pd.DataFrame, surface: Surface, x_name: str, y_name: str):
    """The index of the grid's best cell by BEST_CRITERION, or None when every cell diverged.

    Why not the lowest final loss: next to the stability edge a cell can underflow to 1e-51 after
    oscillating wildly, and one more step of lr diverges; such a cell is no recommendation.
    """
    alive = ~metrics["diverged"].to_numpy()
    if not alive.any():
        return None
    x_index = metrics[x_name].rank(method="dense").to_numpy().astype(int) - 1
    y_index = metrics[y_name].rank(method="dense").to_numpy().astype(int) - 1
    diverged = set(zip(x_index[~alive], y_index[~alive], strict=True))
    edge = np.array(
        [
            any((x + dx, y + dy) in diverged for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)))
            for x, y in zip(x_index, y_index, strict=True)
        ]
    )
    floor = RESOLUTION * surface.tolerance if surface.tolerance is not None else 0.0
    gap = np.maximum(metrics["final_loss"].to_numpy(dtype=float) - (surface.minimum_value or 0.0), floor)
    steps = np.nan_to_num(metrics["steps_to_tolerance"].to_numpy(dtype=float), nan=np.inf)
    order = np.lexsort((gap, steps, edge, ~alive))  # last key sorts first
    return metrics.index[order[0]]
