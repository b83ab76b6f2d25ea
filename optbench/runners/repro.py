"""Reproducibility: where two runs of the same comparison part ways, and by how much."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def first_difference(a: pd.DataFrame, b: pd.DataFrame, columns) -> dict:
    """Compare two trajectory tables of one optimizer row by row (same trials and recorded steps).

    Returns {'first_step': the first recorded step at which any trial's `columns` differ bitwise
    (NaN equals NaN; None if never), 'difference_there': the largest absolute difference at that step,
    'max_difference': the largest over the whole run, 'steps': the last step compared}.
    """
    if len(a) != len(b) or not np.array_equal(a["step"].to_numpy(), b["step"].to_numpy()):
        raise ValueError("the two runs recorded different steps")
    left = a[list(columns)].to_numpy(dtype=float)
    right = b[list(columns)].to_numpy(dtype=float)
    same = (left == right) | (np.isnan(left) & np.isnan(right))
    gap = np.where(same, 0.0, np.abs(left - right))
    gap = np.where(np.isnan(gap), math.inf, gap)  # finite on one side, NaN on the other
    differs = ~same.all(axis=1)
    steps = a["step"].to_numpy()
    result = {
        "first_step": None,
        "difference_there": 0.0,
        "max_difference": float(gap.max(initial=0.0)),
        "steps": int(steps.max()) if len(steps) else 0,
    }
    if differs.any():
        first = int(steps[differs].min())
        result["first_step"] = first
        result["difference_there"] = float(gap[steps == first].max())
    return result


def compare_runs(first: pd.DataFrame, second: pd.DataFrame, label: str, columns) -> pd.DataFrame:
    """One row per optimizer: `first_difference` between two concatenated trajectory tables."""
    rows = []
    for name, run in first.groupby("optimizer", sort=False):
        other = second[second["optimizer"] == name]
        rows.append({"optimizer": name, "comparison": label, **first_difference(run, other, columns)})
    return pd.DataFrame(rows)
