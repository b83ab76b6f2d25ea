"""`optbench bench OPT...`: the fair multi-task benchmark (`optbench.bench`), its ranking printed and
its tables, figures and HTML report written to --out."""

from __future__ import annotations

import rich_click as click
from click.core import ParameterSource

from ..errors import OptbenchError
from ..optimizers.registry import check_spec_name
from ..tasks.names import bench_task_names
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
    results_folder,
    seed_option,
)

CLUSTERS = ("slurm", "local", "debug")  # submitit's executors (`cells.Submitit`)


@click.command("bench")
@click.argument("optimizers", nargs=-1, required=True)
@click.option(
    "--suite",
    default="default",
    show_default=True,
    help="Task suite: quick, default or full (optbench list shows their tasks).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="A first look in about two minutes: the same as --suite quick (elliptic, logistic regression).",
)
@click.option("--tasks", default=None, help="Comma-separated task names instead of a suite.")
@click.option(
    "--studies", type=int, default=5, show_default=True, help="Tuning studies per task and optimizer."
)
@click.option("--trials", type=int, default=5, show_default=True, help="Quasi-random trials per study.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds rerun at each study's winner.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Cells run in this many processes.")
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Compute only shard I of N (1-based) into --out, e.g. for an array job; the run that finds "
    "every shard finished writes the tables and report.",
)
@click.option(
    "--cluster",
    type=click.Choice(CLUSTERS),
    default=None,
    help="Run each cell as a submitit job instead of local processes: slurm, local (submitit's local "
    "processes) or debug (in this process).",
)
@click.option(
    "--cluster-option",
    "cluster_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A submitit parameter for every job, e.g. timeout_min=60 or slurm_partition=cpu (repeatable).",
)
@allow_long_option
@seed_option
@force_option
@formats_option
@out_option
@click.pass_context
def command(
    ctx,
    optimizers,
    suite,
    quick,
    tasks,
    studies,
    trials,
    seeds,
    jobs,
    shard,
    cluster,
    cluster_options,
    allow_long,
    seed,
    force,
    formats,
    out,
):
    """Benchmark optimizers fairly over a suite of tasks: equal tuning, seeds, performance profiles.

    Every optimizer gets the same quasi-random trials over one search space per task (AlgoPerf's
    studies), then `--seeds` reruns of each study's fastest trial; tasks are combined by performance
    profiles, scored by their area up to tau = 4, ranked with bootstrap intervals.
    """
    suite_given = ctx.get_parameter_source("suite") is not ParameterSource.DEFAULT
    if tasks is not None and suite_given:
        raise OptbenchError(f"give --suite or --tasks, not both (got --suite {suite} and --tasks {tasks})")
    if quick:
        if tasks is not None or suite_given:
            other = f"--tasks {tasks}" if tasks is not None else f"--suite {suite}"
            raise OptbenchError(f"--quick is --suite quick: it cannot be combined with {other}")
        suite = "quick"
    chosen = [t.strip() for t in tasks.split(",")] if tasks is not None else suite
    if tasks is not None and "" in chosen:
        chosen = [t for t in chosen if t] or []
    for text in optimizers:
        check_spec_name(text)
    bench_task_names(chosen)
    formats = parse_formats(formats)
    from ..bench.result import REPORT
    from ..bench.run import Pending, bench, bench_spec, check_whole
    from ..cells import SKIPPED, Interrupted, Local, Submitit
    from ..plots.style import save_figures
    from .sweep_options import parse_shard

    check_whole("jobs", jobs)
    shard = parse_shard(shard)
    # bad input, a runaway size included: one line, nothing written (cluster jobs use the cluster's memory)
    bench_spec(optimizers, chosen, studies, trials, seeds, seed, 1 if cluster else jobs, shard, allow_long)
    if shard != (1, 1) and out is None:
        raise OptbenchError("--shard needs --out: the one folder every shard writes into")
    parameters = dict(parse_cluster_option(item) for item in cluster_options)
    if parameters and cluster is None:
        raise OptbenchError(f"--cluster-option {cluster_options[0]} needs --cluster")
    executor = Submitit(cluster, parameters) if cluster else Local(jobs)
    with results_folder(out, "bench") as folder:
        try:
            with ProgressBars() as bars:
                result = bench(
                    optimizers,
                    chosen,
                    studies,
                    trials,
                    seeds,
                    folder,
                    jobs,
                    bars,
                    seed,
                    force,
                    executor,
                    shard,
                    allow_long,
                )
        except Interrupted as stop:
            console_err.print(
                f"[bold red]stopped by {stop}:[/] {stop.finished} of {stop.total} cell(s) finished "
                "and kept; rerun the same command to resume",
                highlight=False,
            )
            ctx.exit(stop.exit_code)
    if isinstance(result, Pending):
        console_err.print(
            f"shard {shard[0]}/{shard[1]} finished; {result.finished} of {result.total} (task, optimizer) "
            "pair(s) of the benchmark are done: once every shard is, any of them (or the command "
            "without --shard) writes the tables and report",
            highlight=False,
        )
        console.print(f"cells in {folder}")
        return
    kept = sum(status == SKIPPED for status in result.statuses.values())
    if kept:
        console_err.print(
            f"kept {kept} of {len(result.statuses)} cell(s) from an earlier run in {folder}", highlight=False
        )
    for path in save_figures(result.plot(), folder, formats):
        console.print(f"wrote {path}")
    console.print(f"wrote {folder / REPORT}")
    for task, note in result.meta.get("skipped", {}).items():
        console_err.print(f"[bold yellow]{task}[/] {note}", highlight=False)
    print_table(ranking_table(result))
    print_table(summary_table(result))
    for what, table in (("trial(s)", result.trials), ("timing rerun(s)", result.timings)):
        failed = table["status"].str.startswith("failed")
        if failed.any():
            first = table[failed].iloc[0]
            console_err.print(
                f"[bold yellow]{failed.sum()} {what} failed[/], e.g. {first['optimizer']} on {first['task']}: "
                f"{first['status']}",
                highlight=False,
            )
    console.print(f"results in {folder}")


def parse_cluster_option(item: str) -> tuple[str, object]:
    """'KEY=VALUE' -> (KEY, VALUE as an int, float or text); OptbenchError when malformed."""
    key, eq, text = item.partition("=")
    if not eq or not key.strip().isidentifier():
        raise OptbenchError(f"malformed --cluster-option '{item}': expected KEY=VALUE, e.g. timeout_min=60")
    for kind in (int, float):
        try:
            return key.strip(), kind(text)
        except ValueError:
            pass
    return key.strip(), text


def summary_table(result):
    from ..bench.views import summary_view

    return view_table(
        summary_view(result.summary),
        "Each task's winner: its final metric (mean over seeds, 95% t interval); seconds from its lone rerun",
        left=("task", "optimizer", "metric"),
    )


def ranking_table(result):
    from ..bench.views import ranking_view

    return view_table(
        ranking_view(result.ranking, result.task_steps()),
        "Ranking (score: area under the performance profile up to τ = 4) and median steps to target per task",
        left=("optimizer",),
    )


def view_table(view, title: str, left=()):
    """A rich table of a `bench.views` frame (text already formatted), numbers right-aligned."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in view.columns:
        table.add_column(str(name), justify="left" if name in left else "right")
    for row in view.itertuples(index=False):
        table.add_row(*row)
    return table
