"""How each regression task runs for `optbench.train`: the worked `scalar` example and stochastic
linear regression `linreg` (`runners.regression`). A task's `plan` checks the settings and returns
what the experiment stores and runs, per optimizer; the runners load only when a plan is made."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ..budget import require_rows
from ..errors import OptbenchError


@dataclass(frozen=True)
class RegressionRuns:
    """table: the result table's name; settings: what keys a run besides its optimizer; record: the
    resolved spec for meta.json; run(spec) -> that optimizer's table."""

    table: str
    settings: dict
    record: dict
    run: Callable[..., pd.DataFrame]


def scalar_runs(task, specs, epochs: int | None, batch_size: int | None, seed: int) -> RegressionRuns:
    """The worked example's trace per optimizer; `epochs` counts iterations (None: the task's budget)."""
    from ..runners.regression import scalar_trace

    if batch_size is not None:
        raise OptbenchError(f"batch size does not apply to task '{task.name}' (one sample)")
    iterations = epochs or task.budget.steps
    require_rows(f"{len(specs)} scalar trace(s) of {iterations:,} iterations", len(specs) * iterations)
    record = {"task": task.name, "optimizers": [spec.name for spec in specs], "iterations": iterations}

    def run(spec):
        return scalar_trace(spec, steps=iterations, defaults=task.default_hparams(spec))

    return RegressionRuns("trace", {"iterations": iterations}, record, run)


def linreg_runs(task, specs, epochs: int | None, batch_size: int | None, seed: int) -> RegressionRuns:
    """Mini-batch linear regression per optimizer on the seed's samples (None: the task's budget)."""
    from ..runners.regression import least_squares, linear_regression, make_linear_data

    data = make_linear_data(seed=seed)
    batch_size = batch_size or task.budget.batch_size
    epochs = epochs or task.budget.epochs
    if batch_size > len(data.y):
        raise OptbenchError(f"batch size {batch_size} is larger than the {len(data.y)} regression samples")
    steps = epochs * math.ceil(len(data.y) / batch_size)
    require_rows(f"{len(specs)} regression run(s) of {epochs:,} epochs", len(specs) * steps)
    record = {
        "task": task.name,
        "optimizers": [spec.name for spec in specs],
        "least_squares": least_squares(data),
        "batch_size": batch_size,
        "epochs": epochs,
    }

    def run(spec):
        return linear_regression(spec, data, batch_size, epochs, seed, defaults=task.default_hparams(spec))

    settings = {"batch_size": batch_size, "epochs": epochs, "seed": seed}
    return RegressionRuns("regression", settings, record, run)
