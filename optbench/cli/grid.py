"""`optbench grid sgd --surface elliptic --lr 1e-4:1:64 --momentum 0:0.99:64`: parse, call `optbench.grid`,
save, print. The whole grid is one batched tensor; the heat map shows the final loss per cell."""

from __future__ import annotations

import math

import rich_click as click

from ..errors import OptbenchError
from ..optimizers.registry import check_spec_name
from ..tasks.names import check_surface_name
from .common import (
    ProgressBars,
    allow_long_option,
    console,
    console_err,
    force_option,
    format_number,
    formats_option,
    out_option,
    parse_formats,
    results_folder,
    seed_option,
    split_assignment,
    write_figures,
)
from .surface_options import resolve_surface, surface_options


@click.command("grid")
@click.argument("optimizer")
@click.option("--lr", "lr_range", default=None, help="Learning rates START:STOP:NUM[:log|lin].")
@click.option("--momentum", "momentum_range", default=None, help="Momentum values START:STOP:NUM.")
@click.option(
    "--vary",
    multiple=True,
    metavar="NAME=RANGE",
    help="Any other tensor hyperparameter, e.g. beta1=0:0.999:32 or alpha=0.5:0.999:32.",
)
@surface_options
@seed_option
@formats_option
@out_option
@force_option
@allow_long_option
def command(
    optimizer,
    lr_range,
    momentum_range,
    vary,
    surface,
    steps,
    start,
    noise,
    seed,
    formats,
    out,
    force,
    allow_long,
):
    """Map final loss over a grid of two hyperparameters, run as one batched tensor.

    The first axis given is the x axis of the heat map; log-spaced ranges are drawn on log axes.
    """
    check_spec_name(optimizer)
    check_surface_name(surface)
    from ..experiments import grid
    from ..experiments.inputs import check_axes_not_in_spec, require_surface_budget
    from ..specs import parse_optimizer
    from ..values import parse_range, range_parts

    spec = parse_optimizer(optimizer)
    resolved, steps, point = resolve_surface(surface, steps, start, noise)
    formats = parse_formats(formats)
    ranges = {}
    varied = [split_assignment(item, "--vary") for item in vary]
    for name, text in [("lr", lr_range), ("momentum", momentum_range), *varied]:
        if text is not None:
            if name in ranges:
                raise OptbenchError(f"'{name}' given twice")
            ranges[name] = (text, f"--{name}" if name in ("lr", "momentum") else name)
    cells = math.prod(range_parts(text, label)[2] for text, label in ranges.values())
    require_surface_budget(
        f"a grid of {cells:,} cells x {steps:,} steps on {resolved.name}",
        resolved,
        cells,
        steps,
        allow_long=allow_long,
    )
    check_axes_not_in_spec(spec, ranges)
    axes = {name: parse_range(text, label) for name, (text, label) in ranges.items()}
    with results_folder(out, "grid") as folder:
        with ProgressBars(transient=True) as report:
            result = grid(
                spec,
                axes,
                resolved,
                steps=steps,
                start=point,
                noise=noise,
                seed=seed,
                progress=report,
                allow_long=allow_long,
            )
        with console_err.status(f"saving {len(result.metrics):,} cells to {folder}"):
            result.save(folder, force)

    metrics, (x_name, y_name) = result.metrics, result.axes
    console.print(
        f"{spec.name} on {resolved.name}: {len(metrics)} cells ({len(axes[x_name])} {x_name} x "
        f"{len(axes[y_name])} {y_name}), {steps} steps, {int(metrics['diverged'].sum())} diverged"
    )
    best = result.best()
    if best is not None:
        console.print(
            f"best cell: {x_name}={format_number(best[x_name])}, {y_name}={format_number(best[y_name])}"
            f" -> final loss {format_number(best['final_loss'])}"
        )
    with console_err.status(f"drawing the heat map of {len(metrics):,} cells"):
        figures = result.plot()
    with console_err.status(f"writing {', '.join(formats)}"):
        write_figures(figures, folder, formats)
    console.print(f"results in {folder}")
