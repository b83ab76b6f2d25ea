"""Runs that differ only in their seed, summarised: the mean of a metric with the Student-t interval
of that mean, at every step (or epoch) the runs share.

    band = seed_band(evaluations[evaluations["optimizer"] == "adamw"], "step", "val_loss")
    band.columns   # step, mean, low, high, seeds

The interval is the textbook one for the mean of n independent draws of unknown variance:
mean ± t_{(1 + c)/2, n - 1} · s / √n, s the sample standard deviation (ddof 1) over the n seeds and
t the Student-t quantile (e.g. Wasserman, *All of Statistics*, §10.2). It assumes roughly normal
per-seed values, which a handful of seeds cannot check; it says where the mean of more seeds would
likely fall, not where one more run would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

CONFIDENCE = 0.95  # the band train's figures draw (issue 21: "a 95% band")


def seed_band(
    runs: pd.DataFrame, x: str, y: str, confidence: float = CONFIDENCE, log: bool = False
) -> pd.DataFrame:
    """Per value of column `x` of `runs` (one setting's rows; a `seed` column tells its runs apart,
    and a table without one is one run): columns `x`, `mean`, `low`, `high`, `seeds`.

    Only finite values of `y` count (a diverged seed leaves the mean where it stopped); `seeds` is
    how many did at that `x`. low/high: the Student-t interval of the mean at `confidence`; NaN
    where fewer than 2 seeds count. Sorted by `x`. With `log`, the same on ln y (positive values
    only), mapped back: the geometric mean and its interval, for a quantity spanning decades (a gap
    f - f*), whose arithmetic interval would reach below zero.
    """
    values = runs[y].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = np.isfinite(values) & (values > 0) if log else np.isfinite(values)
        finite = runs.loc[kept, [x]].assign(**{y: np.log(values[kept]) if log else values[kept]})
    grouped = finite.groupby(x, sort=True)[y]
    band = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "seeds": grouped.count()})
    several = band["seeds"] >= 2
    quantile = student_t.ppf(0.5 + confidence / 2, band["seeds"].where(several) - 1)
    half = quantile * band["sd"] / np.sqrt(band["seeds"])
    band["low"], band["high"] = band["mean"] - half, band["mean"] + half
    if log:
        band[["mean", "low", "high"]] = np.exp(band[["mean", "low", "high"]])
    return band.reset_index()[[x, "mean", "low", "high", "seeds"]]


def seed_count(table: pd.DataFrame | None) -> int:
    """How many seeds `table` holds (1 without a `seed` column or rows)."""
    if table is None or "seed" not in table or not len(table):
        return 1
    return int(table["seed"].nunique())
