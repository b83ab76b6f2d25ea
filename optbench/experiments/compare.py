"""`compare`: optimizers side by side on one analytic surface, optionally tuned first, optionally run twice.

    >>> result = optbench.compare(["sgd", "adam"], "elliptic", tune=plan_tuning(...), check_repro=True)
    >>> result.metrics              # one row per (optimizer, trial)
    >>> result.save("results/cmp")  # tables + meta.json, re-plotted by `optbench plot`
    >>> figures = result.plot()     # {"trajectories": Figure, "loss": Figure, ...}

With a `TuningPlan`, every optimizer is first tuned on the same grid, starts and steps (an equal budget,
`optbench.runners.tuning`) and compared at its winning values. With `check_repro`, the comparison runs a
second time (and on CUDA where present) and `repro` says where the trajectories first differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..budget import check_count
from ..errors import OptbenchError, check_some_finished, recorded_failure
from ..objectives import Surface, get_surface
from ..plots.fair import plot_sensitivity
from ..plots.grid_map import plot_grid
from ..plots.surfaces import animate, plot_loss, plot_trajectories
from ..progress import Progress
from ..results import read_metadata
from ..runners.devices import torch_threads
from ..runners.recorder import RELATIVE_TOLERANCE
from ..runners.repro import compare_runs
from ..runners.surface import (
    check_relative_tolerance,
    fixed_starts,
    random_starts,
    run_surface,
)
from ..runners.tuning import (
    CRITERIA,
    Tuning,
    cell_scores,
    check_tunable,
    sensitivity,
    summarise,
    tuned_spec,
    tuning_axes,
)
from ..runners.tuning import tune as run_tuning
from ..tasks import surface_task
from ..theory import rate_table, stability_edge
from ..values import range_parts
from .inputs import (
    as_specs,
    as_surface,
    check_axis,
    check_run_settings,
    check_start,
    require_surface_budget,
    require_surface_memory,
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

TUNING_SEED_OFFSET = 1  # tuning starts come from seed + 1, so they differ from the comparison's starts
CPU_RUNS, CPU_VS_CUDA = "cpu run 1 vs run 2", "cpu vs cuda"


@dataclass(frozen=True)
class TuningPlan:
    """What `compare` tunes before comparing: the same grid, starts and criterion for every optimizer."""

    over: tuple[str, ...]  # hyperparameter names, e.g. ("lr", "momentum")
    axes: dict  # name -> grid values
    ranges: dict  # name -> the range text given (defaults not included)
    starts: int  # seeded random starts per cell; a cell scores the median over them
    criterion: str  # "final-loss" or "steps-to-tol"

    @property
    def cells(self) -> int:
        return math.prod(len(values) for values in self.axes.values())

    def meta(self, steps: int) -> dict:
        return {
            "over": list(self.over),
            "ranges": self.axes,
            "range_text": self.ranges,
            "starts": self.starts,
            "criterion": self.criterion,
            "steps": steps,
            "cells": self.cells,
            "gradient_evaluations_per_optimizer": self.cells * self.starts * steps,
        }


def plan_tuning(
    optimizers,
    surface: Surface | str,
    over=("lr",),
    ranges: dict | None = None,
    starts: int = 5,
    criterion: str = "final-loss",
) -> TuningPlan:
    """Check a tuning request against the optimizers and the surface before any work.

    ranges: name -> "START:STOP:NUM[:log|lin]" overriding `runners.tuning.DEFAULT_RANGES`.
    Raises OptbenchError for a name an optimizer lacks, a range of < 2 points, starts < 1, an unknown
    criterion, or steps-to-tol on a surface without a known minimum.
    """
    specs, surface, over = as_specs(optimizers), as_surface(surface), tuple(over)
    check_count("tuning starts", starts, 1)
    if criterion not in CRITERIA:
        raise OptbenchError(f"unknown criterion '{criterion}' (valid: {', '.join(CRITERIA)})")
    if criterion == "steps-to-tol" and surface.tolerance is None:
        raise OptbenchError(f"{surface.name} has no known minimum, so no tolerance: tune by final loss")
    for spec in specs:  # a name the optimizer lacks is the clearer message: check it first
        check_tunable(spec, over)
    ranges = dict(ranges or {})
    cells = math.prod(range_parts(text, f"tuning range {name}")[2] for name, text in ranges.items())
    require_surface_memory(
        f"tuning {cells:,} cells x {starts} starts on {surface.name}", surface, cells * starts, 0
    )
    axes = tuning_axes(list(over), ranges)
    for spec in specs:
        for name, values in axes.items():
            check_axis(spec, name, values, "tuning")
    return TuningPlan(over, axes, ranges, starts, criterion)


def run_count(spec: dict, failed) -> int | None:
    """The runs a saved comparison made: its spec's optimizers less those meta.json records as failed
    (None: unknown)."""
    optimizers, failed = spec.get("optimizers"), failed or {}
    if not isinstance(optimizers, list) or not isinstance(failed, dict):
        return None
    return len(optimizers) - len(failed)


@dataclass(repr=False)
class Comparison(Result):
    """The tables of one comparison; `meta` is what `save` records in meta.json (its "spec")."""

    kind = "compare"
    surface: Surface
    trajectory: pd.DataFrame  # one row per (optimizer, trial, recorded step); see runners.surface
    metrics: pd.DataFrame  # one row per (optimizer, trial)
    rates: pd.DataFrame | None  # measured vs analytic linear rate per (optimizer, trial); quadratics only
    tuning: Tuning | None  # per-trial tuning metrics, cell scores and winners (with a TuningPlan)
    repro: pd.DataFrame | None  # first differing step per (optimizer, comparison) (with check_repro)
    meta: dict
    seed: int
    failed: dict[str, str] = field(default_factory=dict)  # run name -> the one line its class raised

    def tables(self) -> dict[str, pd.DataFrame]:
        """File stem -> table, as `save` writes them."""
        tables = {"trajectory": self.trajectory, "metrics": self.metrics, "rates": self.rates}
        if self.tuning is not None:
            tables |= {"tuning": self.tuning.metrics, "tuned": self.tuning.summary}
        tables["repro"] = self.repro
        return {stem: table for stem, table in tables.items() if table is not None}

    @staticmethod
    def schemas(spec: dict, failed=None) -> list[TableSchema]:
        """The tables of a saved comparison (`result.TableSchema`); `spec` and `failed` are meta.json's."""
        runs, trials = run_count(spec, failed), spec.get("trials")
        known = runs is not None and isinstance(trials, int)
        tables = [
            TableSchema("trajectory", {"optimizer": TEXT, "trial": KEY, "step": KEY, "loss": CURVE}),
            TableSchema(
                "metrics",
                {"optimizer": TEXT, "trial": KEY, "final_loss": MEASURE, "diverged": FLAG},
                rows=runs * trials if known else None,
            ),
            TableSchema(
                "rates",
                {"optimizer": TEXT, "measured_rate": MEASURE, "analytic_rate": MEASURE},
                required=False,
            ),
            TableSchema(
                "repro", {"optimizer": TEXT, "comparison": TEXT, "first_step": MEASURE}, required=False
            ),
        ]
        if spec.get("tune"):
            tune = spec["tune"]
            over = {name: KEY for name in tune["over"]}
            cells, starts = tune.get("cells"), tune.get("starts")
            sized = runs is not None and isinstance(cells, int) and isinstance(starts, int)
            tables += [
                TableSchema(
                    "tuning",
                    {"optimizer": TEXT, "cell": KEY, "start": KEY, "final_loss": MEASURE, **over},
                    rows=runs * cells * starts if sized else None,
                ),
                TableSchema("tuned", {"optimizer": TEXT, "score": MEASURE, "starts": KEY, **over}, rows=runs),
            ]
        return tables

    @classmethod
    def load(cls, folder) -> Comparison:
        """The comparison saved in `folder`; raises OptbenchError for a missing, damaged or foreign file."""
        folder = Path(folder)
        meta = read_metadata(folder)
        spec = require_spec(folder, meta, "surface")
        require_tables(folder)
        surface = get_surface(spec["surface"])
        tables = read_tables(folder, meta, cls.schemas(spec, meta.get("failed")))
        tuning = None
        if spec.get("tune"):
            metrics = tables["tuning"]
            cells = cell_scores(metrics, surface, spec["tune"]["over"], spec["tune"]["criterion"])
            tuning = Tuning(metrics, cells, tables["tuned"])
        return cls(
            surface,
            tables["trajectory"],
            tables["metrics"],
            tables["rates"],
            tuning,
            tables["repro"],
            spec,
            meta.get("seed", 0),
            meta.get("failed", {}),
        )

    def plot(self) -> dict:
        """File stem -> matplotlib Figure: trajectories (2-D surfaces), loss, and with tuning the
        lr sensitivity and, for two tuned axes, one heat map per optimizer."""
        figures = {}
        noise = self.meta.get("noise") or 0.0
        if self.surface.dim == 2:
            figures["trajectories"] = plot_trajectories(self.trajectory, self.surface, noise=noise)
        figures["loss"] = plot_loss(self.trajectory, self.surface, rates=self.rates, noise=noise)
        if self.tuning is None:
            return figures
        tune = self.meta["tune"]
        over = tune["over"]
        if "lr" in over:
            figures["sensitivity"] = plot_sensitivity(
                sensitivity(self.tuning.cells),
                self.tuning.summary,
                tune["criterion"],
                tune["steps"],
                self.surface.name,
                [axis for axis in over if axis != "lr"],
            )
        if len(over) == 2:
            for name, cells in self.tuning.cells.groupby("optimizer", sort=False):
                stem = "tune_grid_" + "".join(c if c.isalnum() else "_" for c in name)
                # the map colours what the table ranked by: the criterion, or the final loss where no
                # cell met it (the winner was then chosen by final loss)
                value = "score" if np.isfinite(cells["score"]).any() else "loss_score"
                winner = self.tuning.summary[self.tuning.summary["optimizer"] == name].iloc[0]
                metrics = self.tuning.metrics[self.tuning.metrics["optimizer"] == name]
                figures[stem] = plot_grid(
                    cells.assign(steps=tune["steps"]),
                    self.surface,
                    *over,
                    value=value,
                    criterion=tune["criterion"] if value == "score" else "final-loss",
                    best=tuple(winner[axis] for axis in over),
                    stability=stability_edge(metrics, self.surface, *over),
                )
        return figures

    def animation(self) -> bytes:
        """The trajectories as a GIF (2-D surfaces only)."""
        if self.surface.dim != 2:
            raise OptbenchError(
                f"{self.surface.name} has {self.surface.dim} dimensions: only 2-D runs animate"
            )
        return animate(self.trajectory, self.surface, noise=self.meta.get("noise") or 0.0)


def compare(
    optimizers,
    surface: Surface | str = "elliptic",
    *,
    steps: int | None = None,
    start=None,
    trials: int = 1,
    noise: float = 0.0,
    seed: int = 0,
    clip_grad_norm: float | None = None,
    tune: TuningPlan | None = None,
    check_repro: bool = False,
    tolerance: float = RELATIVE_TOLERANCE,
    progress: Callable[[Progress], None] | None = None,
    allow_long: bool = False,
    threads: int | None = None,
) -> Comparison:
    """Run each optimizer from the same starts for the same steps; returns a `Comparison`.

    optimizers: specs or their text ("sgd", "adam:lr=0.5"); unset learning rates take the surface's
    defaults (the surface task's `default_hparams`), or with `tune` the winners of the tuning.
    start: a point (one coordinate per dimension) or None: the surface's start, or with trials > 1
    seeded random starts in the middle half of the plot window.
    noise: std of Gaussian noise added to every gradient coordinate (seeded).
    clip_grad_norm: None leaves gradients alone; a number clips each trial's gradient to that norm.
    tolerance: relative; a run has converged ("steps to tol") once f - f_min <= tolerance (f(its own start)
    - f_min). metrics has the absolute value per trial (`tolerance`) and the gradient evaluations spent
    (`gradient_evaluations`, `evaluations_to_tolerance`: LBFGS evaluates several per step).
    progress: called with a `Progress` per optimizer (steps taken of steps) while the comparison runs.
    allow_long: run even when the work estimate exceeds `budget.WORK_LIMIT` coordinate-steps.
    threads: torch threads for the runs (None: torch's current count); recorded as meta["threads"].
    Raises OptbenchError for a repeated label, trials < 1, a start of the wrong dimension, a tolerance
    outside (0, 1), a bad setting, a run whose memory estimate exceeds what this machine has available,
    or (unless `allow_long`) whose work estimate exceeds `budget.WORK_LIMIT`.
    """
    specs, surface = as_specs(optimizers), as_surface(surface)
    steps = check_run_settings(surface, steps, seed, noise, clip_grad_norm)
    point = check_start(surface, start)
    check_count("trials", trials, 1)
    check_relative_tolerance(tolerance)
    runs = len(specs) * (1 + 2 * bool(check_repro))
    require_surface_budget(
        f"{len(specs)} optimizer(s) x {trials:,} trial(s) x {steps:,} steps on {surface.name}",
        surface,
        trials,
        steps,
        runs,
        allow_long,
    )
    if tune is not None:
        require_surface_budget(
            f"tuning {tune.cells:,} cells x {tune.starts} starts x {steps:,} steps on {surface.name}",
            surface,
            tune.cells * tune.starts,
            steps,
            len(specs),
            allow_long,
        )
    with torch_threads(threads) as used:
        labels = [spec.name for spec in specs]

        failed = {}  # label -> the one line its run failed with (a user's class that raises)
        tuning = None
        if tune is not None:
            tuning_starts = random_starts(surface, tune.starts, seed + TUNING_SEED_OFFSET)
            tuned = []
            for spec in specs:
                with recorded_failure(spec, failed):
                    tuned.append(
                        run_tuning(
                            spec,
                            surface,
                            tuning_starts,
                            steps,
                            tune.axes,
                            noise=noise,
                            seed=seed,
                            clip_grad_norm=clip_grad_norm,
                            relative_tolerance=tolerance,
                        )
                    )
            check_some_finished(tuned, failed)
            specs = [spec for spec in specs if spec.name not in failed]
            metrics = pd.concat(tuned, ignore_index=True)
            tuning = summarise(metrics, surface, list(tune.over), tune.criterion)
            winners = tuning.summary.set_index("optimizer")
            specs = [
                tuned_spec(spec, {name: float(winners.loc[spec.name, name]) for name in tune.over})
                for spec in specs
            ]

        starts = (
            random_starts(surface, trials, seed)
            if trials > 1 and point is None
            else fixed_starts(surface, point, trials)
        )

        def compare_once(device="cpu", report=None) -> list:
            runs = []
            for spec in specs:
                if spec.name in failed:
                    continue
                torch.manual_seed(seed)
                with recorded_failure(spec, failed):
                    runs.append(
                        run_surface(
                            spec,
                            surface,
                            starts,
                            steps,
                            noise=noise,
                            seed=seed,
                            clip_grad_norm=clip_grad_norm,
                            device=device,
                            relative_tolerance=tolerance,
                            progress=report and (lambda t, name=spec.name: report(Progress(name, t, steps))),
                        )
                    )
            return runs

        runs = compare_once(report=progress)
        check_some_finished(runs, failed)
        specs = [spec for spec in specs if spec.name not in failed]
        trajectory = pd.concat([run.trajectory for run in runs], ignore_index=True)
        metrics = pd.concat([run.metrics for run in runs], ignore_index=True)
        hparams = {
            spec.name: (spec.family, spec.resolved(surface_task(surface).default_hparams(spec)))
            for spec in specs
        }
        rates = rate_table(trajectory, surface, hparams, noise) if surface.hessian_eigenvalues else None
        repro = _reproducibility(trajectory, compare_once) if check_repro else None
        meta = {
            "surface": surface.name,
            "optimizers": labels,
            "steps": steps,
            "trials": trials,
            "start": list(point) if point else (list(surface.start) if trials == 1 else "random"),
            "noise": noise,
            "threads": used,
            "record_every": max(run.record_every for run in runs),
            "relative_tolerance": tolerance if surface.minimum_value is not None else None,
            "tolerance": float(
                metrics["tolerance"].iloc[0]
            )  # absolute, where every trial starts at one point
            if surface.minimum_value is not None and (trials == 1 or point is not None)
            else None,
            "clip_grad_norm": clip_grad_norm,
            "resolved": {
                name: {k: v for k, v in h.items() if isinstance(v, (int, float, bool, str, tuple))}
                for name, (_, h) in hparams.items()
            },
            "tune": tune.meta(steps) if tune else None,
            "check_repro": repro.to_dict("records") if repro is not None else None,
            "per_trial": [spec.name for spec, run in zip(specs, runs, strict=False) if run.per_trial],
            "origins": {spec.name: spec.origin.as_dict() for spec in specs if spec.origin is not None},
            "untuned_defaults": {
                spec.name: reason
                for spec in specs
                if (reason := surface_task(surface).untuned_default(spec)) is not None
            },
        }
        return Comparison(surface, trajectory, metrics, rates, tuning, repro, meta, seed, failed)


def _reproducibility(trajectory: pd.DataFrame, compare_once) -> pd.DataFrame:
    """Run again (and on CUDA where available); one row per optimizer and pair: where they first differ."""
    columns = [
        c for c in trajectory.columns if c in ("x", "y", "loss") or (c.startswith("x") and c[1:].isdigit())
    ]

    def again(device="cpu"):
        return pd.concat([run.trajectory for run in compare_once(device)], ignore_index=True)

    reports = [compare_runs(trajectory, again(), CPU_RUNS, columns)]
    if torch.cuda.is_available():
        reports.append(compare_runs(trajectory, again("cuda"), CPU_VS_CUDA, columns))
    return pd.concat(reports, ignore_index=True)
