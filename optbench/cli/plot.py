"""`optbench plot DIR`: redraw every figure of a results folder from its saved tables."""

from __future__ import annotations

from pathlib import Path

import rich_click as click

from ..errors import OptbenchError
from ..experiments import load
from .. import sweeps
from ..plots import training
from ..plots.style import save_figures
from ..results import atomic_write_bytes, read_metadata
from .common import console, formats_option, parse_formats


def redraw_experiment(folder: Path, formats) -> list[Path]:
    """A compare or grid folder: its result loaded back, every figure drawn again (and its GIF, if it had one)."""
    result = load(folder)
    written = save_figures(result.plot(), folder, formats)
    gif = folder / "trajectories.gif"
    if gif.exists():
        atomic_write_bytes(gif, result.animation())
        written.append(gif)
    return written


# Results kind (meta.json "kind") -> redraw(folder, formats) -> the files written.
REDRAW = {"compare": redraw_experiment, "grid": redraw_experiment, "train": training.redraw, "sweep": sweeps.api.redraw}


@click.command("plot")
@click.argument("folders", nargs=-1, required=True, type=click.Path())
@formats_option
def command(folders, formats):
    """Redraw the figures of saved results folders without re-running anything."""
    formats = parse_formats(formats)
    for folder in map(Path, folders):
        kind = read_metadata(folder)["kind"]
        if kind not in REDRAW:
            raise OptbenchError(f"{folder}: don't know how to plot results of kind '{kind}'")
        for path in REDRAW[kind](folder, formats):
            console.print(f"wrote {path}")
