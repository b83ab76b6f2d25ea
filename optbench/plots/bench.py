"""The benchmark's performance-profile figure: one line per optimizer, the fraction of tasks it
reaches within τ times the best optimizer's steps (Dolan & Moré 2002), τ from 1 to 4, its score (the
area, `bench.profiles.profile_score`) in the legend."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .coinciding import note_coinciding
from .style import OKABE_ITO, Look, assign_looks, family_of, series_label, style

MARK_SPACING = 0.1  # of the axes' diagonal between markers of one line


def profile_figure(profiles: pd.DataFrame, ranking: pd.DataFrame):
    """`profiles` (optimizer, tau, fraction) and `ranking` (optimizer, score, score_low, score_high)
    -> a Figure with one step line per optimizer in the ranking's order, best first."""
    order = list(ranking["optimizer"]) + [
        o for o in dict.fromkeys(profiles["optimizer"]) if o not in set(ranking["optimizer"])
    ]
    looks = distinct_colours(assign_looks([(o, family_of(o)) for o in order]))
    scores = ranking.set_index("optimizer")
    with style():
        # the legend holds one or two lines per optimizer: the figure grows with it, so the axes keep
        # their height beside a long legend instead of sitting above an empty band
        fig, ax = plt.subplots(figsize=(9.6, max(4.2, 0.36 * len(order) + 1.0)), layout="constrained")
        for index, optimizer in enumerate(order):
            rows = profiles[profiles["optimizer"] == optimizer].sort_values("tau")
            label = series_label(optimizer)
            if optimizer in scores.index:
                row = scores.loc[optimizer]
                label = (
                    f"{label} (score {row['score']:.2f}, 95% {row['score_low']:.2f}-{row['score_high']:.2f})"
                )
            line = looks[optimizer].line(len(rows))
            # equal profiles overlap: earlier lines drawn wider, markers staggered along the line
            line["markevery"] = (MARK_SPACING * index / max(1, len(order)), MARK_SPACING)
            ax.plot(
                rows["tau"],
                rows["fraction"],
                drawstyle="steps-post",
                label=label,
                linewidth=1.5 + 2.0 * (len(order) - 1 - index) / max(1, len(order) - 1),
                **line,
            )
        ax.set_xlim(1.0, float(profiles["tau"].max()))
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("τ (steps to target / the best optimizer's)")
        ax.set_ylabel("fraction of tasks within τ of the best")
        ax.set_title("Performance profiles (score: area up to τ = 4)")
        note_coinciding(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", borderaxespad=0)
    return fig


def distinct_colours(looks: dict[str, Look]) -> dict[str, Look]:
    """The family looks, except that a colour already taken by an earlier line goes to the first
    unused Okabe-Ito colour (one figure compares few lines, and each must be told apart by colour)."""
    taken, result = set(), {}
    for label, look in looks.items():
        if look.color in taken:
            free = [c for c in OKABE_ITO if c not in taken]
            look = look._replace(color=free[0]) if free else look
        taken.add(look.color)
        result[label] = look
    return result
