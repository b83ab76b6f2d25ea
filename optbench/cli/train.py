"""`optbench train`: train real models (or the regression examples) with one or more optimizers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import rich_click as click
from rich.table import Table

from ..errors import OptbenchError
from ..optimizers.registry import check_spec_name
from ..tasks import defaults as D
from ..tasks.names import BUILT_IN, check_task_name
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
    report_failed,
    seed_option,
    threads_option,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..experiments.training import TrainingResult


def default_budgets() -> dict[str, tuple[int | None, int | None, int | None]]:
    """(epochs or iterations, batch size, steps) of each built-in task `train` runs, read from the rows
    of `tasks.defaults` as the registry builds its budgets from them, without loading it (for --help)."""
    regression = {
        "scalar": (D.SCALAR["iterations"], None, None),
        "linreg": (D.REGRESSION["epochs"], D.REGRESSION["batch_size"], None),
    }
    budgets = {}
    for name, kind in BUILT_IN.items():
        if kind is TaskKind.CLASSIFICATION:
            budgets[name] = (D.TRAINING["epochs"], D.TRAINING["batch_size"], None)
        elif kind is TaskKind.REGRESSION:
            budgets[name] = regression[name]
        elif kind is TaskKind.LANGUAGE_MODEL:
            budgets[name] = (None, D.LANGUAGE_MODEL[name]["batch_size"], D.LANGUAGE_MODEL[name]["steps"])
    return budgets


BUDGETS = default_budgets()


@click.command("train")
@click.option(
    "--task",
    default="digits",
    show_default=True,
    help="A task `optbench list` shows with `train`: digits (built in), mnist, fashion-mnist, cifar10, "
    "the character-level language models shakespeare, shakespeare-tiny, "
    "or the regression examples scalar, linreg (= regression).",
)
@click.option("--model", default=None, help="mlp, lenet, resnet (ResNet-8), resnet20 (default lenet).")
@click.option(
    "--optimizer",
    "optimizers",
    multiple=True,
    default=("sgd",),
    show_default=True,
    help="Optimizer spec such as `sgd:lr=0.1,momentum=0.9` or `torch:adam`; repeat to compare.",
)
@click.option(
    "--epochs",
    type=int,
    default=None,
    help="Epochs (default: the task's; iterations for scalar): "
    + ", ".join(f"{name} {epochs}" for name, (epochs, _, _) in BUDGETS.items() if epochs)
    + "; a language model's budget is --max-steps, its epochs as many as those take"
    + ".",
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Global batch size (default: the task's): "
    + ", ".join(f"{name} {size}" for name, (_, size, _) in BUDGETS.items() if size)
    + ".",
)
@click.option(
    "--schedule",
    default=None,
    help="A torch.optim.lr_scheduler, stepped per epoch: `cosine`, `step:step_size=5,gamma=0.5`.",
)
@click.option(
    "--warmup-epochs",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Linear lr warm-up, per step.",
)
@click.option(
    "--early-stop",
    type=click.IntRange(min=1),
    default=None,
    metavar="PATIENCE",
    help="Stop after PATIENCE epochs without a better validation accuracy.",
)
@click.option(
    "--device", default="auto", show_default=True, help="auto (cuda when available), cpu, cuda, cuda:N."
)
@click.option("--bf16", is_flag=True, help="bfloat16 autocast for the forward pass.")
@click.option(
    "--compile",
    is_flag=True,
    help="Train through torch.compile(model) (first steps compile; needs a C++ compiler on CPU).",
)
@click.option("--channels-last", is_flag=True, help="channels_last memory format for images and weights.")
@click.option(
    "--eval-every",
    "eval_every_steps",
    type=int,
    default=None,
    metavar="STEPS",
    help="Also evaluate the validation split every STEPS steps (evaluations.parquet).",
)
@click.option(
    "--fast",
    is_flag=True,
    help="Step our element-wise optimizers on the fast path (fast(Cls)): same numbers, less time.",
)
@click.option(
    "--nproc",
    type=int,
    default=1,
    show_default=True,
    help="Data-parallel processes on this machine (torch.distributed; gloo on CPU, nccl on GPU).",
)
@click.option(
    "--data-dir",
    type=click.Path(),
    default=None,
    help="Folder with the data set's files; for a language-model task, a UTF-8 text file or a folder of .txt files.",
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many steps (a language-model task's budget; default: the task's: "
    + ", ".join(f"{name} {steps}" for name, (_, _, steps) in BUDGETS.items() if steps)
    + ").",
)
@click.option(
    "--context", type=int, default=None, help="Language-model tasks: characters per window (the block size)."
)
@click.option("--n-layer", type=int, default=None, help="Language-model tasks: transformer blocks.")
@click.option("--n-head", type=int, default=None, help="Language-model tasks: attention heads per block.")
@click.option("--n-embd", type=int, default=None, help="Language-model tasks: the model's width.")
@click.option(
    "--recipe",
    default=None,
    help="Parameter groups: 'muon' (Muon on hidden matrices, AdamW on the rest; the default for muon), "
    "'no-decay' (no weight decay on biases and norm weights), 'none'.",
)
@click.option(
    "--seeds",
    type=int,
    default=1,
    show_default=True,
    help="Runs per optimizer, with seeds seed, seed+1, ...; the figures draw their mean and 95% band.",
)
@click.option("--trace", is_flag=True, help="With --task scalar: print every iteration's numbers.")
@click.option(
    "--force",
    is_flag=True,
    help="Replace the results of a different run in --out (default: refuse; "
    "the same run resumes, skipping finished optimizers).",
)
@out_option
@seed_option
@threads_option
@formats_option
def command(optimizers, task, trace, out, formats, **settings):
    """Train with one or more optimizers; tables, curves and meta.json go to --out.

    `optbench train --task digits --model lenet --optimizer sgd --optimizer adam --epochs 10`

    The other options are `optbench.train`'s settings, under the same names.
    """
    formats = parse_formats(formats)
    if trace and task != "scalar":
        raise OptbenchError("--trace applies to --task scalar only")
    for text in optimizers:
        check_spec_name(text)
    check_task_name(task)
    from ..experiments.training import train
    from ..plots.style import save_figures
    from ..results import default_folder
    from ..runners.recipes import note as recipe_note
    from ..runners.recipes import recipe_for
    from ..specs import parse_optimizer
    from ..tasks import get_task

    specs = [parse_optimizer(text) for text in optimizers]
    for spec in specs if settings["fast"] else []:
        if not spec.has_fast_path:
            console_err.print(
                f"note: {spec.name} has no fast path (torch.optim's class, or an algorithm "
                "that reduces across a tensor); it runs the readable path"
            )
    resolved = get_task(task)
    if resolved.kind in (TaskKind.CLASSIFICATION, TaskKind.LANGUAGE_MODEL):
        for spec in specs:
            recipe = recipe_for(spec, settings["recipe"] or resolved.default_recipe(spec))
            line = recipe_note(recipe, resolved.default_hparams)
            if line:
                console_err.print(f"note: {spec.name}: {line}")
    folder = out or default_folder("train")
    with ProgressBars(describe=_status) as bars:
        result = train(specs, task, out=folder, progress=bars, **settings)
    if result.rank != 0:
        return
    if result.kept:
        total = len(specs) * settings.get("seeds", 1)
        console_err.print(
            f"kept {len(result.kept)} of {total} runs from an earlier run ({', '.join(result.kept)})",
            highlight=False,
        )
    result.save(folder)
    written = save_figures(result.plot(), folder, formats)
    _print(result, trace)
    console.print(f"results in {folder}/ ({', '.join(path.name for path in written)})")
    report_failed(result.failed)


def _status(event) -> str:
    """A training run's status once an epoch is evaluated."""
    row = event.metrics
    if row["diverged"]:
        return "[red]diverged"
    if "val_accuracy" not in row:
        return f"epoch {int(row['epoch'])} val loss {format_number(row['val_loss'])}"
    return (
        f"epoch {int(row['epoch'])} loss {format_number(row['val_loss'])} "
        f"acc {100 * row['val_accuracy']:.1f}%"
    )


def _print(result: TrainingResult, trace: bool) -> None:
    if result.summary is not None:
        _print_summary(result.summary)
    elif result.regression is not None:
        for name, run in result.regression.groupby("optimizer", sort=False):
            if run["diverged"].any():
                console_err.print(f"[yellow]{name} diverged[/] (recorded)")
        shown = result.regression
        if _several_seeds(shown):  # the least-squares row is the first seed's samples
            shown = shown[shown["seed"] == result.seed]
            console_err.print(f"seed {result.seed} shown; the tables and figure hold every seed")
        _print_regression(shown, result.meta["least_squares"])
    elif trace:
        _print_trace(result.trace)
    else:
        for name, run in result.trace.groupby("optimizer", sort=False):
            diverged = run[run["diverged"]] if "diverged" in run else run.iloc[:0]
            note = (
                f" [red]diverged at iteration {int(diverged['iteration'].iloc[0])}[/]"
                if len(diverged)
                else ""
            )
            console.print(f"{name}: a = {run['a_next'].iloc[-1]:.6g} after {len(run)} iterations{note}")


def _print_summary(summary: pd.DataFrame) -> None:
    if "best_val_loss" in summary:
        _print_language_model_summary(summary)
        return
    table = Table(
        title="training summary (validation accuracy; test where the data set has it)",
        title_justify="left",
        pad_edge=False,
    )
    has_test = summary["test_accuracy"].notna().any()
    seeds = _several_seeds(summary)
    for column in [
        "optimizer",
        *(["seed"] if seeds else []),
        "epochs",
        "best",
        "final",
        *(["test"] if has_test else []),
        "time\n(s)",
        "samples\n/s",
        "outcome",
    ]:
        text = column in ("optimizer", "outcome")
        table.add_column(
            column,
            justify="left" if text else "right",
            overflow="fold",
            min_width=max(map(len, column.split("\n"))),
            no_wrap=not text,
        )
    for row in summary.itertuples():
        table.add_row(
            row.optimizer,
            *([str(row.seed)] if seeds else []),
            str(row.epochs_run),
            f"{100 * row.best_val_accuracy:.2f}%",
            f"{100 * row.final_val_accuracy:.2f}%",
            *([f"{100 * row.test_accuracy:.2f}%"] if has_test else []),
            f"{row.train_time:.2f}",
            format_number(round(row.samples_per_s)),
            _outcome(row),
        )
    print_table(table)


def _print_language_model_summary(summary: pd.DataFrame) -> None:
    table = Table(
        title="training summary (validation loss, nats per character)", title_justify="left", pad_edge=False
    )
    seeds = _several_seeds(summary)
    columns = ("optimizer", *(["seed"] if seeds else []), "steps", "best", "final", "time\n(s)", "tokens\n/s")
    for column in (*columns, "outcome"):
        text = column in ("optimizer", "outcome")
        table.add_column(column, justify="left" if text else "right", overflow="fold", no_wrap=not text)
    for row in summary.itertuples():
        table.add_row(
            row.optimizer,
            *([str(row.seed)] if seeds else []),
            str(row.steps),
            f"{row.best_val_loss:.4f}",
            f"{row.final_val_loss:.4f}",
            f"{row.train_time:.2f}",
            format_number(round(row.tokens_per_s)),
            _outcome(row),
        )
    print_table(table)


def _outcome(row) -> str:
    """A summary row's outcome column: diverged, stopped early or ok."""
    return "[red]diverged" if row.diverged else ("stopped early" if row.stopped_early else "ok")


def _several_seeds(table: pd.DataFrame) -> bool:
    return "seed" in table and table["seed"].nunique() > 1


def _print_trace(table: pd.DataFrame) -> None:
    for name, run in table.groupby("optimizer", sort=False):
        out = Table(title=f"{name}: loss (y - a·x)², x=2, y=4", title_justify="left")
        for column in ("iteration", "a", "a·x", "loss", "gradient", "update", "new a"):
            out.add_column(column, justify="right")
        for row in run.itertuples():
            out.add_row(
                str(row.iteration),
                f"{row.a:.6g}",
                f"{row.prediction:.6g}",
                f"{row.loss:.6g}",
                f"{row.gradient:.6g}",
                f"{row.update:+.6g}",
                f"{row.a_next:.6g}",
            )
        print_table(out)


def _print_regression(table: pd.DataFrame, solution: dict) -> None:
    out = Table(
        title="stochastic linear regression: recovered parameters (true w = [2, -3.4], b = 4.2)",
        title_justify="left",
    )
    for column in ("optimizer", "steps", "w", "b", "f - f*", "outcome"):
        out.add_column(column, overflow="fold", no_wrap=column in ("w", "b"))
    out.add_row(
        "least squares",
        "-",
        ", ".join(f"{v:.4f}" for v in solution["w"]),
        f"{solution['b']:.4f}",
        "0",
        "exact",
    )
    for name, run in table.groupby("optimizer", sort=False):
        last = run.iloc[-1]
        w = ", ".join(_parameter(last[c]) for c in run.columns if c.startswith("w") and c[1:].isdigit())
        out.add_row(
            name,
            str(len(run)),
            w,
            _parameter(last["b"]),
            format_number(last["suboptimality"]),
            "[red]diverged" if last["diverged"] else "ok",
        )
    print_table(out)


def _parameter(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"
