"""The benchmark's performance-profile figure: one line per optimizer, the fraction of tasks it
reaches within τ times the best optimizer's steps (Dolan & Moré 2002), τ from 1 to 4, its score (the
area, `bench.profiles.profile_score`) in the legend."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .style import assign_looks, style


def _family(label: str) -> str:
    return str(label).removeprefix("torch:").split(":")[0].lower()


def profile_figure(profiles: pd.DataFrame, ranking: pd.DataFrame):
    """`profiles` (optimizer, tau, fraction) and `ranking` (optimizer, score, score_low, score_high)
    -> a Figure with one step line per optimizer in the ranking's order, best first."""
    order = list(ranking["optimizer"]) + [
        o for o in dict.fromkeys(profiles["optimizer"]) if o not in set(ranking["optimizer"])
    ]
    looks = assign_looks([(o, _family(o)) for o in order])
    scores = ranking.set_index("optimizer")
    with style():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for optimizer in order:
            rows = profiles[profiles["optimizer"] == optimizer].sort_values("tau")
            label = optimizer
            if optimizer in scores.index:
                row = scores.loc[optimizer]
                label = f"{optimizer} (score {row['score']:.2f}, 95% {row['score_low']:.2f}-{row['score_high']:.2f})"
            ax.plot(
                rows["tau"],
                rows["fraction"],
                drawstyle="steps-post",
                label=label,
                **looks[optimizer].line(len(rows)),
            )
        ax.set_xlim(1.0, float(profiles["tau"].max()))
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("τ (steps to target / the best optimizer's)")
        ax.set_ylabel("fraction of tasks within τ of the best")
        ax.set_title("Performance profiles (score: area up to τ = 4)")
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
    return fig
