"""Pieces every command shares: consoles, options, number formatting, progress bars, the results folder."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import rich_click as click
from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..budget import MAX_SEED
from ..errors import OptbenchError
from ..formats import format_number  # noqa: F401 - the commands' one number format

# emoji=False: ranges such as 1e-4:100:49 must not turn into pictures
console = Console(emoji=False)  # results: stdout
# soft_wrap: a note or an error stays one line however narrow the terminal
console_err = Console(stderr=True, emoji=False, soft_wrap=True)  # progress and errors: stderr


def print_table(table: Table, to: Console | None = None) -> None:
    """Print a table with every value whole, never cut to "1.82…" or folded mid-value.

    Piped or redirected (not a terminal): plain text as wide as the table needs. In a terminal the table
    as drawn when it fits, else the narrow layout: one "column  value" line per cell, a rule between rows.
    """
    to = console if to is None else to
    natural = Measurement.get(to, to.options.update_width(100_000), table).maximum
    if natural <= to.width:
        to.print(table)
    elif not to.is_terminal:
        Console(file=to.file, width=natural, emoji=False, highlight=False, color_system=None).print(table)
    else:
        to.print(_stacked(table))


def _stacked(table: Table) -> Table:
    """The narrow layout of a table: one row per cell (header, value), a section per original row."""
    stacked = Table(title=table.title, title_justify="left", show_header=False)
    stacked.add_column(style="bold", no_wrap=True)
    stacked.add_column(overflow="fold")
    headers = [column.header for column in table.columns]
    cells = [list(column.cells) for column in table.columns]
    for row in range(table.row_count):
        for index, header in enumerate(headers):
            stacked.add_row(header, cells[index][row], end_section=index == len(headers) - 1)
    return stacked


def progress_bar(transient: bool = False) -> Progress:
    """A rich progress bar on stderr (results stay clean on stdout)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console_err,
        transient=transient,
    )


class ProgressBars:
    """Draws `optbench.progress.Progress` events, the one kind every command's work reports: one bar
    per `event.bar`, shown from the first event (a spec refused before any work prints only its
    error) and by one process of several (torchrun's rank 0). `describe(event)` words the status of
    an event that carries metrics."""

    def __init__(self, transient: bool = False, describe=None):
        self.transient, self.describe = transient, describe

    def __enter__(self):
        self.bar, self.tasks = None, {}
        self.shown = int(os.environ.get("RANK", "0")) == 0
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc) if self.bar else False

    def __call__(self, event) -> None:
        if not self.shown:
            return
        if self.bar is None:
            self.bar = progress_bar(self.transient).__enter__()
        if event.bar not in self.tasks:
            self.tasks[event.bar] = self.bar.add_task(event.bar, total=max(1, event.total), status="")
        status = self.describe(event) if self.describe and event.metrics is not None else event.status
        self.bar.update(self.tasks[event.bar], completed=event.done, **({"status": status} if status else {}))


formats_option = click.option(
    "--format",
    "formats",
    default="png,pdf",
    show_default=True,
    help="Figure formats, comma-separated: png, pdf, svg.",
)


def _checked_folder(ctx, param, value):
    from ..bounded import check_folder_path

    if value is not None:
        try:
            check_folder_path(value)
        except OptbenchError as error:
            raise click.BadParameter(str(error), ctx, param) from None
    return value


out_option = click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    callback=_checked_folder,
    help="Output folder (default: results/COMMAND-TIMESTAMP/, e.g. results/compare-20261206-073000/).",
)
seed_option = click.option(
    "--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Random seed."
)
threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch threads for the runs (default: torch's own count on this machine), recorded in "
    "meta.json; give each of several runs on one machine a share of its cores.",
)
allow_long_option = click.option(
    "--allow-long",
    is_flag=True,
    help="Run even when the work estimate (steps x trials x coordinates) exceeds the limit "
    "(optbench.budget.WORK_LIMIT) that otherwise refuses it.",
)
force_option = click.option(
    "--force", is_flag=True, help="Replace the results of a different run in --out (removes what it wrote)."
)


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",")]
    if "" in formats and len(formats) > 1:
        raise OptbenchError(f"malformed list for --format: '{text}' has an empty item")
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad or not formats:
        raise OptbenchError(f"unknown figure format '{(bad or [text])[0]}' (valid: png, pdf, svg)")
    return list(dict.fromkeys(formats))  # 'png,png' writes one png


@contextmanager
def results_folder(out: str | None, command: str):
    """`output_folder` (created and proven writable before any work); removed again if the work raises a
    user error before writing anything, so bad input leaves nothing behind."""
    from ..results import output_folder

    created = out is None or not Path(out).exists()
    folder = output_folder(out, command)
    try:
        yield folder
    except OptbenchError:
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise


def write_figures(figures: dict, folder: Path, formats) -> None:
    """Save each figure in every format and say where."""
    from ..plots.style import save_figures

    for path in save_figures(figures, folder, formats):
        console.print(f"wrote {path}")


def split_assignment(item: str, option: str) -> tuple[str, str]:
    """'NAME=VALUE' -> (NAME, VALUE); raises OptbenchError naming `option` when malformed."""
    name, eq, text = item.partition("=")
    if not eq or not name.strip():
        raise OptbenchError(f"malformed {option} '{item}': expected NAME=START:STOP:NUM")
    return name.strip(), text


def report_failed(failed: dict[str, str]) -> None:
    """One line per failed run on stderr, then exit status 1 (the other runs' results are saved)."""
    for name, message in failed.items():
        console_err.print(f"[bold red]run {name} failed:[/] {message}", highlight=False, soft_wrap=True)
    if failed:
        click.get_current_context().exit(1)
