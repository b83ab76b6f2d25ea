"""`optbench plot DIR`: redraw every figure of a results folder from its saved tables."""

from __future__ import annotations

from pathlib import Path

import rich_click as click

from ..errors import OptbenchError
from .common import console, formats_option, parse_formats


def redraw_experiment(folder: Path, formats) -> list[Path]:
    """A compare or grid folder: its result loaded back, every figure drawn again (and its GIF, if it had one)."""
    from ..experiments import load
    from ..plots.style import save_figures
    from ..results import atomic_write_bytes

    result = load(folder)
    written = save_figures(result.plot(), folder, formats)
    gif = folder / "trajectories.gif"
    if gif.exists():
        atomic_write_bytes(gif, result.animation())
        written.append(gif)
    return written


def redraw_training(folder: Path, formats) -> list[Path]:
    from ..plots import training

    return training.redraw(folder, formats)


def redraw_sweep(folder: Path, formats) -> list[Path]:
    from .. import sweeps

    return sweeps.api.redraw(folder, formats)


# Results kind (meta.json "kind") -> redraw(folder, formats) -> the files written.
REDRAW = {
    "compare": redraw_experiment,
    "grid": redraw_experiment,
    "train": redraw_training,
    "sweep": redraw_sweep,
}


@click.command("plot")
@click.argument("folders", nargs=-1, required=True, type=click.Path())
@formats_option
def command(folders, formats):
    """Redraw the figures of saved results folders without re-running anything."""
    formats = parse_formats(formats)
    kinds = {folder: checked_kind(folder) for folder in map(Path, folders)}  # every folder before any figure
    for folder, kind in kinds.items():
        for path in REDRAW[kind](folder, formats):
            console.print(f"wrote {path}")


# Keys of meta.json's "spec" that redrawing reads, per kind (a sweep checks its own spec when loaded).
SPEC_KEYS = {"compare": ("surface",), "grid": ("surface", "axes"), "train": (), "sweep": ()}


def checked_kind(folder: Path) -> str:
    """The kind of results in `folder`, once its meta.json is known to describe something to draw."""
    from ..results import META_FILE, read_metadata

    meta = read_metadata(folder)
    kind, spec = meta["kind"], meta.get("spec")
    if not isinstance(kind, str) or kind not in REDRAW:
        raise OptbenchError(f"{folder / META_FILE}: kind {kind!r} is not one of {', '.join(REDRAW)}")
    if not isinstance(spec, dict):
        raise OptbenchError(
            f"{folder / META_FILE} records no spec (the settings that made the results): cannot redraw"
        )
    missing = [key for key in SPEC_KEYS[kind] if key not in spec]
    if missing:
        raise OptbenchError(f"{folder / META_FILE}: the {kind} spec lacks '{missing[0]}': cannot redraw")
    if kind == "grid" and not (
        isinstance(spec["axes"], list)
        and len(spec["axes"]) == 2
        and all(isinstance(axis, str) for axis in spec["axes"])
    ):
        raise OptbenchError(f"{folder / META_FILE}: the grid's axes must be two names, got {spec['axes']!r}")
    if kind != "sweep" and not any(folder.glob("*.parquet")):
        raise OptbenchError(f"{folder} holds no result tables yet: nothing to draw")
    return kind
