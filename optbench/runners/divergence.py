"""The one definition of divergence, shared by every runner and so by every table and figure.

A run has diverged at the first step where its loss gap f - f_ref is not finite, or has grown beyond

    DIVERGENCE_FACTOR · (|f(start) - f_ref| + 1)

where f_ref is the known minimum f* (0 where none is known, for losses bounded below by 0 such as a
squared error or a cross entropy). The "+ 1" keeps a run that starts at (or very near) the minimum
from counting tiny noise as divergence. A factor of 1e3 flags a loss that grew by three orders of
magnitude above where it started, which no converging run does (the largest transient among the
built-in defaults is under 10x, `tests/test_divergence.py`), long before float64 overflows.
On a surface unbounded below (a saddle) only a non-finite loss counts: |f| large is its nature.
"""

from __future__ import annotations

import numpy as np

DIVERGENCE_FACTOR = 1e3


def divergence_limit(start_loss, reference=0.0):
    """The loss gap beyond which a run counts as diverged: DIVERGENCE_FACTOR (|f(start) - f_ref| + 1).

    start_loss: f at the run's start (a float, a per-trial numpy array, or a tensor on any device, so a
    training loop checks without a device sync); reference: f_ref (f*, or 0).
    """
    return DIVERGENCE_FACTOR * (abs(start_loss - reference) + 1.0)


def is_diverged(loss, start_loss, reference: float | None = 0.0):
    """Whether `loss` (float or array) is past divergence for a run that started at `start_loss`.

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


def first_divergence(losses, start_loss=None, reference: float | None = 0.0) -> int | None:
    """The index of the first diverged entry of a loss sequence (its first entry is the start unless
    `start_loss` is given), or None."""
    losses = np.asarray(losses, dtype=float)
    if not len(losses):
        return None
    start = losses[0] if start_loss is None else start_loss
    hits = np.flatnonzero(is_diverged(losses, start, reference))
    return int(hits[0]) if len(hits) else None
