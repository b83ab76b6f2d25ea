"""The benchmark's ranking and summary as people read them: one text per cell, shown as they are by the
terminal (`optbench bench`), the HTML report and the published page (`docs/bench_page.py`), so the
three never disagree.

- steps to target (a median over seeds, then studies: it may end in .5) exactly, '117.5' and not
  '118'; '∞' where the target was not reached;
- every other measure to 3 significant digits (`formats.format_number`), ∞ as '∞';
- '–' where there is nothing to show: the seconds of a failed run, the interval of a single seed, the
  bootstrap intervals and P(best) of a benchmark with one study of one seed (nothing to resample).
"""

from __future__ import annotations

import math

import pandas as pd

from ..formats import format_number

DASH = "–"
NEVER = "∞"


def measure(value) -> str:
    """3 significant digits; DASH for NaN (nothing measured), NEVER for ∞ (a final loss that blew up)."""
    if _missing(value):
        return DASH
    if math.isinf(float(value)):
        return NEVER if float(value) > 0 else "-" + NEVER
    return format_number(value)


def steps(value) -> str:
    """Steps to target exactly ('117.5', '40'); NEVER for ∞, DASH for NaN."""
    if _missing(value):
        return DASH
    value = float(value)
    return NEVER if math.isinf(value) else f"{value:g}"


def whole(value) -> str:
    """A count ('3'); DASH for NaN."""
    return DASH if _missing(value) else str(int(value))


def interval(low, high, show=measure) -> str:
    """'low to high', or DASH when either end is missing."""
    return DASH if _missing(low) or _missing(high) else f"{show(low)} to {show(high)}"


def ranking_view(ranking: pd.DataFrame, task_steps: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The ranking (`profiles.ranking`) with each optimizer's steps per task (`profiles.task_steps`,
    rows task, columns optimizer), one column per task, as text."""
    level = f"{confidence:.0%}"
    return pd.DataFrame(
        {
            "rank": [f"{rank:g}" for rank in ranking["rank"]],
            "optimizer": ranking["optimizer"],
            "score": [f"{score:.3f}" for score in ranking["score"]],
            f"score {level}": [
                interval(low, high, "{:.3f}".format)
                for low, high in zip(ranking["score_low"], ranking["score_high"], strict=True)
            ],
            f"rank {level}": [
                interval(low, high, "{:g}".format)
                for low, high in zip(ranking["rank_low"], ranking["rank_high"], strict=True)
            ],
            "P(best)": [DASH if _missing(p) else f"{p:.2f}" for p in ranking["p_best"]],
            **{
                str(task): [steps(task_steps.loc[task, name]) for name in ranking["optimizer"]]
                for task in task_steps.index
            },
        }
    )


def summary_view(summary: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The summary table (`result.summary`): each task's winner, as text."""
    return pd.DataFrame(
        {
            "task": summary["task"],
            "optimizer": summary["optimizer"],
            "study": summary["study"].map(whole),
            "steps": summary["steps"].map(steps),
            "seeds": summary["seeds"].map(whole),
            "metric": summary["metric"],
            "final (mean over seeds)": summary["final_metric"].map(measure),
            f"{confidence:.0%} interval": [
                interval(low, high)
                for low, high in zip(summary["final_metric_low"], summary["final_metric_high"], strict=True)
            ],
            "s/step": summary["seconds_per_step"].map(measure),
            "s to target": summary["seconds_to_target"].map(measure),
        }
    )


def _missing(value) -> bool:
    try:
        return value is None or math.isnan(float(value))
    except (TypeError, ValueError):
        return False
