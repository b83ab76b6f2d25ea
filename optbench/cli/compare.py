"""`optbench compare sgd adam rmsprop --surface elliptic`: trajectories side by side, table and plots.

With `--tune`, each optimizer is first tuned at an equal budget (`optbench.runners.tuning`);
with `--check-repro`, the comparison is run again (and on the GPU where there is one) and the first
differing step is reported; `--surface linreg` is the stochastic regression problem with a known optimum.
"""

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
@click.option("--tune", is_flag=True,
              help="First tune each optimizer on the same grid, starts and steps (an equal budget).")
@click.option("--tune-over", default="lr", show_default=True,
              help="Comma-separated hyperparameters to tune, e.g. lr,momentum (each must exist for every optimizer).")
@click.option("--tune-range", multiple=True, metavar="NAME=START:STOP:NUM",
              help="Override a tuning range (defaults: lr 1e-4:100:49 log, momentum 0:0.99:12, ...).")
@click.option("--tune-starts", type=int, default=5, show_default=True,
              help="Seeded random starts every tuning cell runs from (the score is their median).")
@click.option("--criterion", type=click.Choice(["final-loss", "steps-to-tol"]), default="final-loss",
              show_default=True, help="What tuning minimises.")
@click.option("--clip-grad-norm", type=float, default=None,
              help="Clip each run's gradient to this norm (off unless given; recorded in the results).")
@click.option("--check-repro", is_flag=True,
              help="Run the comparison twice (and on CPU vs GPU where present); report the first differing step.")
@click.option("--batch-size", "batch_sizes", default="1,10,100", show_default=True,
              help="--surface linreg: mini-batch sizes to compare.")
@click.option("--floor-lrs", default="1e-3:0.3:8", show_default=True,
              help="--surface linreg: learning rates for the noise-floor plot, START:STOP:NUM.")
@seed_option
@formats_option
@click.option("--animate", is_flag=True, help="Also write trajectories.gif.")
@out_option
def command(optimizers, surface, steps, start, noise, trials, tune, tune_over, tune_range, tune_starts, criterion,
            clip_grad_norm, check_repro, batch_sizes, floor_lrs, seed, formats, animate, out):
    """Run each optimizer on a surface and compare trajectories, losses and metrics.

    OPTIMIZERS are specs such as `sgd`, `adam:lr=0.5,betas=0.9/0.99`, `momentum`, or `torch:adam`
    for torch.optim's own class. Unset learning rates take the surface's built-in defaults, or with
    `--tune` the winners of an equal-budget search. `--surface linreg` runs stochastic linear regression
    against its exact least-squares optimum and plots f - f* and the noise floor set by lr and batch size.
    """
    import pandas as pd
    import torch

    from ..runners.surface import default_hparams, random_starts, run_surface
    from ..theory import rate_table

    specs = [parse_optimizer(text) for text in optimizers]
    labels = [spec.name for spec in specs]
    if len(set(labels)) != len(labels):
        raise OptbenchError("each optimizer may be given once (add a setting to tell two apart)")
    if trials < 1:
        raise OptbenchError(f"--trials must be >= 1, got {trials}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise OptbenchError(f"--clip-grad-norm must be > 0, got {clip_grad_norm}")
    formats = parse_formats(formats)
    if surface.strip().lower() == "linreg":
        from .fair import run_linreg
        if tune or check_repro or clip_grad_norm is not None or start:
            raise OptbenchError("--surface linreg takes --steps, --trials (seeds), --batch-size and --floor-lrs only")
        return run_linreg(specs, steps, trials, batch_sizes, floor_lrs, seed, formats, out)

    resolved, steps, point = resolve_surface(surface, steps, start, noise)
    tuning_plan = None
    if tune:
        from .fair import plan_tuning
        tuning_plan = plan_tuning(specs, resolved, tune_over, tune_range, tune_starts, criterion)
    folder = output_folder(out, "compare")

    tuning = None
    if tuning_plan is not None:
        from .fair import run_tuning
        tuning, specs = run_tuning(specs, resolved, steps, tuning_plan, noise, seed, clip_grad_norm, folder)

    if trials > 1 and point is None:
        starts = random_starts(resolved, trials, seed)
    else:
        starts = start_tensor(resolved, point, trials)

    def compare_once(device="cpu"):
        runs = []
        for spec in specs:
            torch.manual_seed(seed)
            runs.append(run_surface(spec, resolved, starts, steps, noise=noise, seed=seed,
                                    clip_grad_norm=clip_grad_norm, device=device))
        return runs

    runs = compare_once()
    trajectory = pd.concat([run.trajectory for run in runs], ignore_index=True)
    metrics = pd.concat([run.metrics for run in runs], ignore_index=True)
    hparams = {spec.name: (spec.family, spec.resolved(default_hparams(resolved, spec.family))) for spec in specs}
    rates = rate_table(trajectory, resolved, hparams) if resolved.hessian_eigenvalues else None
    write_table(trajectory, folder / "trajectory.parquet")
    write_table(metrics, folder / "metrics.parquet")
    if rates is not None:
        write_table(rates, folder / "rates.parquet")
    repro = None
    if check_repro:
        from .fair import check_reproducibility
        repro = check_reproducibility(runs, compare_once, folder)
    write_metadata(folder, "compare", {
        "surface": resolved.name, "optimizers": labels, "steps": steps, "trials": trials,
        "start": list(point) if point else (list(resolved.start) if trials == 1 else "random"),
        "noise": noise, "record_every": max(run.record_every for run in runs),
        "tolerance": resolved.tolerance, "clip_grad_norm": clip_grad_norm,
        "resolved": {name: {k: v for k, v in h.items() if isinstance(v, (int, float, bool, str, tuple))}
                     for name, (_, h) in hparams.items()},
        "tune": tuning_plan.meta(steps) if tuning_plan else None,
        "check_repro": repro,
        "per_trial": [spec.name for spec, run in zip(specs, runs) if run.per_trial]}, seed)
    if tuning is not None:
        from .fair import tuning_table
        console.print(tuning_table(tuning, tuning_plan, resolved, steps))
    console.print(metrics_table(metrics, resolved, steps))
    if rates is not None:
        console.print(rates_table(rates))
        console.print(theory_caption(resolved))
    for spec, run in zip(specs, runs):
        if run.per_trial:
            console_err.print(f"note: {spec.name} reduces across a tensor, so each trial ran as its own "
                              "parameter and optimizer (exact, slower)")

    from ..plots.surfaces import draw_compare
    written = draw_compare(folder, trajectory, resolved, formats, gif=animate, rates=rates)
    if tuning is not None:
        from ..plots.fair import draw_tuning
        written += draw_tuning(folder, tuning, resolved, tuning_plan.names, criterion, steps, formats)
    for path in written:
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


def rates_table(rates) -> Table:
    """Measured linear rate (median over trials) next to the analytic one, per optimizer."""
    table = Table(title="linear convergence rate ρ (‖θ_t - θ*‖ ≈ C ρ^t; fitted over the 2nd half)",
                  title_justify="left")
    for column in ("optimizer", "measured", "analytic", "difference"):
        table.add_column(column, justify="left" if column == "optimizer" else "right")
    for name, rows in rates.groupby("optimizer", sort=False):
        measured, analytic = rows["measured_rate"].median(), rows["analytic_rate"].iloc[0]
        known = analytic == analytic
        table.add_row(name, f"{measured:.4f}", f"{analytic:.4f}" if known else "no formula",
                      f"{(measured - analytic) / analytic:+.2%}" if known else "-")
    return table


def theory_caption(surface) -> str:
    from ..theory import condition_number, optimal_gradient_descent, optimal_heavy_ball

    eigenvalues = surface.hessian_eigenvalues
    gd, hb = optimal_gradient_descent(eigenvalues), optimal_heavy_ball(eigenvalues)
    return (f"theory (λ from {min(eigenvalues):.3g} to {max(eigenvalues):.3g}, k = {condition_number(eigenvalues):.3g}; "
            f"rate = per-step contraction of ‖θ - θ*‖): gradient descent stable for lr < {2 / max(eigenvalues):.3g}, "
            f"best lr {gd['lr']:.3g} -> (k-1)/(k+1) = {gd['rate']:.4f}; heavy ball (torch SGD momentum) "
            f"stable for lr < 2(1+μ)/λ_max, best lr {hb['lr']:.3g}, momentum {hb['momentum']:.3g} -> "
            f"(√k-1)/(√k+1) = {hb['rate']:.4f}")
