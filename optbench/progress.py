"""The one progress event every runner and experiment reports, and a front end renders.

A `progress` argument anywhere in optbench (compare, grid, train, sweep) is a callable taking a
`Progress`. Runners never print; the CLI draws one bar per `bar`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Work advanced on one bar.

    bar: what advances (an optimizer's label; "sweep" for a sweep's cells);
    done, total: units of `bar` finished and in all (steps, or cells), done <= total;
    status: what just happened, in a few words ("skipped: sgd B=4 seed=0", "epoch 2 loss 0.31"),
        or "" when there is nothing to say;
    metrics: the evaluation just made (a training epoch's row), else None.
    """

    bar: str
    done: int
    total: int
    status: str = ""
    metrics: dict | None = None
