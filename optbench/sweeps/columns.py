"""The columns of a sweep's tables, named once for the runner, the analysis, the CLI and the plots.

Every cell table starts with `SETTING_COLUMNS` (which cell, which setting) and, in between, one
column per extra grid axis (`--momentum 0,0.9` adds `momentum`); then the per-step measurements
and the per-cell measurements repeated on each row. The summary has one row per cell: the setting
columns, the grid axes, then `SUMMARY_COLUMNS`.
"""

from __future__ import annotations

import pandas as pd

SETTING_COLUMNS = [
    "cell",
    "task",
    "optimizer",
    "family",
    "optimizer_spec",
    "lr_scale",
    "batch_size",
    "base_batch_size",
    "base_lr",
    "lr",
    "seed",
]
PER_STEP_COLUMNS = ["step", "epoch", "loss", "step_lr", "eval_loss", "eval_accuracy", "samples"]
# B_simple at the start with its interval, standard error and degrees of freedom, and at the end
NOISE_COLUMNS = (
    "noise_scale_start",
    "noise_scale_start_low",
    "noise_scale_start_high",
    "noise_scale_start_se",
    "noise_scale_start_dof",
    "noise_scale_end",
)
PER_CELL_COLUMNS = [
    "wall_time",
    "train_time",
    "samples_per_s",
    "diverged",
    *NOISE_COLUMNS,
]
SUMMARY_COLUMNS = [
    "steps",
    "samples",
    "final_loss",
    "final_accuracy",
    "best_accuracy",
    "steps_to_target",
    "target_outcome",
    "lr_chosen",
    "samples_to_target",
    "target_accuracy",
    "target_loss",
    *PER_CELL_COLUMNS,
]

_KNOWN = set(SETTING_COLUMNS) | set(PER_STEP_COLUMNS) | set(SUMMARY_COLUMNS)


def grid_columns(table: pd.DataFrame) -> list[str]:
    """The extra grid axes of a cell table or a summary (`momentum`, `weight_decay`, ...), in order."""
    return [column for column in table.columns if column not in _KNOWN]


def optimizer_setting_columns(table: pd.DataFrame) -> list[str]:
    """What tells optimizer settings apart: the optimizer and every extra grid axis."""
    return ["optimizer", *grid_columns(table)]
