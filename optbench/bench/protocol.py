"""AlgoPerf's external-tuning protocol: one search space for everyone, quasi-random studies, the fastest
trial per study, the median over studies.

Dahl et al. 2023 ("Benchmarking Neural Network Training Algorithms", section 4.4.1): each submission
gets the same number of quasi-random trials over its search space, organised as independent studies
(5 studies of 5 trials here, as the issue asks for a laptop; AlgoPerf ran 5 of 20); in each study the
fastest trial to the target wins; the workload's time is the median over studies of the winners' times.
Quasi-random search follows Bousquet et al. 2017 ("Critical hyper-parameters: no random, no cry"): a
scrambled Halton sequence (scipy.stats.qmc), seeded per study, mapped to each axis's scale.

Fairness is in the search space: the learning rate is log-uniform over ONE range for every optimizer;
momentum-like coefficients are searched as 1 - β, log-uniform, for every optimizer that has them
(`momentum`, and `betas` as beta1/beta2), where the optimizer's own default is nonzero and the spec does
not fix it (SGD's default momentum is 0, so plain SGD stays plain; `momentum` fixes 0.9).

The schedule family is the same for everyone and fixed, not searched: every trial's lr (its searched
peak) is warmed up linearly over the first WARMUP_FRACTION of the task's budget, then decayed by a
cosine to 0 at the budget's end (`runners.schedules.warmup_then_decay`), per trial. Cosine rather than
linear decay: it is AlgoPerf's baseline schedule (Dahl et al. 2023, appendix) and nanoGPT's, so numbers
compare with theirs; decay to 0 rather than to a floor, because Wen et al. 2025 and Kaddour et al. 2023
find claimed speed-ups shrink once every optimizer decays fully, and because a fixed-step method (Lion,
sign descent) can settle within a tolerance only as its step shrinks to 0. The warm-up fraction is fixed
at 5% (AlgoPerf's baselines search 2-10%; searching it would spend the few trials a laptop affords on an
axis that matters little next to lr).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import OptbenchError
from ..specs import OptimizerSpec

DEFAULT_STUDIES = 5
DEFAULT_TRIALS = 5
WARMUP_FRACTION = 0.05  # of the budget; see the module docstring
SCHEDULE = {"warmup": "linear", "warmup_fraction": WARMUP_FRACTION, "decay": "cosine to 0"}


@dataclass(frozen=True)
class LogUniform:
    """A hyperparameter drawn log-uniformly in [low, high] (as 1 - value when `one_minus`)."""

    low: float
    high: float
    one_minus: bool = False

    def __post_init__(self):
        if not 0 < self.low < self.high:
            raise OptbenchError(f"a log-uniform range needs 0 < low < high, got [{self.low}, {self.high}]")

    def value(self, u: float) -> float:
        """The value at quantile u in [0, 1)."""
        drawn = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return 1.0 - drawn if self.one_minus else drawn


# lr over five decades, enough for SGD (around 0.1) and Adam (around 1e-3) alike; 1 - momentum and
# 1 - beta1 from 0.01 to 0.5 (momentum 0.5-0.99), 1 - beta2 from 1e-3 to 0.1 (beta2 0.9-0.999)
DEFAULT_SPACE = {
    "lr": LogUniform(1e-5, 1.0),
    "momentum": LogUniform(1e-2, 0.5, one_minus=True),
    "beta1": LogUniform(1e-2, 0.5, one_minus=True),
    "beta2": LogUniform(1e-3, 0.1, one_minus=True),
}


def schedule(steps: int):
    """The protocol's `make_scheduler` for a budget of `steps` steps (see the module docstring)."""
    from ..runners.schedules import warmup_then_decay

    return warmup_then_decay(steps, WARMUP_FRACTION)


def searched_axes(spec: OptimizerSpec, space: dict | None = None) -> list[str]:
    """The axes of `space` that apply to `spec`: lr always; momentum, beta1 and beta2 where the algorithm
    has them with a nonzero default and the spec does not set them."""
    space = DEFAULT_SPACE if space is None else space
    defaults = spec.algorithm.defaults()
    fixed = set(spec.hparams)
    axes = []
    for name in space:
        if name == "lr":
            axes.append(name)
        elif name in ("beta1", "beta2"):
            if "betas" in defaults and "betas" not in fixed:
                axes.append(name)
        elif defaults.get(name) and name not in fixed:
            axes.append(name)
    return axes


def quasi_random_studies(
    spec: OptimizerSpec,
    *,
    studies: int = DEFAULT_STUDIES,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    space: dict | None = None,
) -> pd.DataFrame:
    """The trials to run for `spec`: one row per (study, trial), a column per searched axis.

    Each study draws its own scrambled Halton sequence (seeded with `seed` and the study's index), so
    studies are independent and the same seed gives the same table. Raises OptbenchError for fewer than
    one study or trial.
    """
    from scipy.stats import qmc

    if studies < 1 or trials < 1:
        raise OptbenchError(f"the protocol needs at least 1 study of 1 trial, got {studies} x {trials}")
    space = DEFAULT_SPACE if space is None else space
    axes = searched_axes(spec, space)
    rows = []
    for study in range(studies):
        points = qmc.Halton(d=len(axes), scramble=True, seed=np.random.default_rng([seed, study])).random(
            trials
        )
        for trial, point in enumerate(points):
            rows.append(
                {
                    "study": study,
                    "trial": trial,
                    **{a: space[a].value(float(u)) for a, u in zip(axes, point, strict=True)},
                }
            )
    return pd.DataFrame(rows)


def fastest_per_study(table: pd.DataFrame, keys=("optimizer", "task"), maximised=()) -> pd.DataFrame:
    """Each study's winner: per `keys` + study, the row with the fewest `steps` (NaN counts as never).
    Ties, and a study where nothing reached the target, go to the trial that ended closest to it: a
    trial that neither diverged nor failed (`status`) before one that did, then the better
    `final_metric` (lower, or higher for the tasks named in `maximised`, e.g. accuracy), then the lower
    trial index. A study that reached nothing thus still reruns its best trial, never a diverged one
    by its index. `status` and `final_metric` are optional columns. Raises OptbenchError for a table
    lacking a key, study, trial or steps column."""
    missing = [c for c in (*keys, "study", "trial", "steps") if c not in table.columns]
    if missing:
        raise OptbenchError(f"trial table lacks the columns {', '.join(missing)}")
    broken, metric = closeness(table, maximised)
    ranked = table.assign(
        steps=table["steps"].astype(float).fillna(np.inf),
        _broken=broken,
        _metric=metric.fillna(np.inf),
    ).sort_values([*keys, "study", "steps", "_broken", "_metric", "trial"], kind="stable")
    winners = ranked.groupby([*keys, "study"], sort=False).head(1).reset_index(drop=True)
    return winners.drop(columns=["_broken", "_metric"])


def closeness(table: pd.DataFrame, maximised=()) -> tuple[pd.Series, pd.Series]:
    """How close each run of `table` ended to its target, for ties on steps: (broken: diverged or
    failed, by `status`; the final metric oriented so that lower is closer: negated for the tasks
    named in `maximised`, NaN where unknown). Both columns are optional in `table`."""
    status = table["status"] if "status" in table.columns else pd.Series("reached", index=table.index)
    metric = (
        table["final_metric"].astype(float)
        if "final_metric" in table.columns
        else pd.Series(0.0, index=table.index)
    )
    if "task" in table.columns:
        metric = metric.where(~table["task"].isin(list(maximised)), -metric)
    return ~status.isin(["reached", "not reached"]), metric


def median_over_studies(winners: pd.DataFrame, keys=("optimizer", "task")) -> pd.Series:
    """AlgoPerf's time of a submission on a workload: the median over studies of the winners' steps."""
    return winners.groupby(list(keys))["steps"].median()
