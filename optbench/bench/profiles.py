r"""Performance profiles across tasks, their area as a score, and a ranking with bootstrap intervals.

Performance profiles (Dolan & Moré 2002, "Benchmarking optimization software with performance
profiles", Math. Program. 91) as AlgoPerf scores training algorithms with them (Dahl et al. 2023,
"Benchmarking Neural Network Training Algorithms", section 4.5). With t_{p,s} the steps optimizer s
needs to reach task p's target (∞ when it never does, diverged or out of budget):

    r_{p,s} = t_{p,s} / min_s' t_{p,s'}                        performance ratio (∞ if t = ∞)
    ρ_s(τ)  = |{p : r_{p,s} ≤ τ}| / |P|                        the profile, τ ≥ 1
    B_s     = 1/(τ_max - 1) ∫_1^τ_max ρ_s(τ) dτ,  τ_max = 4    the score (AlgoPerf's), in [0, 1]

ρ_s is a step function, so the integral has the closed form used here:
B_s = (1/|P|) Σ_p max(0, τ_max - r_{p,s}) / (τ_max - 1). A task no optimizer reaches has every
r = ∞ and counts against everyone alike.

The time t_{p,s} of one optimizer on one task comes from the tuning protocol (`bench.protocol`): in
each study its fastest trial is rerun with several seeds; t is the median over studies of the median
over that study's seeds (`task_steps`). The ranking's uncertainty (`ranking`) is a bootstrap over
exactly those two levels: studies are resampled with replacement, then seeds within each drawn
study, and the scores and ranks recomputed; intervals are the 2.5 and 97.5 percentiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import OptbenchError

TAU_MAX = 4.0  # AlgoPerf integrates the profile up to τ = 4
COLUMNS = ("optimizer", "task", "study", "seed", "steps")


def performance_ratios(steps) -> np.ndarray:
    """r_{p,s}: `steps` `[..., tasks, optimizers]` (NaN or ∞ = target not reached) over each task's best.

    Returns float64 of the same shape; ∞ where the target was not reached, and on a task nobody reached.
    """
    t = np.asarray(steps, dtype=float)
    t = np.where(np.isnan(t), np.inf, t)
    if np.any(t <= 0):
        raise OptbenchError(f"steps to target must be > 0, got {t[t <= 0].min()}")
    best = t.min(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(t), t / best, np.inf)


def performance_profile(ratios, taus) -> np.ndarray:
    """ρ_s(τ) for every optimizer and τ: `ratios` `[tasks, optimizers]` -> `[optimizers, len(taus)]`."""
    r = np.asarray(ratios, dtype=float)
    taus = np.asarray(taus, dtype=float)
    return (r[:, :, None] <= taus[None, None, :]).mean(axis=0)


def profile_score(ratios, tau_max: float = TAU_MAX) -> np.ndarray:
    """B_s, the area under ρ_s over [1, tau_max] divided by (tau_max - 1): `[..., tasks, optimizers]`
    -> `[..., optimizers]`, each in [0, 1] (1: best on every task; 0: never within tau_max of the best)."""
    if not tau_max > 1:
        raise OptbenchError(f"tau_max must be > 1, got {tau_max}")
    r = np.asarray(ratios, dtype=float)
    return (np.clip(tau_max - r, 0.0, None) / (tau_max - 1)).mean(axis=-2)


def task_steps(table: pd.DataFrame) -> pd.DataFrame:
    """t_{p,s}: the median over studies of the median over seeds of `steps`, as a `[tasks, optimizers]`
    table (rows task, columns optimizer). `table` has the columns of COLUMNS; NaN steps count as ∞."""
    _check(table)
    steps = table.assign(steps=table["steps"].astype(float).fillna(np.inf))
    per_study = steps.groupby(["optimizer", "task", "study"], sort=False)["steps"].median()
    return per_study.groupby(["task", "optimizer"], sort=False).median().unstack("optimizer")


def ranking(
    table: pd.DataFrame,
    *,
    replicates: int = 1000,
    seed: int = 0,
    tau_max: float = TAU_MAX,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per optimizer, best first: score B_s, its bootstrap interval, rank (1 = best, ties
    averaged) and its interval, and the fraction of replicates in which it ranked first (p_best; ties
    count for each, and a score of 0 is never first: an optimizer reaching no target has p_best 0).
    With one study of one seed there is nothing to resample: the intervals and p_best are NaN.

    table: long results with the columns of COLUMNS (every optimizer x task with the same studies
    and seeds). Columns returned: optimizer, score, score_low, score_high, rank, rank_low, rank_high,
    p_best. Raises OptbenchError for a table missing columns, with no rows, or unbalanced.
    """
    cube, optimizers = _cube(table)  # [optimizers, tasks, studies, seeds]
    generator = np.random.default_rng(seed)
    n_opt, n_task, n_study, n_seed = cube.shape
    studies = generator.integers(0, n_study, size=(replicates, n_opt, n_task, n_study))
    seeds = generator.integers(0, n_seed, size=(replicates, n_opt, n_task, n_study, n_seed))
    drawn_studies = np.take_along_axis(cube[None], studies[..., None], axis=3)
    drawn = np.take_along_axis(drawn_studies, seeds, axis=4)
    boot_scores = profile_score(_ratios(drawn), tau_max)  # [replicates, optimizers]
    scores = profile_score(_ratios(cube), tau_max)
    boot_ranks = _ranks(boot_scores)
    tail = (1 - level) / 2 * 100
    frame = pd.DataFrame(
        {
            "optimizer": optimizers,
            "score": scores,
            "score_low": np.percentile(boot_scores, tail, axis=0),
            "score_high": np.percentile(boot_scores, 100 - tail, axis=0),
            "rank": _ranks(scores[None])[0],
            # ranks are discrete: the interval's ends are ranks some replicate took, never an
            # interpolation between two (which printed as ranks like 17.025)
            "rank_low": np.percentile(boot_ranks, tail, axis=0, method="lower"),
            "rank_high": np.percentile(boot_ranks, 100 - tail, axis=0, method="higher"),
            # a replicate in which no optimizer scores above 0 (nobody within tau_max of anything) has no
            # best: ties at 0 would otherwise hand P(best) = 1 to optimizers that reach no target
            "p_best": ((boot_ranks == boot_ranks.min(axis=1, keepdims=True)) & (boot_scores > 0)).mean(
                axis=0
            ),
        }
    )
    if n_study * n_seed == 1:  # one study of one seed: every replicate is the run itself, no interval
        frame[["score_low", "score_high", "rank_low", "rank_high", "p_best"]] = np.nan
    return frame.sort_values(["rank", "optimizer"], ignore_index=True)


def _ratios(cube: np.ndarray) -> np.ndarray:
    """Steps `[..., optimizers, tasks, studies, seeds]` -> ratios `[..., tasks, optimizers]`: the median
    over seeds, then over studies, over each task's best."""
    t = np.median(np.median(cube, axis=-1), axis=-1)  # [..., optimizers, tasks]
    return performance_ratios(t.swapaxes(-1, -2))


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, 1 for the highest score, ties sharing their average rank."""
    from scipy.stats import rankdata

    return rankdata(-scores, axis=-1, method="average")


def _check(table: pd.DataFrame) -> None:
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise OptbenchError(f"results table lacks the columns {', '.join(missing)}")
    if table.empty:
        raise OptbenchError("results table has no rows")


def _cube(table: pd.DataFrame) -> tuple[np.ndarray, list]:
    """The long table as `[optimizers, tasks, studies, seeds]` (∞ for NaN), and the optimizers' order."""
    _check(table)
    optimizers = list(dict.fromkeys(table["optimizer"]))
    axes = [list(dict.fromkeys(table[name])) for name in ("optimizer", "task", "study", "seed")]
    shape = tuple(len(axis) for axis in axes)
    if len(table) != np.prod(shape) or table.duplicated(list(COLUMNS[:4])).any():
        raise OptbenchError(
            "results table is unbalanced: every optimizer needs one row per task, study and seed "
            f"({' x '.join(map(str, shape))} = {np.prod(shape)} rows, got {len(table)})"
        )
    index = pd.MultiIndex.from_product(axes, names=list(COLUMNS[:4]))
    steps = table.set_index(list(COLUMNS[:4]))["steps"].astype(float).reindex(index).fillna(np.inf)
    return steps.to_numpy().reshape(shape), optimizers
