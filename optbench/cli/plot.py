"""`optbench plot DIR`: redraw every figure of a results folder from its saved tables (and a
benchmark's HTML report).

One path for every kind of result: `optbench.load(DIR).plot()`, and each figure saved beside the
tables (a comparison that had an animation gets it again).
"""

from __future__ import annotations

from pathlib import Path

import rich_click as click

from .common import console, formats_option, parse_formats

ANIMATION = "trajectories.gif"


@click.command("plot")
@click.argument("folders", nargs=-1, required=True, type=click.Path())
@formats_option
def command(folders, formats):
    """Redraw the figures of saved results folders without re-running anything."""
    from ..experiments import load
    from ..plots.style import save_figures
    from ..results import atomic_write_bytes

    formats = parse_formats(formats)
    results = {folder: load(folder) for folder in map(Path, folders)}  # every folder before any figure
    for folder, result in results.items():
        for path in save_figures(result.plot(), folder, formats):
            console.print(f"wrote {path}")
        if hasattr(result, "write_report"):  # a benchmark's report embeds its figures: redrawn too
            console.print(f"wrote {result.write_report(folder)}")
        if (folder / ANIMATION).exists() and hasattr(result, "animation"):
            atomic_write_bytes(folder / ANIMATION, result.animation())
            console.print(f"wrote {folder / ANIMATION}")
