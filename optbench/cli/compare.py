"""`optbench compare sgd adam rmsprop --surface elliptic`: parse, call `optbench.compare`, save, print.

`--tune` and `--check-repro` are arguments of the same call; `--surface linreg` calls `optbench.noise_floor`.
"""

from __future__ import annotations

import rich_click as click

from ..errors import OptbenchError
from ..optimizers.registry import check_spec_name
from ..tasks.names import check_compare_name
from .common import (
    ProgressBars,
    allow_long_option,
    console,
    console_err,
    force_option,
    formats_option,
    out_option,
    parse_formats,
    print_table,
    report_failed,
    results_folder,
    seed_option,
    split_assignment,
    threads_option,
    write_figures,
)
from .surface_options import resolve_surface, surface_options


@click.command("compare")
@click.argument("optimizers", nargs=-1, required=True)
@surface_options
@click.option(
    "--trials",
    type=int,
    default=1,
    show_default=True,
    help="Runs per optimizer; more than one starts at seeded random points (unless --start).",
)
@click.option(
    "--tune",
    is_flag=True,
    help="First tune each optimizer on the same grid, starts and steps (an equal budget).",
)
@click.option(
    "--tune-over",
    default="lr",
    show_default=True,
    help="Comma-separated hyperparameters to tune, e.g. lr,momentum (each must exist for every optimizer).",
)
@click.option(
    "--tune-range",
    multiple=True,
    metavar="NAME=START:STOP:NUM",
    help="Override a tuning range (defaults: lr 1e-4:100:49 log, momentum 0:0.99:12, ...).",
)
@click.option(
    "--tune-starts",
    type=int,
    default=5,
    show_default=True,
    help="Seeded random starts every tuning cell runs from (the score is their median).",
)
@click.option(
    "--criterion",
    type=click.Choice(["final-loss", "steps-to-tol"]),
    default="final-loss",
    show_default=True,
    help="What tuning minimises.",
)
@click.option(
    "--tol",
    "tolerance",
    type=float,
    default=1e-6,
    show_default=True,
    help="Converged ('steps to tol') once f - f_min falls below TOL x (f(start) - f_min) of the run's own start.",
)
@click.option(
    "--clip-grad-norm",
    type=float,
    default=None,
    help="Clip each run's gradient to this norm (off unless given; recorded in the results).",
)
@click.option(
    "--check-repro",
    is_flag=True,
    help="Run the comparison twice (and on CPU vs GPU where present); report the first differing step.",
)
@click.option(
    "--batch-size",
    "batch_sizes",
    default="1,10,100",
    show_default=True,
    help="--surface linreg: mini-batch sizes to compare.",
)
@click.option(
    "--floor-lrs",
    default="1e-3:0.3:8",
    show_default=True,
    help="--surface linreg: learning rates for the noise-floor plot, START:STOP:NUM.",
)
@seed_option
@formats_option
@click.option("--animate", is_flag=True, help="Also write trajectories.gif.")
@out_option
@force_option
@allow_long_option
@threads_option
def command(
    optimizers,
    surface,
    steps,
    start,
    noise,
    trials,
    tune,
    tune_over,
    tune_range,
    tune_starts,
    criterion,
    tolerance,
    clip_grad_norm,
    check_repro,
    batch_sizes,
    floor_lrs,
    seed,
    formats,
    animate,
    out,
    force,
    allow_long,
    threads,
):
    """Run each optimizer on a surface and compare trajectories, losses and metrics.

    OPTIMIZERS are specs such as `sgd`, `adam:lr=0.5,betas=0.9/0.99`, `momentum`, or `torch:adam`
    for torch.optim's own class. Unset learning rates take the surface's built-in defaults, or with
    `--tune` the winners of an equal-budget search. `--surface linreg` runs stochastic linear regression
    against its exact least-squares optimum and plots f - f* and the noise floor set by lr and batch size.
    """
    for text in optimizers:
        check_spec_name(text)
    check_compare_name(surface)
    from ..experiments import compare, noise_floor, plan_tuning
    from ..experiments.compare import CPU_VS_CUDA
    from ..experiments.inputs import require_surface_budget
    from ..experiments.noise_floor import DEFAULT_STEPS as LINREG_STEPS
    from ..results import atomic_write_bytes
    from ..specs import parse_optimizer
    from ..tasks import TaskKind, get_compare_task
    from ..values import parse_number_list, parse_range
    from .compare_tables import (
        metrics_table,
        noise_floor_table,
        rates_table,
        repro_table,
        theory_caption,
        tuning_table,
    )

    specs = [parse_optimizer(text) for text in optimizers]
    if trials < 1:
        raise OptbenchError(f"--trials must be >= 1, got {trials}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise OptbenchError(f"--clip-grad-norm must be > 0, got {clip_grad_norm}")
    formats = parse_formats(formats)
    task = get_compare_task(surface)
    if task.kind is TaskKind.REGRESSION:  # linreg: the noise floor against the exact optimum
        if tune or check_repro or clip_grad_norm is not None or start or animate or threads:
            raise OptbenchError(
                "--surface linreg takes --steps, --trials (seeds), --batch-size and --floor-lrs only"
            )
        sizes = parse_number_list(batch_sizes, int, "--batch-size", positive=True)
        lrs = parse_range(floor_lrs, "--floor-lrs")
        with results_folder(out, "compare") as folder:
            study = noise_floor(
                specs,
                steps=LINREG_STEPS if steps is None else steps,
                seeds=trials,
                batch_sizes=sizes,
                floor_lrs=lrs,
                seed=seed,
            )
            study.save(folder, force)
        print_table(noise_floor_table(study))
        write_figures(study.plot(), folder, formats)
        console.print(f"results in {folder}")
        return

    resolved, steps, point = resolve_surface(surface, steps, start, noise)
    if animate and resolved.dim != 2:
        raise OptbenchError(
            f"--animate draws 2-D surfaces only; {resolved.name} has {resolved.dim} dimensions"
        )
    plan = None
    if tune:
        over = [name.strip() for name in tune_over.split(",")]
        if not all(over):
            raise OptbenchError(f"malformed --tune-over '{tune_over}': expected names such as lr,momentum")
        ranges = dict(split_assignment(item, "--tune-range") for item in tune_range)
        if tune_starts < 1:
            raise OptbenchError(f"--tune-starts must be >= 1, got {tune_starts}")
        plan = plan_tuning(specs, resolved, over, ranges, tune_starts, criterion)
    if plan is not None:  # the library checks it too, but this line would be printed first
        require_surface_budget(
            f"tuning {plan.cells:,} cells x {plan.starts} starts x {steps:,} steps on {resolved.name}",
            resolved,
            plan.cells * plan.starts,
            steps,
            len(specs),
            allow_long,
        )
    with results_folder(out, "compare") as folder:
        if plan is not None:
            console_err.print(
                f"tuning {', '.join(plan.over)}: {plan.cells} cells x {plan.starts} starts x {steps} "
                "steps per optimizer, each grid one batched tensor",
                highlight=False,
            )
        with ProgressBars(transient=True) as report:
            result = compare(
                specs,
                resolved,
                steps=steps,
                start=point,
                trials=trials,
                noise=noise,
                seed=seed,
                clip_grad_norm=clip_grad_norm,
                tune=plan,
                check_repro=check_repro,
                tolerance=tolerance,
                progress=report,
                allow_long=allow_long,
                threads=threads,
            )
        result.save(folder, force)

    if result.tuning is not None:
        print_table(tuning_table(result.tuning.summary, result.meta["tune"], resolved))
    print_table(metrics_table(result.metrics, resolved, steps))
    if result.meta["relative_tolerance"] is not None:
        absolute = result.meta["tolerance"]
        console.print(
            f"steps to tol: f - f_min <= {tolerance:g} (f(start) - f_min)"
            + (f" = {absolute:.3g}" if absolute is not None else " of each trial's start"),
            highlight=False,
        )
    if result.rates is not None:
        print_table(rates_table(result.rates))
        console.print(theory_caption(resolved))
    if result.repro is not None:
        print_table(repro_table(result.repro))
        if CPU_VS_CUDA not in set(result.repro["comparison"]):
            console_err.print("no GPU here: CPU vs GPU not checked", highlight=False)
    for name, reason in result.meta.get("untuned_defaults", {}).items():
        console_err.print(
            f"note: {name} keeps its built-in lr, which does not reach the tolerance here: {reason}"
        )
    for name in result.meta["per_trial"]:
        console_err.print(
            f"note: {name} reduces across a tensor, so each trial ran as its own "
            "parameter and optimizer (exact, slower)"
        )
    write_figures(result.plot(), folder, formats)
    if animate and resolved.dim == 2:
        atomic_write_bytes(folder / "trajectories.gif", result.animation())
        console.print(f"wrote {folder / 'trajectories.gif'}")
    console.print(f"results in {folder}")
    report_failed(result.failed)
