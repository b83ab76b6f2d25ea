"""`optbench compare sgd adam rmsprop --surface elliptic`: trajectories side by side, table and plots."""

from __future__ import annotations

import rich_click as click
from rich.table import Table

from ..errors import OptbenchError
from ..results import output_folder, write_metadata, write_table
from ..specs import parse_optimizer
from .common import console, console_err, format_number, formats_option, out_option, parse_formats, seed_option
from .surface_options import resolve_surface, start_tensor, surface_options


@click.command("compare")
@click.argument("optimizers", nargs=-1, required=True)
@surface_options
@click.option("--trials", type=int, default=1, show_default=True,
              help="Runs per optimizer; more than one starts at seeded random points (unless --start).")
@seed_option
@formats_option
@click.option("--animate", is_flag=True, help="Also write trajectories.gif.")
@out_option
def command(optimizers, surface, steps, start, noise, trials, seed, formats, animate, out):
    """Run each optimizer on a surface and compare trajectories, losses and metrics.

    OPTIMIZERS are specs such as `sgd`, `adam:lr=0.5,betas=0.9/0.99`, `momentum`, or `torch:adam`
    for torch.optim's own class. Unset learning rates take the surface's built-in defaults.
    """
    import pandas as pd
    import torch

    from ..runners.surface import random_starts, run_surface

    specs = [parse_optimizer(text) for text in optimizers]
    resolved, steps, point = resolve_surface(surface, steps, start, noise)
    if trials < 1:
        raise OptbenchError(f"--trials must be >= 1, got {trials}")
    formats = parse_formats(formats)
    labels = [spec.name for spec in specs]
    if len(set(labels)) != len(labels):
        raise OptbenchError("each optimizer may be given once (add a setting to tell two apart)")
    folder = output_folder(out, "compare")

    if trials > 1 and point is None:
        starts = random_starts(resolved, trials, seed)
    else:
        starts = start_tensor(resolved, point, trials)
    runs = []
    for spec in specs:
        torch.manual_seed(seed)
        runs.append(run_surface(spec, resolved, starts, steps, noise=noise, seed=seed))
    trajectory = pd.concat([run.trajectory for run in runs], ignore_index=True)
    metrics = pd.concat([run.metrics for run in runs], ignore_index=True)
    write_table(trajectory, folder / "trajectory.parquet")
    write_table(metrics, folder / "metrics.parquet")
    write_metadata(folder, "compare", {
        "surface": resolved.name, "optimizers": labels, "steps": steps, "trials": trials,
        "start": list(point) if point else (list(resolved.start) if trials == 1 else "random"),
        "noise": noise, "record_every": max(run.record_every for run in runs),
        "tolerance": resolved.tolerance,
        "per_trial": [spec.name for spec, run in zip(specs, runs) if run.per_trial]}, seed)
    console.print(metrics_table(metrics, resolved, steps))
    for spec, run in zip(specs, runs):
        if run.per_trial:
            console_err.print(f"note: {spec.name} reduces across a tensor, so each trial ran as its own "
                              "parameter and optimizer (exact, slower)")

    from ..plots.surfaces import draw_compare
    for path in draw_compare(folder, trajectory, resolved, formats, gif=animate):
        console.print(f"wrote {path}")
    console.print(f"results in {folder}")


def metrics_table(metrics, surface, steps) -> Table:
    trials = metrics["trial"].nunique()
    suffix = f" (median of {trials} trials)" if trials > 1 else ""
    table = Table(title=f"{surface.name}, {steps} steps{suffix}", title_justify="left")
    for column in ("optimizer", "settings", "final loss", "distance to min", "steps to tol",
                   "path length", "diverged"):
        label = column in ("optimizer", "settings")
        table.add_column(column, justify="left" if label else "right", no_wrap=column == "optimizer")
    for name, runs in metrics.groupby("optimizer", sort=False):
        diverged = int(runs["diverged"].sum())
        reached = runs["steps_to_tolerance"].notna().sum()
        table.add_row(
            name, runs["settings"].iloc[0], format_number(runs["final_loss"].median()),
            format_number(runs["distance_to_minimum"].median()),
            format_number(runs["steps_to_tolerance"].median()) if reached else "never",
            format_number(runs["path_length"].median()),
            (f"{diverged}/{trials}" if trials > 1 else f"step {int(runs['diverged_at'].iloc[0])}")
            if diverged else "no")
    return table
