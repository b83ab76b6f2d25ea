"""`optbench bench OPT...`: the fair multi-task benchmark (`optbench.bench`), its ranking printed and
its tables, figures and HTML report written to --out."""

from __future__ import annotations

import rich_click as click

from .common import (
    ProgressBars,
    console,
    console_err,
    force_option,
    format_number,
    formats_option,
    out_option,
    parse_formats,
    print_table,
    results_folder,
    seed_option,
)


@click.command("bench")
@click.argument("optimizers", nargs=-1, required=True)
@click.option(
    "--suite",
    default="default",
    show_default=True,
    help="Task suite: quick, default or full (optbench list shows their tasks).",
)
@click.option("--tasks", default=None, help="Comma-separated task names instead of a suite.")
@click.option(
    "--studies", type=int, default=5, show_default=True, help="Tuning studies per task and optimizer."
)
@click.option("--trials", type=int, default=5, show_default=True, help="Quasi-random trials per study.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds rerun at each study's winner.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Cells run in this many processes.")
@seed_option
@force_option
@formats_option
@out_option
@click.pass_context
def command(ctx, optimizers, suite, tasks, studies, trials, seeds, jobs, seed, force, formats, out):
    """Benchmark optimizers fairly over a suite of tasks: equal tuning, seeds, performance profiles.

    Every optimizer gets the same quasi-random trials over one search space per task (AlgoPerf's
    studies), then `--seeds` reruns of each study's fastest trial; tasks are combined by performance
    profiles, scored by their area up to tau = 4, ranked with bootstrap intervals.
    """
    from ..bench.result import REPORT
    from ..bench.run import bench, bench_spec, check_whole
    from ..cells import Interrupted
    from ..plots.style import save_figures

    chosen = [t.strip() for t in tasks.split(",")] if tasks is not None else suite
    if tasks is not None and "" in chosen:
        chosen = [t for t in chosen if t] or []
    formats = parse_formats(formats)
    bench_spec(optimizers, chosen, studies, trials, seeds, seed)  # bad input: one line, nothing written
    check_whole("jobs", jobs)
    with results_folder(out, "bench") as folder:
        try:
            with ProgressBars() as bars:
                result = bench(optimizers, chosen, studies, trials, seeds, folder, jobs, bars, seed, force)
        except Interrupted as stop:
            console_err.print(
                f"[bold red]stopped by {stop}:[/] {stop.finished} of {stop.total} cell(s) finished "
                "and kept; rerun the same command to resume",
                highlight=False,
            )
            ctx.exit(stop.exit_code)
    for path in save_figures(result.plot(), folder, formats):
        console.print(f"wrote {path}")
    console.print(f"wrote {folder / REPORT}")
    for task, note in result.meta.get("skipped", {}).items():
        console_err.print(f"[bold yellow]{task}[/] {note}", highlight=False)
    print_table(ranking_table(result))
    failed = result.trials["status"].str.startswith("failed")
    if failed.any():
        first = result.trials[failed].iloc[0]
        console_err.print(
            f"[bold yellow]{failed.sum()} trial(s) failed[/], e.g. {first['optimizer']} on {first['task']}: "
            f"{first['status']}",
            highlight=False,
        )
    console.print(f"results in {folder}")


def ranking_table(result):
    from rich.table import Table

    steps = result.task_steps()
    table = Table(
        title="Ranking (score: area under the performance profile up to τ = 4)", title_justify="left"
    )
    for name in ("rank", "optimizer", "score", "95% interval", "P(best)", *steps.index):
        table.add_column(str(name), justify="left" if name == "optimizer" else "right")
    for row in result.ranking.itertuples():
        table.add_row(
            format_number(row.rank),
            row.optimizer,
            f"{row.score:.3f}",
            f"{row.score_low:.3f}-{row.score_high:.3f}",
            f"{row.p_best:.2f}",
            *[format_number(steps.loc[task, row.optimizer]) for task in steps.index],
        )
    return table
