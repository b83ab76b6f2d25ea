"""`optbench grid sgd --surface elliptic --lr 1e-4:1:64 --momentum 0:0.99:64`: a stability map.

The whole grid is one batched tensor: every cell is a trial, its hyperparameters `[trials, 1]`
tensors, stepped by one optimizer. The heat map shows the final loss per cell, diverged cells marked.
"""

from __future__ import annotations

import rich_click as click

from ..errors import OptbenchError
from ..results import output_folder, write_metadata, write_table
from ..specs import parse_optimizer, parse_range
from .common import console, format_number, formats_option, out_option, parse_formats, seed_option
from .surface_options import resolve_surface, start_tensor, surface_options


@click.command("grid")
@click.argument("optimizer")
@click.option("--lr", "lr_range", default=None, help="Learning rates START:STOP:NUM[:log|lin].")
@click.option("--momentum", "momentum_range", default=None, help="Momentum values START:STOP:NUM.")
@click.option("--vary", multiple=True, metavar="NAME=RANGE",
              help="Any other tensor hyperparameter, e.g. beta1=0:0.999:32 or alpha=0.5:0.999:32.")
@surface_options
@seed_option
@formats_option
@out_option
def command(optimizer, lr_range, momentum_range, vary, surface, steps, start, noise, seed, formats, out):
    """Map final loss over a grid of two hyperparameters, run as one batched tensor.

    The first axis given is the x axis of the heat map; log-spaced ranges are drawn on log axes.
    """
    import torch

    from ..runners.surface import run_surface

    spec = parse_optimizer(optimizer)
    axes = {}
    for name, text in [("lr", lr_range), ("momentum", momentum_range)] + [_split(item) for item in vary]:
        if text is not None:
            if name in axes:
                raise OptbenchError(f"'{name}' given twice")
            axes[name] = parse_range(text, f"--{name}" if name in ("lr", "momentum") else name)
    if len(axes) != 2:
        raise OptbenchError(f"a grid needs exactly two axes (got {len(axes)}): e.g. --lr 1e-4:1:64 --momentum 0:0.99:64")
    resolved, steps, point = resolve_surface(surface, steps, start, noise)
    formats = parse_formats(formats)
    (x_name, x_values), (y_name, y_values) = axes.items()
    folder = output_folder(out, "grid")

    x_grid, y_grid = torch.meshgrid(torch.tensor(x_values, dtype=torch.float64),
                                    torch.tensor(y_values, dtype=torch.float64), indexing="xy")
    grid = {x_name: x_grid.reshape(-1), y_name: y_grid.reshape(-1)}
    trials = x_grid.numel()
    torch.manual_seed(seed)
    run = run_surface(spec, resolved, start_tensor(resolved, point, trials), steps, grid=grid,
                      noise=noise, seed=seed)
    write_table(run.trajectory, folder / "trajectory.parquet")
    write_table(run.metrics, folder / "metrics.parquet")
    write_metadata(folder, "grid", {
        "surface": resolved.name, "optimizer": spec.name, "axes": [x_name, y_name],
        "ranges": {x_name: x_values, y_name: y_values}, "steps": steps,
        "start": list(point or resolved.start), "noise": noise, "record_every": run.record_every,
        "per_trial": run.per_trial}, seed)

    metrics = run.metrics
    finite = metrics[~metrics["diverged"]]
    console.print(f"{spec.name} on {resolved.name}: {trials} cells ({len(x_values)} {x_name} x "
                  f"{len(y_values)} {y_name}), {steps} steps, {int(metrics['diverged'].sum())} diverged")
    if len(finite):
        best = finite.loc[finite["final_loss"].idxmin()]
        console.print(f"best cell: {x_name}={format_number(best[x_name])}, {y_name}={format_number(best[y_name])}"
                      f" -> final loss {format_number(best['final_loss'])}")
    from ..plots.surfaces import draw_grid
    for path in draw_grid(folder, metrics, resolved, [x_name, y_name], formats):
        console.print(f"wrote {path}")
    console.print(f"results in {folder}")


def _split(item: str):
    name, eq, text = item.partition("=")
    if not eq or not name.strip():
        raise OptbenchError(f"malformed --vary '{item}': expected NAME=START:STOP:NUM")
    return name.strip(), text
