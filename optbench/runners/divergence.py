"""The one definition of divergence, shared by every runner and so by every table and figure.

With g_t = |f_t - f_ref| the loss gap at step t (f_ref the known minimum f*, or 0 for losses bounded
below by 0 such as a squared error or a cross entropy) and s = g_0 + 1 its scale at the start,
a run that ran its whole budget T has **diverged** when

    (a) g_t is NaN or inf at some step, or
    (b) it ends far above where it started, still rising: g_T > GROWTH_FACTOR · s and the largest g_t of
        the last quarter of the steps (t >= ⌊3T/4⌋) exceeds the largest before it (a finite blow-up, such
        as d2l's f = x² with η = 1.1, where |x| grows 1.2-fold a step: 10 -> 61.9 in 10 steps).

It **diverged at** the first step of its final stretch above the start, one after the last step with
g_t <= g_0: where it left for good, which is where a figure marks it.

A **transient excursion** is a stretch above the start that the run comes back from, or is coming
back from when its budget ends: it is not divergence, however high it went (RMSprop at lr 100 jumps
10^4-fold at step 1 and reaches its tolerance by step 10; SGD whose first momentum step is undampened
jumps 400-fold and is still coming down 30 steps later). So a run that reaches its target and ends
there is never diverged.
The "+ 1" keeps a run that starts at (or very near) the minimum from counting tiny noise as divergence;
GROWTH_FACTOR = 10 is an order of magnitude, far above the noise a stochastic run ends with.

Runners that cannot afford to carry on a blown-up run (training a network, the regression fit) stop it
at the **blow-up limit** DIVERGENCE_FACTOR · s (`is_diverged`): a thousand-fold growth that no built-in
default's excursion reaches (the largest is under 10x, `tests/test_divergence.py`); such a stopped run
counts as diverged at the first step past the limit.

On a surface unbounded below (a saddle) only (a) counts: |f| large is its nature.
"""

from __future__ import annotations

import numpy as np

DIVERGENCE_FACTOR = 1e3  # the blow-up limit, for runners that stop a run early
GROWTH_FACTOR = 10.0  # rule (b): ends more than an order of magnitude above its start scale


def divergence_limit(start_loss, reference=0.0):
    """The blow-up limit on the loss gap: DIVERGENCE_FACTOR (|f(start) - f_ref| + 1).

    start_loss: f at the run's start (a float, a per-trial numpy array, or a tensor on any device, so a
    training loop checks without a device sync); reference: f_ref (f*, or 0).
    """
    return DIVERGENCE_FACTOR * (abs(start_loss - reference) + 1.0)


def growth_limit(start_loss, reference=0.0):
    """Rule (b)'s bound on the final loss gap: GROWTH_FACTOR (|f(start) - f_ref| + 1)."""
    return GROWTH_FACTOR * (abs(start_loss - reference) + 1.0)


def is_diverged(loss, start_loss, reference: float | None = 0.0):
    """Whether `loss` (float or array) is past the blow-up limit, for runners that stop a run early.

    reference: f_ref; None for a loss unbounded below, where only NaN/inf counts.
    """
    loss = np.asarray(loss, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        if reference is None:
            result = ~np.isfinite(loss)
        else:
            result = ~(
                np.abs(loss - reference) <= divergence_limit(np.asarray(start_loss, dtype=float), reference)
            )
    return bool(result) if result.ndim == 0 else result


def late_step(steps: int) -> int:
    """The first step of the last quarter of a run of `steps` steps, ⌊3T/4⌋ (rule (b)'s "still rising")."""
    return int(0.75 * steps)


def diverged_at(losses, reference: float | None = 0.0) -> np.ndarray:
    """Per run, the step at which it diverged (rules (a) and (b) above), NaN where it did not.

    losses: [steps + 1, ...] f from the start (row 0, the start) to the end of the budget, one column per
    run (any trailing shape); reference: f_ref, None for a loss unbounded below (rule (a) only).
    Returns a float array of the trailing shape (a 0-d array for a 1-D sequence).
    """
    losses = np.asarray(losses, dtype=float)
    steps = np.arange(len(losses)).reshape((-1,) + (1,) * (losses.ndim - 1))
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(losses)
        if reference is None:
            first_bad = np.where(finite, len(losses), steps).min(axis=0)
            return np.where(finite.all(axis=0), np.nan, first_bad).astype(float)
        gaps = np.abs(losses - reference)
        late = late_step(len(losses) - 1)
        early_peak = gaps[:late].max(axis=0) if late else np.full(gaps.shape[1:], -np.inf)
        rising = gaps[late:].max(axis=0) > early_peak
        diverged = ~finite.all(axis=0) | (~(gaps[-1] <= growth_limit(losses[0], reference)) & rising)
        within = gaps <= gaps[0]
        last_within = np.where(within, steps, -1).max(axis=0)
    return np.where(diverged, np.minimum(last_within + 1, len(losses) - 1), np.nan).astype(float)


def first_divergence(losses, reference: float | None = 0.0) -> int | None:
    """`diverged_at` of one loss sequence (its first entry the start) as an int, or None."""
    if not len(losses):
        return None
    at = float(diverged_at(losses, reference))
    return None if np.isnan(at) else int(at)
