"""`optbench plot DIR`: redraw every figure of a results folder from its saved tables."""

from __future__ import annotations

import importlib

import rich_click as click

from ..errors import OptbenchError
from ..results import read_metadata
from .common import console, formats_option, parse_formats

# Results kind (meta.json "kind") -> the function that redraws that kind's figures from the folder.
# Each takes (folder: Path, formats: list[str]) and returns the list of files written.
REDRAW = {
    "compare": "optbench.plots.surfaces:redraw_compare",
    "grid": "optbench.plots.surfaces:redraw_grid",
    "train": "optbench.plots.training:redraw",
    "sweep": "optbench.sweeps.api:redraw",
}


@click.command("plot")
@click.argument("folders", nargs=-1, required=True, type=click.Path())
@formats_option
def command(folders, formats):
    """Redraw the figures of saved results folders without re-running anything."""
    from pathlib import Path

    formats = parse_formats(formats)
    for folder in map(Path, folders):
        kind = read_metadata(folder)["kind"]
        if kind not in REDRAW:
            raise OptbenchError(f"{folder}: don't know how to plot results of kind '{kind}'")
        module, function = REDRAW[kind].split(":")
        written = getattr(importlib.import_module(module), function)(folder, formats)
        for path in written:
            console.print(f"wrote {path}")
