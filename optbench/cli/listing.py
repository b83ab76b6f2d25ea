"""`optbench list`: the optimizers with their defaults, the surfaces and the data sets."""

from __future__ import annotations

import rich_click as click
from rich.table import Table

from .. import objectives, tasks
from ..optimizers.registry import ALGORITHMS, PRESETS
from .common import console, print_table


def _show_default(value) -> str:
    return "/".join(map(str, value)) if isinstance(value, tuple) else str(value)


@click.command("list")
def command():
    """List the optimizers with their default hyperparameters."""
    table = Table(title="optimizers (ours = torch.optim twins)", title_justify="left")
    for column in ("name", "class", "defaults", "tensor hyperparameters"):
        table.add_column(column)
    for algorithm in ALGORITHMS.values():
        defaults = ", ".join(f"{k}={_show_default(v)}" for k, v in algorithm.defaults().items())
        batched = ", ".join(algorithm.tensor_hparams) or "- (one parameter per trial)"
        table.add_row(algorithm.name, algorithm.class_name, defaults, batched)
    for name, (base, settings) in PRESETS.items():
        table.add_row(name, f"preset of {base}", ", ".join(f"{k}={v}" for k, v in settings.items()), "")
    print_table(table)
    for title, columns, rows in (objectives.describe(), tasks.describe()):
        extra = Table(title=title, title_justify="left")
        for column in columns:
            extra.add_column(column)
        for row in rows:
            extra.add_row(*map(str, row))
        print_table(extra)
