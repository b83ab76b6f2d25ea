"""Wall seconds of the benchmark: each task's winner rerun alone, one trial in one process.

Trials run as one batched program share their time, so no trial of the tuning or seed cells has a
time of its own. The seconds come from one lone rerun per task and optimizer, after every other cell
has finished (`run`): the winner's hyperparameters from the start of seed 0, the cell's computation
run once untimed for one step (it loads data and fills caches) and then timed with
`time.perf_counter`.

    seconds_per_step  = (wall seconds of the timed run) / (the task's budget of steps)
    seconds_to_target = steps to target of the lone run × seconds_per_step    (NaN if not reached)

Both are NaN for a run that failed (raised): it stopped before its budget.

A surface run always takes its whole budget, so seconds per step is the run's own average; it includes
building the optimizer and evaluating the targets. Timings vary from run to run and machine to
machine: they are in no content key of the numbers, and the profiles stay on steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from .protocol import closeness

TIMING_COLUMNS = ("seconds", "seconds_per_step", "seconds_to_target", "threads")


def lone_winner(seeds: pd.DataFrame, task: str, optimizer: str, axes, maximised=()) -> pd.DataFrame:
    """The task's winner for `optimizer`: of the study winners rerun in `seeds` (the seeds table),
    the one with the fewest steps (median over its seeds, NaN counting as never); ties, and a task no
    study reaches, go to the study that ended closest to the target, as `protocol.fastest_per_study`
    picks within a study: fewer diverged or failed seeds, then the better mean final metric (higher
    for the tasks named in `maximised`), then the lower study. One row to rerun: study, trial, its hyperparameters
    among `axes`, seed 0."""
    mine = seeds[(seeds["task"] == task) & (seeds["optimizer"] == optimizer)]
    broken, metric = closeness(mine, maximised)
    per_study = (
        mine.assign(steps=mine["steps"].astype(float).fillna(np.inf), broken=broken, closeness=metric)
        .groupby("study")
        .agg(steps=("steps", "median"), broken=("broken", "sum"), closeness=("closeness", "mean"))
        .fillna({"closeness": np.inf})
        .reset_index()
        .sort_values(["steps", "broken", "closeness", "study"], kind="stable")
    )
    study = per_study["study"].iloc[0]
    row = mine[mine["study"] == study].iloc[:1]
    columns = ["study", "trial", *[a for a in axes if a in row.columns and row[a].notna().any()]]
    return row[columns].assign(seed=0).reset_index(drop=True)


def timed_rows(context: dict, compute: Callable[[dict], pd.DataFrame]) -> pd.DataFrame:
    """`compute(context)`'s rows with the columns seconds, seconds_per_step, seconds_to_target and
    threads (torch's intra-op threads during the run); see the module docstring."""
    from .suite import task_from_dict

    warm_up = task_from_dict(context["task"]).one_step()  # loads the data, fills the caches
    compute({**context, "task": warm_up.as_dict()})
    start = time.perf_counter()
    rows = compute(context)
    seconds = time.perf_counter() - start
    # a run that raised stopped before its budget: no seconds per step (it would read as the fastest)
    failed = rows["status"].astype(str).str.startswith("failed")
    per_step = pd.Series(seconds / context["task"]["steps"], index=rows.index).where(~failed)
    return rows.assign(
        seconds=seconds,
        seconds_per_step=per_step,
        seconds_to_target=rows["steps"].astype(float) * per_step,
        threads=torch.get_num_threads(),
    )
