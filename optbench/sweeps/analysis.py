"""From cell tables to answers: steps to a target per cell, and the critical batch size.

The model (McCandlish et al. 2018, "An empirical model of large-batch training", eq. 2.11):
the steps S a run needs to reach a target at batch size B follow

    S = S_min (1 + B_crit / B),    and the samples E = S B = E_min (1 + B / B_crit),  E_min = S_min B_crit

so below B_crit a doubled batch nearly halves the steps, above it it nearly doubles the samples.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .adapters import NOISE_METHOD
from .columns import PER_CELL_COLUMNS, SETTING_COLUMNS, grid_columns, optimizer_setting_columns

STALL_FRACTION = 0.01   # "stalled": the last quarter of evaluations gained < 1% of the metric's range
CRITICAL_METHOD = ("least-squares fit in log space of steps-to-target = S_min (1 + B_crit / B) "
                   "(McCandlish et al. 2018, eq. 2.11) over the batch sizes that reached the target")


def summarize(table: pd.DataFrame, target_accuracy=None, target_loss=None) -> pd.DataFrame:
    """One row per cell: its settings, final and best metrics, time, throughput, and the steps and
    samples to the target (`steps_to_target`) and why it was not reached (`target_outcome`); empty for
    an empty table."""
    if table.empty:
        return pd.DataFrame()
    axes = grid_columns(table)
    settings = [c for c in table.columns if c in SETTING_COLUMNS or c in axes]
    rows = []
    for _, cell in table.groupby("cell", sort=False):
        first = cell.iloc[0]
        evaluated = cell[cell["eval_loss"].notna() | cell["eval_accuracy"].notna()]
        steps = steps_to_target(evaluated, target_accuracy, target_loss)
        rows.append({**{c: first[c] for c in settings},
                     "steps": int(cell["step"].max()), "samples": int(cell["samples"].max()),
                     "final_loss": evaluated["eval_loss"].iloc[-1] if len(evaluated) else math.nan,
                     "final_accuracy": evaluated["eval_accuracy"].iloc[-1] if len(evaluated) else math.nan,
                     "best_accuracy": evaluated["eval_accuracy"].max(),
                     "steps_to_target": steps, "samples_to_target": steps * first["batch_size"],
                     "target_outcome": target_outcome(cell, evaluated, steps, target_accuracy, target_loss),
                     "target_accuracy": target_accuracy, "target_loss": target_loss,
                     **{c: first[c] for c in PER_CELL_COLUMNS if c in cell.columns}})
    return pd.DataFrame(rows)


def target_outcome(cell: pd.DataFrame, evaluated: pd.DataFrame, steps: float, target_accuracy=None,
                   target_loss=None) -> str:
    """'reached', 'no target', 'diverged at step t', 'stalled after N steps' (the last quarter of the
    evaluations improved the tracked metric by less than STALL_FRACTION of its range so far) or
    'budget ran out after N steps'."""
    if target_accuracy is None and target_loss is None:
        return "no target"
    if math.isfinite(steps):
        return "reached"
    budget = int(cell["step"].max())
    if "diverged" in cell.columns and bool(cell["diverged"].iloc[0]):
        return f"diverged by step {budget}"
    column, sign = ("eval_accuracy", 1) if target_accuracy is not None else ("eval_loss", -1)
    values = sign * evaluated[column].to_numpy(dtype=float)
    if len(values) >= 4 and np.isfinite(values).all():
        late = len(values) * 3 // 4
        spread = values.max() - values.min()
        if values[late:].max() - values[:late].max() <= STALL_FRACTION * spread:
            return f"stalled after {budget} steps"
    return f"budget ran out after {budget} steps"


def steps_to_target(evaluated: pd.DataFrame, target_accuracy=None, target_loss=None) -> float:
    """Steps until every given target holds, interpolated linearly between evaluations; NaN if never.

    `evaluated` has `step`, `eval_accuracy` and `eval_loss` (NaN where not evaluated).
    """
    if target_accuracy is None and target_loss is None:
        return math.nan
    crossings = []
    for column, target, sign in (("eval_accuracy", target_accuracy, 1), ("eval_loss", target_loss, -1)):
        if target is None:
            continue
        values = sign * evaluated[column].to_numpy(dtype=float)
        steps = evaluated["step"].to_numpy(dtype=float)
        hit = np.flatnonzero(np.nan_to_num(values, nan=-np.inf) >= sign * target)
        if not len(hit):
            return math.nan
        i = hit[0]
        if i == 0 or not np.isfinite(values[i - 1]):
            crossings.append(steps[i])
        else:
            fraction = (sign * target - values[i - 1]) / (values[i] - values[i - 1])
            crossings.append(steps[i - 1] + fraction * (steps[i] - steps[i - 1]))
    return float(max(crossings))


def fit_critical_batch(batch_sizes, steps) -> tuple[float, float, bool]:
    """(S_min, B_crit, at_edge) for steps = S_min (1 + B_crit / B), least squares on log(steps).

    For each B_crit on a fine log grid, log S_min has a closed form (the mean residual); the best
    B_crit wins. `at_edge` says it hit the grid's end (the data do not bracket it).
    """
    b = np.asarray(batch_sizes, dtype=float)
    log_steps = np.log(np.asarray(steps, dtype=float))
    grid = np.logspace(np.log10(b.min()) - 2, np.log10(b.max()) + 2, 2001)
    shapes = np.log1p(grid[:, None] / b[None, :])              # [grid, points]
    log_s_min = (log_steps[None, :] - shapes).mean(axis=1)
    errors = ((log_steps[None, :] - shapes - log_s_min[:, None]) ** 2).sum(axis=1)
    best = int(np.argmin(errors))
    return float(np.exp(log_s_min[best])), float(grid[best]), best in (0, len(grid) - 1)


def critical_batch_sizes(summary: pd.DataFrame, kind: str = "training") -> pd.DataFrame:
    """Per optimizer setting (optimizer and extra grid axes): the critical batch size fitted to the
    steps-to-target curve, per rule and for the best rule at each batch size, next to the noise
    scale measured at the base batch size. Empty when no cell has a steps-to-target."""
    if summary.empty or summary["steps_to_target"].isna().all():
        return pd.DataFrame()
    names = optimizer_setting_columns(summary)
    rows = []
    for group_key, group in summary.groupby(names, sort=False, dropna=False):
        per_rule = _median_steps(group, ["lr_scale", "batch_size"])
        curves = {rule: part.set_index("batch_size")["steps_to_target"]
                  for rule, part in per_rule.groupby("lr_scale", sort=False)}
        curves["best rule"] = per_rule.groupby("batch_size")["steps_to_target"].min()
        b0 = group["base_batch_size"].iloc[0]
        at_b0 = group[group["batch_size"] == b0] if (group["batch_size"] == b0).any() \
            else group[group["batch_size"] == group["batch_size"].min()]
        keys = group_key if isinstance(group_key, tuple) else (group_key,)
        for rule, curve in curves.items():
            curve = curve.dropna()
            s_min = b_crit = math.nan
            edge = False
            if len(curve) >= 3:
                s_min, b_crit, edge = fit_critical_batch(curve.index, curve.values)
            rows.append({**dict(zip(names, keys)), "lr_scale": rule, "points": len(curve),
                         "s_min": s_min, "e_min": s_min * b_crit, "critical_batch_size": b_crit,
                         "at_edge": edge, "method": CRITICAL_METHOD,
                         "noise_scale_start": float(at_b0["noise_scale_start"].median()),
                         "noise_scale_end": float(at_b0["noise_scale_end"].median()),
                         "noise_method": NOISE_METHOD[kind]})
    return pd.DataFrame(rows)


def _median_steps(group: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Median over seeds; a setting where any seed missed the target counts as missed."""
    def median(values):
        return math.nan if values.isna().any() else float(values.median())
    return group.groupby(by, sort=False)["steps_to_target"].agg(median).reset_index()
