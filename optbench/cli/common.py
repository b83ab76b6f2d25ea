"""Pieces every command shares: consoles, option types for specs and lists, progress bars."""

from __future__ import annotations

import rich_click as click
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from ..errors import OptbenchError

# emoji=False: ranges such as 1e-4:100:49 must not turn into pictures
console = Console(emoji=False)                   # results: stdout
console_err = Console(stderr=True, emoji=False)  # progress and errors: stderr


def progress_bar(transient: bool = False) -> Progress:
    """A rich progress bar on stderr (results stay clean on stdout)."""
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    TextColumn("{task.fields[status]}"), console=console_err, transient=transient)


def user_error(message: str) -> OptbenchError:
    return OptbenchError(message)


def format_number(value) -> str:
    """Compact, honest numbers for tables: 3 significant digits, NaN/inf spelled out."""
    if value is None:
        return "-"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if 1e3 <= abs(value) < 1e7:
        return str(round(value))   # 5990, not 5.99e+03
    return f"{value:.3g}"


formats_option = click.option(
    "--format", "formats", default="png,pdf", show_default=True,
    help="Figure formats, comma-separated: png, pdf, svg.")
out_option = click.option(
    "--out", type=click.Path(file_okay=False), default=None,
    help="Output folder (default: results/<command>-<timestamp>/).")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad or not formats:
        raise OptbenchError(f"unknown figure format '{(bad or [text])[0]}' (valid: png, pdf, svg)")
    return formats
