"""The fair-comparison parts of `optbench compare`: --tune, --check-repro and --surface linreg.

Kept apart from compare.py so that the plain comparison stays readable; only the CLI calls these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from rich.table import Table

from ..errors import OptbenchError
from ..results import output_folder, write_metadata, write_table
from ..specs import parse_number_list, parse_range
from .common import console, console_err, format_number

TUNING_SEED_OFFSET = 1   # tuning starts come from seed + 1, so they differ from the comparison's starts


@dataclass
class TuningPlan:
    names: list
    axes: dict
    ranges: dict
    starts: int
    criterion: str

    def meta(self, steps: int) -> dict:
        cells = math.prod(len(values) for values in self.axes.values())
        return {"over": self.names, "ranges": self.axes, "range_text": self.ranges, "starts": self.starts,
                "criterion": self.criterion, "steps": steps, "cells": cells,
                "gradient_evaluations_per_optimizer": cells * self.starts * steps}


def plan_tuning(specs, surface, tune_over: str, tune_range, tune_starts: int, criterion: str) -> TuningPlan:
    """Every --tune mistake as one line, before any work."""
    from ..runners.tuning import check_tunable, tuning_axes

    names = [name.strip() for name in tune_over.split(",")]
    if any(not name for name in names):
        raise OptbenchError(f"malformed --tune-over '{tune_over}': expected names such as lr,momentum")
    ranges = {}
    for item in tune_range:
        name, eq, text = item.partition("=")
        if not eq or not name.strip():
            raise OptbenchError(f"malformed --tune-range '{item}': expected NAME=START:STOP:NUM")
        ranges[name.strip()] = text
    if tune_starts < 1:
        raise OptbenchError(f"--tune-starts must be >= 1, got {tune_starts}")
    if criterion == "steps-to-tol" and surface.tolerance is None:
        raise OptbenchError(f"{surface.name} has no known minimum, so no tolerance: use --criterion final-loss")
    for spec in specs:   # a name the optimizer lacks is the clearer message: check it first
        check_tunable(spec, names)
    axes = tuning_axes(names, ranges)
    return TuningPlan(names, axes, ranges, tune_starts, criterion)


def run_tuning(specs, surface, steps, plan: TuningPlan, noise, seed, clip_grad_norm, folder):
    """Tune every optimizer on the same grid and starts; returns (Tuning, the specs at their winners)."""
    from ..runners.surface import random_starts
    from ..runners.tuning import summarise, tune, tuned_spec

    starts = random_starts(surface, plan.starts, seed + TUNING_SEED_OFFSET)
    cells = math.prod(len(v) for v in plan.axes.values())
    console_err.print(f"tuning {', '.join(plan.names)}: {cells} cells x {plan.starts} starts x {steps} steps "
                      f"per optimizer, each grid one batched tensor", highlight=False)
    metrics = pd.concat([tune(spec, surface, starts, steps, plan.axes, noise=noise, seed=seed,
                              clip_grad_norm=clip_grad_norm) for spec in specs], ignore_index=True)
    tuning = summarise(metrics, surface, plan.names, plan.criterion)
    write_table(metrics, folder / "tuning.parquet")
    write_table(tuning.summary, folder / "tuned.parquet")
    winners = tuning.summary.set_index("optimizer")
    tuned = [tuned_spec(spec, {name: float(winners.loc[spec.name, name]) for name in plan.names}) for spec in specs]
    return tuning, tuned


def tuning_table(tuning, plan: TuningPlan, surface, steps) -> Table:
    cells = int(tuning.summary["cells"].iloc[0])
    title = (f"tuning on {surface.name}: the same {cells} cells x {plan.starts} starts x {steps} steps for "
             f"every optimizer; criterion {plan.criterion} (median over starts, lowest wins)")
    table = Table(title=title, title_justify="left")
    for column in ("optimizer", "winner", plan.criterion, "converged (starts)", "lr converging", "note"):
        table.add_column(column, justify="left" if column in ("optimizer", "winner", "note") else "right")
    for row in tuning.summary.itertuples(index=False):
        winner = ", ".join(f"{name}={format_number(getattr(row, name))}" for name in plan.names)
        if math.isfinite(row.score):
            score = format_number(row.score)
        else:
            score = "never reached" if plan.criterion == "steps-to-tol" else "diverged"
        low, high = row.lr_converging_low, row.lr_converging_high
        lr_range = (f"{low:.3g} - {high:.3g}" if low == low else "none") if "lr" in plan.names else "-"
        table.add_row(row.optimizer, winner, score, f"{row.reached}/{row.starts}", lr_range, row.note or "")
    return table


def check_reproducibility(runs, compare_once, folder) -> list:
    """Run again (and on CUDA where available); print and save where each pair first differs."""
    import torch

    from ..runners.repro import compare_runs

    columns = [c for c in runs[0].trajectory.columns if c in ("x", "y", "loss") or
               (c.startswith("x") and c[1:].isdigit())]
    first = pd.concat([run.trajectory for run in runs], ignore_index=True)
    second = pd.concat([run.trajectory for run in compare_once()], ignore_index=True)
    reports = [compare_runs(first, second, "cpu run 1 vs run 2", columns)]
    if torch.cuda.is_available():
        gpu = pd.concat([run.trajectory for run in compare_once("cuda")], ignore_index=True)
        reports.append(compare_runs(first, gpu, "cpu vs cuda", columns))
    else:
        console_err.print("no GPU here: CPU vs GPU not checked", highlight=False)
    report = pd.concat(reports, ignore_index=True)
    write_table(report, folder / "repro.parquet")
    table = Table(title="reproducibility: first recorded step at which the trajectories differ",
                  title_justify="left")
    for column in ("optimizer", "comparison", "first differing step", "difference there", "max difference"):
        table.add_column(column, justify="left" if column in ("optimizer", "comparison") else "right")
    for row in report.itertuples(index=False):
        same = row.first_step is None or row.first_step != row.first_step
        table.add_row(row.optimizer, row.comparison, f"identical for all {row.steps} steps" if same
                      else str(int(row.first_step)), "-" if same else f"{row.difference_there:.3g}",
                      f"{row.max_difference:.3g}")
    console.print(table)
    return report.to_dict("records")


def run_linreg(specs, steps, seeds, batch_sizes, floor_lrs, seed, formats, out) -> None:
    """Stochastic linear regression against its exact optimum: f - f* per step, and the noise floor."""
    from ..plots.fair import draw_regression
    from ..runners.regression import least_squares, make_linear_data, minibatch_runs, sgd_noise_floor

    steps = 2000 if steps is None else steps
    if steps < 2:
        raise OptbenchError(f"--steps must be >= 2 for linreg, got {steps}")
    sizes = parse_number_list(batch_sizes, int, "--batch-size", positive=True)
    lrs = parse_range(floor_lrs, "--floor-lrs")
    data = make_linear_data(seed=seed)
    if max(sizes) > len(data.y):
        raise OptbenchError(f"--batch-size {max(sizes)} is larger than the {len(data.y)} samples")
    for spec in specs:
        if spec.use_torch:
            raise OptbenchError(f"{spec.name}: linreg runs every lr and seed as one tensor, which torch.optim "
                                "does not accept; use ours (certified equal)")
    folder = output_folder(out, "compare")
    solution = least_squares(data)

    def theory(spec, lr, batch):
        plain = (spec.family == "sgd" and not spec.resolved().get("momentum") and not spec.resolved().get("nesterov")
                 and not spec.resolved().get("weight_decay") and not spec.resolved().get("dampening"))
        return sgd_noise_floor(data, lr, batch) if plain else math.nan

    curves, floors = [], []
    for spec in specs:
        lr = float(spec.resolved({"lr": 0.03})["lr"])
        for batch in sizes:
            run = minibatch_runs(spec, data, [lr], batch, steps, seeds=seeds, seed=seed,
                                 record_every=max(1, steps // 400))
            curves.append(run.assign(theory_floor=theory(spec, lr, batch)))
            grid = minibatch_runs(spec, data, lrs, batch, steps, seeds=seeds, seed=seed,
                                  record_every=max(1, steps // 200), from_optimum=True)
            late = grid[grid["step"] >= steps / 2]
            for value, cell in late.groupby("lr", sort=True):
                diverged = bool(grid[grid["lr"] == value]["diverged"].any())
                floors.append({"optimizer": spec.name, "family": spec.family, "batch_size": batch, "lr": value,
                               "measured": math.nan if diverged else float(cell["suboptimality"].mean()),
                               "theory": theory(spec, value, batch), "diverged": diverged})
    curves, floors = pd.concat(curves, ignore_index=True), pd.DataFrame(floors)
    write_table(curves, folder / "suboptimality.parquet")
    write_table(floors, folder / "noise_floor.parquet")
    write_metadata(folder, "compare", {"surface": "linreg", "optimizers": [s.name for s in specs], "steps": steps,
                                       "seeds": seeds, "batch_sizes": sizes, "floor_lrs": lrs,
                                       "least_squares": solution, "sampling": "with replacement"}, seed)
    table = Table(title=f"stochastic linear regression (1,000 samples, f* = {solution['loss']:.3g}): f - f* "
                        f"settled over steps {steps // 2}-{steps}, mean of {seeds} seed(s)", title_justify="left")
    for column in ("optimizer", "lr", "batch size", "settled f - f*", "exact SGD floor", "ratio"):
        table.add_column(column, justify="left" if column == "optimizer" else "right")
    for spec in specs:
        lr = float(spec.resolved({"lr": 0.03})["lr"])
        for batch in sizes:
            run = curves[(curves["optimizer"] == spec.name) & (curves["batch_size"] == batch)]
            settled = run[run["step"] >= steps / 2]["suboptimality"].mean()
            floor = run["theory_floor"].iloc[0]
            table.add_row(spec.name, format_number(lr), str(batch), format_number(settled),
                          format_number(floor) if floor == floor else "-",
                          f"{settled / floor:.2f}" if floor == floor and floor > 0 else "-")
    console.print(table)
    for path in draw_regression(folder, curves, floors, formats):
        console.print(f"wrote {path}")
    console.print(f"results in {folder}")
