"""Tuning at an equal budget: every optimizer gets the same grid size, starts and steps.

For each optimizer, the cells of a hyperparameter grid (lr by default, log-spaced; any tensor
hyperparameter the algorithm has) times the starts run as ONE batched tensor through `run_surface`
(trial = cell × n_starts + start). A cell's score is the median over starts of the criterion:

- `final-loss`: f - f_min after the last step (f where the minimum is unknown); a diverged run scores +inf.
  Gaps below `RESOLUTION` x the surface's tolerance (10⁻¹² of the default start's gap) all count as
  "solved" and tie: otherwise 10⁻¹⁰⁰ would beat 10⁻³⁰, a difference no one can use;
- `steps-to-tol`: the first step with f - f_min below the tolerance (relative to each start's f - f_min,
  `run_surface`); never reached scores +inf.

The lowest score wins; ties go to fewer median steps to tolerance, then to the lower final loss. If no
cell reaches the tolerance, the winner is chosen by final loss instead, and the summary says so. A winner
on the edge of the grid is flagged: the range should be widened before trusting the comparison.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from ..errors import OptbenchError
from ..objectives import Surface
from ..specs import OptimizerSpec
from ..tasks import Task, TaskKind, get_surface_task
from ..tasks.defaults import TUNING_RANGES
from ..values import parse_range
from .recorder import RELATIVE_TOLERANCE
from .surface import run_surface, set_hyperparameters, with_beta_axes

CRITERIA = ("final-loss", "steps-to-tol")
RESOLUTION = 1e-6  # final-loss scores are floored at RESOLUTION x surface.tolerance

DEFAULT_RANGES = TUNING_RANGES  # each range with its reason: optbench.tasks.defaults


@dataclass
class Tuning:
    metrics: pd.DataFrame  # one row per (optimizer, cell, start): run_surface metrics + cell, start
    cells: pd.DataFrame  # one row per (optimizer, cell): axes, score, reached, median final gap
    summary: pd.DataFrame  # one row per optimizer: winning values, score, reached, notes


def tuning_axes(over: list[str], ranges: dict[str, str]) -> dict[str, list[float]]:
    """Names to search -> grid values; each axis needs >= 2 points."""
    if not over:
        raise OptbenchError("--tune-over needs at least one hyperparameter name")
    unknown = set(ranges) - set(over)
    if unknown:
        raise OptbenchError(f"--tune-range {sorted(unknown)[0]} is not in --tune-over ({', '.join(over)})")
    axes = {}
    for name in over:
        if name in axes:
            raise OptbenchError(f"--tune-over names '{name}' twice")
        text = ranges.get(name, DEFAULT_RANGES.get(name))
        if text is None:
            raise OptbenchError(
                f"no default tuning range for '{name}': give --tune-range {name}=START:STOP:NUM"
            )
        axes[name] = parse_range(text, f"tuning range {name}")  # raises on < 2 points
    return axes


def check_tunable(spec: OptimizerSpec, axes) -> None:
    """Every axis must be a hyperparameter this optimizer has (and can take per trial)."""
    if spec.use_torch:
        raise OptbenchError(
            f"{spec.name}: tuning runs the grid as one tensor, which torch.optim does not "
            f"accept; tune '{spec.text.partition(':')[2]}' (ours, certified equal) instead"
        )
    names = with_beta_axes(spec.resolved())
    for axis in axes:
        if axis not in names:
            raise OptbenchError(
                f"--tune-over {axis}: {spec.name} has no hyperparameter '{axis}' "
                f"(it has: {', '.join(sorted(names - {'betas'}))})"
            )


def tune(
    spec: OptimizerSpec,
    task: Task | Surface | str,
    starts: torch.Tensor,
    steps: int,
    axes: dict,
    *,
    noise: float = 0.0,
    seed: int = 0,
    clip_grad_norm: float | None = None,
    relative_tolerance: float = RELATIVE_TOLERANCE,
) -> pd.DataFrame:
    """Run every cell of the search space `axes` (name -> values, `tuning_axes`) from every start
    [starts, dim] as one batch on `task`; returns the per-trial metrics (steps to tolerance relative to
    each start, `run_surface`). Settings neither the grid nor the spec gives take the task's
    `default_hparams`.

    task: a surface task, its name ('elliptic', 'surface:rosenbrock') or its `Surface`. Tuning runs the
    grid as one batched tensor program, which only a surface task is; any other task is an
    OptbenchError naming what tunes it (`optbench sweep` with an lr axis).
    """
    if isinstance(task, Task) and task.kind is not TaskKind.SURFACE:
        raise OptbenchError(
            f"tuning runs a grid as one batched tensor on an analytic surface; task '{task.name}' "
            f"({task.kind.value}) is tuned by a sweep over its axes (optbench sweep --task {task.name} --lr ...)"
        )
    task = get_surface_task(task)
    check_tunable(spec, axes)
    starts = torch.as_tensor(starts, dtype=torch.float64)
    cells = list(itertools.product(*axes.values()))
    n_starts = starts.shape[0]
    grid = {
        name: torch.tensor([cell[i] for cell in cells for _ in range(n_starts)], dtype=torch.float64)
        for i, name in enumerate(axes)
    }
    torch.manual_seed(seed)
    run = run_surface(
        spec,
        task.surface,
        starts.repeat(len(cells), 1),
        steps,
        grid=grid,
        defaults=task.default_hparams(spec),
        noise=noise,
        seed=seed,
        record_every=max(steps, 1),
        clip_grad_norm=clip_grad_norm,
        relative_tolerance=relative_tolerance,
    )
    metrics = run.metrics
    metrics.insert(3, "cell", metrics["trial"] // n_starts)
    metrics.insert(4, "start", metrics["trial"] % n_starts)
    return metrics


def scores(metrics: pd.DataFrame, surface: Surface, criterion: str) -> np.ndarray:
    """Per-trial score, lower is better; +inf for a diverged run or (steps-to-tol) one never converged."""
    if criterion == "steps-to-tol":
        score = metrics["steps_to_tolerance"].to_numpy(dtype=float)
    else:
        score = metrics["final_loss"].to_numpy(dtype=float) - (surface.minimum_value or 0.0)
        if surface.tolerance is not None:
            score = np.maximum(score, RESOLUTION * surface.tolerance)
    score = np.where(np.isnan(score) | metrics["diverged"].to_numpy(), math.inf, score)
    return score


def cell_scores(metrics: pd.DataFrame, surface: Surface, axes: list[str], criterion: str) -> pd.DataFrame:
    """One row per (optimizer, cell): its axis values and the medians over starts of the score (lower is
    better), the final-loss score, the final gap and the steps to tolerance; starts reached / diverged."""
    if criterion not in CRITERIA:
        raise OptbenchError(f"unknown criterion '{criterion}' (valid: {', '.join(CRITERIA)})")
    table = metrics.assign(
        score=scores(metrics, surface, criterion),
        loss_score=scores(metrics, surface, "final-loss"),
        final_gap=metrics["final_loss"] - (surface.minimum_value or 0.0),
        to_tol=scores(metrics, surface, "steps-to-tol") if surface.tolerance is not None else math.inf,
        converged=metrics["steps_to_tolerance"].notna() & ~metrics["diverged"],
    )
    return (
        table.groupby(["optimizer", "cell"], sort=False)
        .agg(
            family=("family", "first"),
            **{a: (a, "first") for a in axes},
            score=("score", "median"),
            loss_score=("loss_score", "median"),
            final_gap=("final_gap", "median"),
            to_tol=("to_tol", "median"),
            reached=("converged", "sum"),
            starts=("start", "count"),
            diverged=("diverged", "sum"),
        )
        .reset_index()
    )


def summarise(metrics: pd.DataFrame, surface: Surface, axes: list[str], criterion: str) -> Tuning:
    """Cell scores (`cell_scores`) and the winner per optimizer."""
    cells = cell_scores(metrics, surface, axes, criterion)
    rows = []
    for name, group in cells.groupby("optimizer", sort=False):
        chosen_by, notes = criterion, []
        finite = group[np.isfinite(group["score"])]
        if finite.empty and criterion == "steps-to-tol":
            notes.append("no cell reached the tolerance: chose by final loss")
            chosen_by = "final-loss"
            finite = group[np.isfinite(group["loss_score"])]
        if finite.empty:
            notes.append("every cell diverged")
            best = group.iloc[0]
        else:
            key = "score" if chosen_by == criterion else "loss_score"
            best = finite.sort_values([key, "to_tol", "loss_score"], kind="stable").iloc[0]
        for axis in axes:
            values = np.sort(group[axis].unique())
            if len(values) > 1 and not finite.empty and best[axis] in (values[0], values[-1]):
                notes.append(f"best {axis} at the edge of the grid")
        lr_range = _converging_lr_range(group) if "lr" in axes else (math.nan, math.nan)
        rows.append(
            {
                "optimizer": name,
                "family": best["family"],
                **{a: float(best[a]) for a in axes},
                "criterion": criterion,
                "chosen_by": chosen_by,
                "score": float(best["score"]),
                "final_gap": float(best["final_gap"]),
                "reached": int(best["reached"]),
                "starts": int(best["starts"]),
                "cells": len(group),
                "lr_converging_low": lr_range[0],
                "lr_converging_high": lr_range[1],
                "note": "; ".join(notes),
            }
        )
    return Tuning(metrics, cells, pd.DataFrame(rows))


def _converging_lr_range(cells: pd.DataFrame) -> tuple[float, float]:
    """Smallest and largest lr at which some cell converged from every start (a sensitivity measure)."""
    good = cells[cells["reached"] == cells["starts"]]
    if good.empty:
        return math.nan, math.nan
    return float(good["lr"].min()), float(good["lr"].max())


def sensitivity(cells: pd.DataFrame, x_axis: str = "lr") -> pd.DataFrame:
    """The criterion against one axis: the best score over every other axis, per optimizer and value."""
    return (
        cells.groupby(["optimizer", x_axis], sort=False)
        .agg(family=("family", "first"), score=("score", "min"), loss_score=("loss_score", "min"))
        .reset_index()
    )


def tuned_spec(spec: OptimizerSpec, values: dict) -> OptimizerSpec:
    """The spec with the winning values set (beta1/beta2 go into betas); the label stays the spec."""
    defaults = spec.resolved().get("betas", (0.9, 0.999))
    return replace(spec, hparams=set_hyperparameters(spec.hparams, values, defaults))
