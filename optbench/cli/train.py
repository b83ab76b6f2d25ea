"""`optbench train`: train real models (or the regression examples) with one or more optimizers."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import rich_click as click
from rich.table import Table

from ..data import REGRESSION_TASKS
from ..errors import OptbenchError
from ..results import output_folder, write_metadata, write_table
from .common import console, console_err, format_number, formats_option, out_option, parse_formats, \
    progress_bar, seed_option


@click.command("train")
@click.option("--task", default="digits", show_default=True,
              help="digits (built in), mnist, fashion-mnist, cifar10, or the regression examples scalar, linreg.")
@click.option("--model", default="lenet", show_default=True, help="mlp, lenet, resnet (ResNet-8), resnet20.")
@click.option("--optimizer", "optimizers", multiple=True, default=("sgd",), show_default=True,
              help="Optimizer spec such as `sgd:lr=0.1,momentum=0.9` or `torch:adam`; repeat to compare.")
@click.option("--epochs", type=int, default=None, help="Epochs (default 10; 3 for linreg; iterations for scalar).")
@click.option("--batch-size", type=int, default=None, help="Global batch size (default 64; 10 for linreg).")
@click.option("--schedule", default=None,
              help="A torch.optim.lr_scheduler, stepped per epoch: `cosine`, `step:step_size=5,gamma=0.5`.")
@click.option("--warmup-epochs", type=int, default=0, show_default=True, help="Linear lr warm-up, per step.")
@click.option("--early-stop", type=int, default=None, metavar="PATIENCE",
              help="Stop after PATIENCE epochs without a better validation accuracy.")
@click.option("--device", default="auto", show_default=True, help="auto (cuda when available), cpu, cuda, cuda:N.")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast for the forward pass.")
@click.option("--channels-last", is_flag=True, help="channels_last memory format for images and weights.")
@click.option("--eval-every", type=int, default=None, metavar="STEPS",
              help="Also evaluate the validation split every STEPS steps (evaluations.parquet).")
@click.option("--fast", is_flag=True,
              help="Step our element-wise optimizers on the fast path (fast(Cls)): same numbers, less time.")
@click.option("--nproc", type=int, default=1, show_default=True,
              help="Data-parallel processes on this machine (torch.distributed; gloo on CPU, nccl on GPU).")
@click.option("--data-dir", type=click.Path(), default=None, help="Folder with the data set's files.")
@click.option("--trace", is_flag=True, help="With --task scalar: print every iteration's numbers.")
@out_option
@seed_option
@formats_option
def command(task, model, optimizers, epochs, batch_size, schedule, warmup_epochs, early_stop, device, bf16,
            channels_last, eval_every, fast, nproc, data_dir, trace, out, seed, formats):
    """Train with one or more optimizers; tables, curves and meta.json go to --out.

    `optbench train --task digits --model lenet --optimizer sgd --optimizer adam --epochs 10`
    """
    formats = parse_formats(formats)
    if trace and task != "scalar":
        raise OptbenchError("--trace applies to --task scalar only")
    if task in REGRESSION_TASKS:
        return _regression(task, optimizers, epochs, batch_size, trace, out, seed, formats)
    from ..runners.distributed import process_group, started_by_torchrun
    from ..runners.training import TrainSpec, check

    base = TrainSpec(task=task, model=model, epochs=epochs or 10, batch_size=batch_size or 64,
                     schedule=schedule, warmup_epochs=warmup_epochs, early_stop=early_stop, device=device,
                     bf16=bf16, channels_last=channels_last, fast=fast, seed=seed, data_dir=data_dir,
                     eval_every_steps=eval_every)
    specs = [replace(base, optimizer=text) for text in optimizers]
    if fast:
        from ..specs import parse_optimizer
        for text in optimizers:
            if not parse_optimizer(text).has_fast_path:
                console_err.print(f"note: {text} has no fast path (torch.optim's class, or an algorithm "
                                  "that reduces across a tensor); it runs the readable path")
    if started_by_torchrun():
        if nproc != 1:
            raise OptbenchError("--nproc cannot be combined with torchrun: torchrun already started the processes")
        with process_group(device) as (rank, world):
            _train_all(specs, check, world=world, writer=rank == 0, out=out, seed=seed, formats=formats)
        return
    _train_all(specs, check, world=nproc, writer=True, out=out, seed=seed, formats=formats)


def _train_all(specs, check, world, writer, out, seed, formats):
    """Check every spec, then train them one after another; a diverged run is recorded, not fatal."""
    from ..plots.training import redraw
    from ..runners.distributed import launch, started_by_torchrun
    from ..runners.training import train

    dataset = check(specs[0], world=world)
    for spec in specs[1:]:
        check(spec, dataset, world)
    folder = output_folder(out, "train") if writer else None
    if writer:
        write_metadata(folder, "train", {"runs": [spec.resolved() for spec in specs], "processes": world}, seed)
    results = []
    with progress_bar() if writer else _Silent() as bar:
        for spec in specs:
            steps_per_epoch = len(dataset.train[1]) // spec.batch_size
            task_id = bar.add_task(spec.optimizer, total=spec.epochs * steps_per_epoch, status="")
            if world > 1 and not started_by_torchrun():
                bar.update(task_id, status=f"[dim]{world} processes…")
                result = launch(spec, world)
                last = result.epochs.iloc[-1]
                bar.update(task_id, completed=spec.epochs * steps_per_epoch, status=_status(last))
            else:
                result = train(spec, dataset, progress=_progress_updater(bar, task_id, steps_per_epoch))
            results.append(result)
            if writer:   # after every run, so finished work is never lost
                for name in ("steps", "epochs", "summary", "evaluations"):
                    write_table(pd.concat([getattr(r, name) for r in results], ignore_index=True),
                                folder / f"{name}.parquet")
    if not writer:
        return
    written = redraw(folder, formats)
    _print_summary(pd.concat([r.summary for r in results], ignore_index=True))
    console.print(f"results in {folder}/ ({', '.join(path.name for path in written)})")


def _progress_updater(bar, task_id, steps_per_epoch):
    def update(event):
        done = (event.epoch - 1) * steps_per_epoch + event.step
        if event.metrics is None:
            bar.update(task_id, completed=done)
        else:
            bar.update(task_id, completed=done, status=_status(event.metrics))
    return update


def _status(row) -> str:
    if row["diverged"]:
        return "[red]diverged"
    return (f"epoch {int(row['epoch'])} loss {format_number(row['val_loss'])} "
            f"acc {100 * row['val_accuracy']:.1f}%")


def _print_summary(summary: pd.DataFrame) -> None:
    table = Table(title="training summary (validation accuracy; test where the data set has it)",
                  title_justify="left", pad_edge=False)
    has_test = summary["test_accuracy"].notna().any()
    for column in ["optimizer", "epochs", "best", "final", *(["test"] if has_test else []),
                   "time\n(s)", "samples\n/s", "outcome"]:
        text = column in ("optimizer", "outcome")
        table.add_column(column, justify="left" if text else "right", overflow="fold",
                         min_width=max(map(len, column.split("\n"))), no_wrap=not text)
    for row in summary.itertuples():
        outcome = "[red]diverged" if row.diverged else ("stopped early" if row.stopped_early else "ok")
        table.add_row(row.optimizer, str(row.epochs_run), f"{100 * row.best_val_accuracy:.2f}%",
                      f"{100 * row.final_val_accuracy:.2f}%",
                      *([f"{100 * row.test_accuracy:.2f}%"] if has_test else []),
                      f"{row.train_time:.2f}", format_number(round(row.samples_per_s)), outcome)
    console.print(table)


def _regression(task, optimizers, epochs, batch_size, trace, out, seed, formats):
    from ..plots.training import redraw
    from ..runners.regression import least_squares, linear_regression, make_linear_data, scalar_trace
    from ..specs import parse_optimizer

    specs = [parse_optimizer(text) for text in optimizers]
    folder = output_folder(out, "train")
    if task == "scalar":
        iterations = epochs or 3
        table = pd.concat([scalar_trace(spec, steps=iterations) for spec in specs], ignore_index=True)
        write_metadata(folder, "train", {"task": task, "optimizers": [s.name for s in specs],
                                         "iterations": iterations}, seed)
        write_table(table, folder / "trace.parquet")
        if trace:
            _print_trace(table)
        else:
            for name, run in table.groupby("optimizer", sort=False):
                console.print(f"{name}: a = {run['a_next'].iloc[-1]:.6g} after {len(run)} iterations")
    else:
        data = make_linear_data(seed=seed)
        solution = least_squares(data)
        runs = []
        for spec in specs:
            runs.append(linear_regression(spec, data, batch_size=batch_size or 10, epochs=epochs or 3, seed=seed))
            if runs[-1]["diverged"].any():
                console_err.print(f"[yellow]{spec.name} diverged[/] (recorded)")
        table = pd.concat(runs, ignore_index=True)
        write_metadata(folder, "train", {"task": task, "optimizers": [s.name for s in specs],
                                         "least_squares": solution, "batch_size": batch_size or 10,
                                         "epochs": epochs or 3}, seed)
        write_table(table, folder / "regression.parquet")
        _print_regression(table, solution)
    written = redraw(folder, formats)
    console.print(f"results in {folder}/ ({', '.join(path.name for path in written)})")


def _print_trace(table: pd.DataFrame) -> None:
    for name, run in table.groupby("optimizer", sort=False):
        out = Table(title=f"{name}: loss (y - a·x)², x=2, y=4", title_justify="left")
        for column in ("iteration", "a", "a·x", "loss", "gradient", "update", "new a"):
            out.add_column(column, justify="right")
        for row in run.itertuples():
            out.add_row(str(row.iteration), f"{row.a:.6g}", f"{row.prediction:.6g}", f"{row.loss:.6g}",
                        f"{row.gradient:.6g}", f"{row.update:+.6g}", f"{row.a_next:.6g}")
        console.print(out)


def _print_regression(table: pd.DataFrame, solution: dict) -> None:
    out = Table(title="stochastic linear regression: recovered parameters (true w = [2, -3.4], b = 4.2)",
                title_justify="left")
    for column in ("optimizer", "steps", "w", "b", "f - f*", "outcome"):
        out.add_column(column, overflow="fold", no_wrap=column in ("w", "b"))
    out.add_row("least squares", "-", ", ".join(f"{v:.4f}" for v in solution["w"]), f"{solution['b']:.4f}",
                "0", "exact")
    for name, run in table.groupby("optimizer", sort=False):
        last = run.iloc[-1]
        w = ", ".join(_parameter(last[c]) for c in run.columns if c.startswith("w") and c[1:].isdigit())
        out.add_row(name, str(len(run)), w, _parameter(last["b"]), format_number(last["suboptimality"]),
                    "[red]diverged" if last["diverged"] else "ok")
    console.print(out)


def _parameter(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"


class _Silent:
    """A stand-in progress bar for processes other than rank 0."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        pass

