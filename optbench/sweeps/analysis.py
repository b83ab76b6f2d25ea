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

from ..tasks import TaskKind
from . import noise_scale
from .adapters import NOISE_METHOD
from .columns import PER_CELL_COLUMNS, SETTING_COLUMNS, grid_columns, optimizer_setting_columns

STALL_FRACTION = 0.01  # "stalled": the last quarter of evaluations gained < 1% of the metric's range
CRITICAL_METHOD = (
    "least-squares fit in log space of steps-to-target = S_min (1 + B_crit / B) "
    "(McCandlish et al. 2018, eq. 2.11) to every seed's run at the batch sizes that reached the target; "
    "95% profile-likelihood interval calibrated by F(1, n - 2) (Bates & Watts 1988, sec. 6.1)"
)
INTERVAL_DECADES = 4  # the profile is searched this many decades beyond the measured batch sizes
FIT_GRID = 2001  # log-spaced B_crit candidates, two decades beyond the measured batch sizes
CONFIDENCE = 0.95
MAX_RMS = 0.2  # rms log residual above which the curve does not have the model's shape


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
        rows.append(
            {
                **{c: first[c] for c in settings},
                "steps": int(cell["step"].max()),
                "samples": int(cell["samples"].max()),
                "final_loss": evaluated["eval_loss"].iloc[-1] if len(evaluated) else math.nan,
                "final_accuracy": evaluated["eval_accuracy"].iloc[-1] if len(evaluated) else math.nan,
                "best_accuracy": evaluated["eval_accuracy"].max(),
                "steps_to_target": steps,
                "samples_to_target": steps * first["batch_size"],
                "target_outcome": target_outcome(cell, evaluated, steps, target_accuracy, target_loss),
                "target_accuracy": target_accuracy,
                "target_loss": target_loss,
                **{c: first[c] for c in PER_CELL_COLUMNS if c in cell.columns},
            }
        )
    return _mark_chosen_lr(pd.DataFrame(rows))


def _mark_chosen_lr(summary: pd.DataFrame) -> pd.DataFrame:
    """`lr_chosen`: the cell that stands for its (setting, rule, batch size, seed): every cell of a
    single-lr rule; for `tuned`, the lr of its grid with the fewest steps to target (the lowest final
    loss where none reached it, so a row is always chosen)."""
    keys = optimizer_setting_columns(summary) + ["lr_scale", "batch_size", "seed"]
    rank = summary.assign(
        _steps=summary["steps_to_target"].fillna(np.inf), _loss=summary["final_loss"].fillna(np.inf)
    )
    order = rank.sort_values(["_steps", "_loss", "lr"], kind="stable")
    chosen = order.groupby(keys, sort=False, dropna=False).head(1).index
    return summary.assign(lr_chosen=summary.index.isin(chosen))


def target_outcome(
    cell: pd.DataFrame, evaluated: pd.DataFrame, steps: float, target_accuracy=None, target_loss=None
) -> str:
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
    s_min, b_crit, best = _fit_many(
        np.asarray(batch_sizes, dtype=float), np.log(np.asarray(steps, dtype=float))[None]
    )
    return float(s_min[0]), float(b_crit[0]), bool(best[0] in (0, FIT_GRID - 1))


def _fit_many(b: np.ndarray, log_steps: np.ndarray):
    """The fit for many curves at once: log_steps [curves, points] at batch sizes b [points]."""
    grid = np.logspace(np.log10(b.min()) - 2, np.log10(b.max()) + 2, FIT_GRID)
    shapes = np.log1p(grid[:, None] / b[None, :])  # [grid, points]
    log_s_min = log_steps.mean(axis=1)[:, None] - shapes.mean(axis=1)[None, :]  # [curves, grid]
    # Σ (y - shape - log S_min)² = Σ (y - shape)² - n·mean(y - shape)², without a [curves, grid, points] array
    n = len(b)
    squares = (log_steps**2).sum(axis=1)[:, None] - 2 * log_steps @ shapes.T + (shapes**2).sum(axis=1)[None]
    best = np.argmin(squares - n * log_s_min**2, axis=1)
    rows = np.arange(len(log_steps))
    return np.exp(log_s_min[rows, best]), grid[best], best


def critical_batch_fit(per_seed: pd.DataFrame) -> dict:
    """B_crit with its CONFIDENCE interval, or the reason there is none.

    per_seed: columns batch_size, seed, steps_to_target (NaN: missed). Every seed's run is one point of
    the fit (a batch size where any seed missed is left out, so no batch size is judged on its lucky
    seeds). Returns s_min, e_min, critical_batch_size, critical_low, critical_high (NaN unless fitted;
    critical_high inf where the data bound B_crit only from below), fit_residual (rms of the log
    residuals), points (batch sizes), and `fit_status`:
    - "fitted": B_crit inside the measured batch sizes and the model fits (rms log residual <= MAX_RMS);
      "fitted; not identifiable above ..." where the interval has no upper end within INTERVAL_DECADES;
    - "steps rise with B: the model does not apply" (S_min(1 + B_crit/B) never rises);
    - "B_crit below the measured range (< B_min)" / "above the measured range (> B_max)";
    - "data do not fit the model (rms residual x%)"; "too few batch sizes reached the target".
    Interval (`profile_interval`): the B_crit whose best-fitting curve raises the residual sum of squares
    by at most F(1, n - 2) times the residual variance, n the number of runs: exact for a model linear in
    its parameters, and the standard calibration for a nonlinear one with n - 2 degrees of freedom.
    """
    reached = per_seed.groupby("batch_size")["steps_to_target"].transform(lambda v: v.notna().all())
    runs = per_seed[reached.astype(bool)].sort_values("batch_size")
    b = runs["batch_size"].to_numpy(dtype=float)
    steps = runs["steps_to_target"].to_numpy(dtype=float)
    sizes = np.unique(b)
    result = {
        "points": len(sizes),
        "s_min": math.nan,
        "e_min": math.nan,
        "critical_batch_size": math.nan,
        "critical_low": math.nan,
        "critical_high": math.nan,
        "fit_residual": math.nan,
    }
    if len(sizes) < 3:
        return {**result, "fit_status": "too few batch sizes reached the target"}
    log_steps = np.log(steps)
    if np.polyfit(np.log(b), log_steps, 1)[0] > 0:
        return {**result, "fit_status": "steps rise with B: the model does not apply"}
    s_min, b_crit, _ = fit_critical_batch(b, steps)
    residual = log_steps - np.log(s_min * (1 + b_crit / b))
    rms = float(np.sqrt(np.mean(residual**2)))
    result["fit_residual"] = rms
    if b_crit < b.min():
        return {**result, "fit_status": f"B_crit below the measured range (< {b.min():g})"}
    if b_crit > b.max():
        return {**result, "fit_status": f"B_crit above the measured range (> {b.max():g})"}
    if rms > MAX_RMS:
        return {**result, "fit_status": f"data do not fit the model (rms residual {rms:.0%})"}
    low, high = profile_interval(b, log_steps)
    status = (
        "fitted"
        if math.isfinite(high)
        else "fitted; not identifiable above the lower bound from these points"
    )
    return {
        **result,
        "s_min": s_min,
        "e_min": s_min * b_crit,
        "critical_batch_size": b_crit,
        "critical_low": low,
        "critical_high": high,
        "fit_status": status,
    }


def profile_interval(b, log_steps, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The profile-likelihood interval of B_crit for log steps = log S_min + log(1 + B_crit/B) + ε.

    b, log_steps: [n] one entry per run (n >= 3). The set {B_crit: RSS(B_crit) - RSS_min <=
    F_{1, n-2}(confidence) RSS_min / (n - 2)}, RSS profiled over S_min in closed form, searched on a
    log grid INTERVAL_DECADES beyond the batch sizes; a side that reaches the grid's end is unbounded
    (0 below, inf above): B_crit > 0, and the data say nothing past it. Source: Bates & Watts (1988),
    "Nonlinear regression analysis", sec. 6.1 (likelihood regions with the F calibration).
    """
    from scipy.stats import f as f_distribution

    b, y = np.asarray(b, dtype=float), np.asarray(log_steps, dtype=float)
    n = len(b)
    grid = np.logspace(np.log10(b.min()) - INTERVAL_DECADES, np.log10(b.max()) + INTERVAL_DECADES, 8001)
    deviations = y[None, :] - np.log1p(grid[:, None] / b[None, :])  # [grid, n]
    rss = ((deviations - deviations.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    best = rss.min()
    inside = np.flatnonzero(rss - best <= f_distribution.ppf(confidence, 1, n - 2) * best / (n - 2))
    low = 0.0 if inside[0] == 0 else float(grid[inside[0]])
    high = math.inf if inside[-1] == len(grid) - 1 else float(grid[inside[-1]])
    return low, high


def critical_batch_sizes(summary: pd.DataFrame, kind: TaskKind = TaskKind.CLASSIFICATION) -> pd.DataFrame:
    """Per optimizer setting (optimizer and extra grid axes): the critical batch size fitted to the
    steps-to-target curve (`critical_batch_fit`: with its interval, or the reason there is none), per
    rule and for the best rule at each batch size, next to the noise scale measured at the base batch
    size (`pooled_noise_scale`). Empty when no cell has a steps-to-target."""
    if summary.empty or summary["steps_to_target"].isna().all():
        return pd.DataFrame()
    names = optimizer_setting_columns(summary)
    rows = []
    for group_key, group in summary.groupby(names, sort=False, dropna=False):
        chosen = group[group["lr_chosen"]] if "lr_chosen" in group else group
        per_rule = {
            rule: part[["batch_size", "seed", "steps_to_target"]]
            for rule, part in chosen.groupby("lr_scale", sort=False)
        }
        best = chosen.groupby(["batch_size", "seed"], sort=False)["steps_to_target"].min().reset_index()
        per_rule["best rule"] = best
        b0 = group["base_batch_size"].iloc[0]
        at_b0 = (
            group[group["batch_size"] == b0]
            if (group["batch_size"] == b0).any()
            else group[group["batch_size"] == group["batch_size"].min()]
        )
        keys = group_key if isinstance(group_key, tuple) else (group_key,)
        noise = pooled_noise_scale(at_b0)
        for rule, per_seed in per_rule.items():
            fit = critical_batch_fit(per_seed)
            rows.append(
                {
                    **dict(zip(names, keys, strict=False)),
                    "lr_scale": rule,
                    **fit,
                    "at_edge": fit["fit_status"].startswith("B_crit"),
                    "method": CRITICAL_METHOD,
                    **noise,
                    "noise_method": NOISE_METHOD[kind],
                }
            )
    return pd.DataFrame(rows)


def pooled_noise_scale(cells: pd.DataFrame) -> dict:
    """The noise scale of the cells of one setting at one batch size, over their seeds: at the start the
    mean of the seeds' B_simple with its interval (`noise_scale.pool`: every seed's batches at once; the
    cells of one seed share its initial weights, so they measured the same value), at the end the median
    over the cells (their final weights differ); NaN where not measured (a language model)."""
    names = ("noise_scale_start", "noise_scale_start_se", "noise_scale_start_dof")
    if "noise_scale_start" not in cells or cells["noise_scale_start"].isna().all():
        return dict.fromkeys(
            (
                "noise_scale_start",
                "noise_scale_start_low",
                "noise_scale_start_high",
                "noise_scale_end",
                "noise_seeds",
            ),
            math.nan,
        )
    per_seed = cells.drop_duplicates("seed") if "seed" in cells else cells
    if set(names) <= set(cells.columns):
        mean, low, high = noise_scale.pool(*(per_seed[name] for name in names))
    else:  # a table from before the standard errors were stored: the mean, without an interval
        mean, low, high = float(per_seed["noise_scale_start"].mean()), math.nan, math.nan
    return {
        "noise_scale_start": mean,
        "noise_scale_start_low": low,
        "noise_scale_start_high": high,
        "noise_scale_end": float(cells["noise_scale_end"].median()),
        "noise_seeds": len(per_seed),
    }
