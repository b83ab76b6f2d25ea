"""`optbench sweep --batch-size 16,64,256 --lr-scale linear`: batch-size x lr-scaling studies.

Every cell (one setting, one seed) is saved the moment it finishes; rerunning the same command
skips finished cells. Any optimizer hyperparameter may be given as a comma list (`--momentum
0,0.9`) and becomes another grid axis. `--config sweep.yaml` holds the same options (keys are the
option names, `batch_size` or `batch-size`; extra hyperparameters under `hparams:`); flags given
on the command line override it.
"""

from __future__ import annotations

import math

import rich_click as click
from rich.table import Table

from ..budget import MAX_SEED, require_rows
from ..tasks.defaults import SWEEP as DEFAULTS  # the API's defaults (SweepSpec's), shown by --help
from ..tasks.problem import TaskKind
from .common import (
    ProgressBars,
    console,
    console_err,
    format_number,
    formats_option,
    out_option,
    parse_formats,
    print_table,
)
from .sweep_options import build_spec, parse_shard, resolve_options


@click.command("sweep", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="A YAML file with the same options; command-line flags override it.",
)
@click.option(
    "--batch-size",
    default=",".join(map(str, DEFAULTS["batch_sizes"])),
    show_default=True,
    help="Batch sizes, comma-separated.",
)
@click.option(
    "--lr-scale",
    default=",".join(DEFAULTS["lr_scales"]),
    show_default=True,
    help="lr-scaling rules, comma-separated: linear (lr·B/B0), sqrt (lr·√(B/B0)), none, tuned (the best of "
    "lr·√(B/B0)·2^k, k=-2..2, per batch size: what the critical batch size model describes).",
)
@click.option(
    "--optimizer",
    "optimizers",
    multiple=True,
    default=DEFAULTS["optimizers"],
    show_default=True,
    help="Optimizer spec; repeat for several (e.g. --optimizer sgd --optimizer adam).",
)
@click.option(
    "--task",
    default=DEFAULTS["task"],
    show_default=True,
    help="A task `optbench list` shows with `sweep`: digits, mnist, fashion-mnist, cifar10 (--data-dir), "
    "linreg (= regression), or surface:NAME.",
)
@click.option(
    "--model", default=DEFAULTS["model"], show_default=True, help="Model for image tasks: mlp, lenet, resnet."
)
@click.option("--data-dir", default=None, help="Folder with MNIST/Fashion-MNIST/CIFAR-10 files.")
@click.option(
    "--base-lr",
    type=float,
    default=None,
    help="The lr at --base-batch-size (default: the optimizer spec's lr, else the task's default).",
)
@click.option(
    "--base-batch-size", type=int, default=None, help="B0 of the scaling rules (default: smallest batch)."
)
@click.option(
    "--warmup-epochs",
    type=int,
    default=DEFAULTS["warmup_epochs"],
    show_default=True,
    help="Linear lr warm-up (training tasks).",
)
@click.option("--epochs", type=int, default=None, help="Epochs per cell (instead of --steps).")
@click.option(
    "--steps",
    type=int,
    default=None,
    help=f"Optimizer steps per cell, the same for every batch size (training default {DEFAULTS['training_steps']}).",
)
@click.option(
    "--seeds",
    type=int,
    default=DEFAULTS["seeds"],
    show_default=True,
    help="Seeds per setting: seed, seed+1, ...",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=DEFAULTS["seed"],
    show_default=True,
    help="First seed.",
)
@click.option(
    "--target-accuracy",
    type=float,
    default=None,
    help="Count steps until validation accuracy reaches this (default: the task's target; 0.9 for image tasks).",
)
@click.option(
    "--target-loss", type=float, default=None, help="Count steps until the evaluated loss falls to this."
)
@click.option(
    "--evaluations",
    type=int,
    default=None,
    help=f"Image tasks: validation evaluations per cell, evenly spaced (default {DEFAULTS['evaluations']}; "
    "every step for shorter budgets).",
)
@click.option(
    "--noise",
    type=float,
    default=DEFAULTS["noise"],
    show_default=True,
    help="surface tasks: per-sample gradient noise std (batch B divides the variance by B).",
)
@click.option(
    "--device",
    default=DEFAULTS["device"],
    show_default=True,
    help="auto, cpu, cuda, cuda:N (training tasks).",
)
@click.option("--jobs", type=int, default=1, show_default=True, help="Cells run in this many processes.")
@click.option(
    "--threads",
    type=int,
    default=DEFAULTS["threads"],
    show_default=True,
    help="torch threads per cell; fixed so that any --jobs gives the same numbers.",
)
@click.option(
    "--shard", default=None, metavar="I/N", help="Run only shard I of N (1-based), e.g. for an array job."
)
@click.option("--force", is_flag=True, help="Run a changed spec in an existing --out; redo corrupt cells.")
@formats_option
@out_option
@click.pass_context
def command(ctx, config_path, **flags):
    """Sweep batch sizes and lr-scaling rules; steps to target, critical batch size, plots.

    Extra hyperparameters are grid axes: `--momentum 0,0.9`, `--weight-decay 0,5e-4`, `--lr 0.01,0.1`
    (an lr list replaces --base-lr).
    """
    options = resolve_options(ctx, config_path, flags)
    spec = build_spec(options)
    from ..cells import Interrupted
    from ..plots.style import save_figures
    from ..sweeps import SweepPlan

    steps = spec.resolved_steps() or spec.epochs  # an epoch is at least one step
    if spec.kind is not TaskKind.SURFACE and steps:  # per-step rows, `jobs` cells at once
        require_rows(
            f"{options['jobs']} sweep cell(s) of at least {steps:,} steps at once", options["jobs"] * steps
        )
    formats = parse_formats(options["formats"])
    shard = parse_shard(options["shard"])
    plan = SweepPlan.prepare(spec, options["out"], options["jobs"], shard, options["force"])
    try:
        with ProgressBars() as bars:
            result = plan.run(bars)
    except Interrupted as stop:
        console_err.print(
            f"[bold red]stopped by {stop}:[/] {stop.finished} of {stop.total} cell(s) finished "
            "and kept; rerun the same command to resume",
            highlight=False,
            soft_wrap=True,
        )
        ctx.exit(stop.exit_code)
    result.save()
    written = save_figures(result.plot(), result.folder, formats)

    console_err.print(
        f"{len(result.computed)} cell(s) computed, {len(result.skipped)} already finished "
        f"(skipped), {len(result.failed)} failed; {len(result.cells)} in this "
        f"{'shard' if shard != (1, 1) else 'sweep'}"
        + (
            f"; {len(result.shared)} of the computed copied the run of a cell with the same settings"
            if result.shared
            else ""
        )
    )
    if not result.summary.empty:
        print_table(summary_table(result.summary, spec))
        for line in critical_lines(result.critical):
            console.print(line)
    for path in written:
        if path.suffix != ".parquet":
            console.print(f"wrote {path}")
    console.print(f"results in {result.folder}")
    for key, error in result.failed.items():
        console_err.print(f"[bold red]cell {key} failed:[/] {error}", highlight=False, soft_wrap=True)
    if result.failed:
        ctx.exit(1)


# --- reporting --------------------------------------------------------------------------------


def summary_table(summary, spec) -> Table:
    from ..sweeps.columns import grid_columns

    if "lr_chosen" in summary:  # a `tuned` rule's grid: the chosen lr at each batch size
        summary = summary[summary["lr_chosen"]]
    seeds = summary["seed"].nunique()
    target_accuracy, target_loss = spec.resolved_targets()
    targets = [
        f"accuracy >= {target_accuracy:g}" if target_accuracy is not None else "",
        f"loss <= {target_loss:g}" if target_loss is not None else "",
    ]
    target = " and ".join(t for t in targets if t) or "no target given"
    title = f"sweep on {spec.task}: target {target}" + (f" (median of {seeds} seeds)" if seeds > 1 else "")
    table = Table(title=title, title_justify="left", pad_edge=False)
    has_accuracy = summary["final_accuracy"].notna().any()
    has_target = target_accuracy is not None or target_loss is not None
    # Short two-line headings keep every column readable in an 80-column terminal; without a target
    # the →target columns would only say "never". samples/s and the rest are in summary.parquet.
    columns = [
        "optimizer",
        "rule",
        "B",
        "lr",
        "final\nacc" if has_accuracy else "final\nloss",
        *(["steps\n→target", "samples\n→target"] if has_target else []),
        "time\n(s)",
        "diverged",
    ]
    widths = {"B": 4, "lr": 6, "final\nloss": 8}
    for column in columns:
        width = max(max(map(len, column.split("\n"))), widths.get(column, 0))
        table.add_column(
            column,
            justify="left" if column in ("optimizer", "rule") else "right",
            no_wrap=True,
            min_width=width,
        )
    extra = grid_columns(summary)
    for keys, rows in summary.groupby(
        ["optimizer", *extra, "lr_scale", "batch_size"], sort=False, dropna=False
    ):
        keys = keys if isinstance(keys, tuple) else (keys,)
        label = keys[0] + "".join(f" {name}={value}" for name, value in zip(extra, keys[1:-2], strict=False))
        reached = rows["steps_to_target"].notna().all()
        missed = rows["target_outcome"].iloc[0] if "target_outcome" in rows and not reached else "never"
        to_target = [
            # whole steps: the first step at or after the crossing interpolated between evaluations
            str(math.ceil(rows["steps_to_target"].median())) if reached else missed,
            format_number(round(rows["samples_to_target"].median())) if reached else "-",
        ]
        table.add_row(
            label,
            keys[-2],
            str(keys[-1]),
            format_number(rows["lr"].iloc[0]),
            format_number(rows["final_accuracy" if has_accuracy else "final_loss"].median()),
            *(to_target if has_target else []),
            format_number(rows["wall_time"].median()),
            f"{int(rows['diverged'].sum())}/{len(rows)}" if rows["diverged"].any() else "no",
        )
    return table


def critical_lines(critical) -> list[str]:
    if critical.empty:
        return [
            (
                "critical batch size: no target given or too few batch sizes reached it "
                "(give --target-accuracy or --target-loss)"
            )
        ]
    lines = []
    for _, row in critical.iterrows():
        if row["lr_scale"] != "best rule":
            continue
        if not row["fit_status"].startswith("fitted"):
            lines.append(
                f"critical batch size ({row['optimizer']}, best rule per batch size): none: "
                f"{row['fit_status']} ({row['points']} batch sizes reached the target)"
            )
            continue
        lines.append(
            f"critical batch size ({row['optimizer']}, best rule per batch size): "
            f"{format_number(row['critical_batch_size'])} (95% interval "
            + (
                f"{format_number(row['critical_low'])}-{format_number(row['critical_high'])}); "
                if math.isfinite(row["critical_high"])
                else f"from {format_number(row['critical_low'])}, not identifiable above it from these points); "
            )
            + f"S_min ~ {format_number(row['s_min'])} steps, E_min ~ {format_number(row['e_min'])} samples"
        )
    row = critical.iloc[0]
    low, high = row.get("noise_scale_start_low"), row.get("noise_scale_start_high")
    if low is None or low != low:
        interval = ""
    elif math.isfinite(high):
        interval = f" (95% interval {format_number(low)}-{format_number(high)})"
    else:
        interval = f" (95% interval from {format_number(low)}, not identifiable above it from these batches)"
    seeds = row.get("noise_seeds")
    over = f"mean over {int(seeds)} seeds" if seeds == seeds and seeds and seeds > 1 else "one seed"
    lines.append(
        f"gradient noise scale B_simple at the base batch size ({over}): "
        f"{format_number(row['noise_scale_start'])}{interval} at the start, "
        f"{format_number(row['noise_scale_end'])} at the end (median over its cells)"
    )
    lines.append(f"[dim]critical batch: {row['method']}. noise scale: {row['noise_method']}.[/]")
    return lines
