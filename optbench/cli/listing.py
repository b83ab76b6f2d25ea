"""`optbench list`: the optimizers with their defaults, the surfaces, the data sets and the benchmark's tasks."""

from __future__ import annotations

import rich_click as click
from rich.table import Table

from ..optimizers.registry import ALGORITHMS, PRESETS
from .common import console, print_table


def _show_default(value) -> str:
    if callable(value):  # ADOPT's clip_lambda: its name, not a memory address
        return getattr(value, "__name__", type(value).__name__)
    return "/".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _reference(algorithm) -> str:
    """'torch.optim.Adam', or the reference package's class with its installed version."""
    reference = getattr(algorithm, "reference", "")
    if not reference:
        return f"torch.optim.{algorithm.class_name}"
    version = algorithm.reference_version
    return f"{reference.replace(':', '.')} ({algorithm.distribution} {version or 'not installed'})"


@click.command("list")
def command():
    """List the optimizers with their certificate's reference, defaults and how surfaces batch trials."""
    from .. import objectives, tasks
    from ..bench import suite

    table = Table(
        title="optimizers (ours, certified equal to the reference by `optbench verify`)", title_justify="left"
    )
    for column in ("name", "class", "reference", "defaults", "trials on a surface"):
        table.add_column(column)
    for algorithm in ALGORITHMS.values():
        defaults = ", ".join(f"{k}={_show_default(v)}" for k, v in algorithm.defaults().items())
        batched = (
            f"one tensor; tensor hyperparameters: {', '.join(algorithm.tensor_hparams) or 'none'}"
            if algorithm.elementwise
            else "one optimizer per trial (reduces across a tensor)"
        )
        table.add_row(algorithm.name, algorithm.class_name, _reference(algorithm), defaults, batched)
    for name, (base, settings) in PRESETS.items():
        table.add_row(name, f"preset of {base}", "", ", ".join(f"{k}={v}" for k, v in settings.items()), "")
    print_table(table)
    console.print(
        "also: any torch.optim.Optimizer class as module:Class, path/to/file.py:Class or zoo:name "
        "(pytorch_optimizer:lion, heavyball:...); see docs/optimizers.md"
    )
    for title, columns, rows in (objectives.describe(), tasks.describe(), suite.describe()):
        extra = Table(title=title, title_justify="left")
        for column in columns:
            extra.add_column(column)
        for row in rows:
            extra.add_row(*map(str, row))
        print_table(extra)
