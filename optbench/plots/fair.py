"""Figures for fair comparisons: tuning sensitivity, and the noise floor of stochastic regression.

- `plot_sensitivity`: the tuning criterion against lr, one line per optimizer (the best over any
  other tuned axis at each lr), the winner starred, diverged lrs marked on the top edge.
- `plot_suboptimality`: f - f* per step on the regression problem, one panel per batch size, with
  the exact noise floor of plain SGD dashed.
- `plot_noise_floor`: where each optimizer settles (mean f - f* over the second half) against lr,
  one line per batch size, the exact SGD floor drawn through it.

Each takes the tables `optbench.experiments` computed and returns a figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .coinciding import note_coinciding
from .style import (
    DIVERGED_TEXT,
    THEORY_STYLE,
    clip_loss_axis,
    display_name,
    diverged_handle,
    finite_positive,
    mark_diverged,
    optimizer_looks,
    series_label,
    style,
)

CRITERION_LABEL = {"final-loss": "median final f - f_min", "steps-to-tol": "median steps to tolerance"}


def plot_sensitivity(
    profile: pd.DataFrame,
    summary: pd.DataFrame,
    criterion: str,
    steps: int,
    surface_name: str,
    other_axes=(),
    ax=None,
):
    """Criterion against lr per optimizer; stars mark the tuned values, x marks lrs where every run diverged.

    profile: one row per (optimizer, lr) with family and score (`runners.tuning.sensitivity`);
    summary: the tuning winners, one row per optimizer (lr, score, starts).
    """
    with style():
        fig, ax = plt.subplots(figsize=(7.2, 4.2)) if ax is None else (ax.figure, ax)
        looks = optimizer_looks(profile)
        finite = profile["score"][np.isfinite(profile["score"])]
        if criterion == "steps-to-tol":
            top = float(steps) * 1.15
        else:
            top = float(finite.max()) * 30 if len(finite) else 1.0
        for name, curve in profile.groupby("optimizer", sort=False):
            look = looks[name]
            curve = curve.sort_values("lr")
            score = curve["score"].to_numpy(dtype=float)
            shown = np.where(np.isfinite(score), score, np.nan)
            best = summary[summary["optimizer"] == name].iloc[0]
            ax.plot(
                curve["lr"], shown, label=f"{series_label(name, best['lr'])}: tuned", **look.line(len(curve))
            )
            mark_diverged(ax, curve["lr"][~np.isfinite(score)], look.color)
            if np.isfinite(best["score"]):
                ax.scatter(
                    [best["lr"]],
                    [best["score"]],
                    marker="*",
                    s=170,
                    color=look.color,
                    edgecolor="black",
                    linewidth=0.7,
                    zorder=5,
                )
        ax.set_xscale("log")
        low, high = float(profile["lr"].min()), float(profile["lr"].max())
        ax.set_xlim(low / 1.5, high * 1.5)  # also when no lr gave a finite score (nothing else sets it)
        if criterion == "final-loss":
            ax.set_yscale("log")
            clip_loss_axis(ax, finite, top=top)
        else:
            ax.set_ylim(0, top)
        ax.set_xlabel("learning rate")
        ax.set_ylabel(CRITERION_LABEL[criterion])
        over = f", best over {', '.join(other_axes)}" if other_axes else ""
        starts = int(summary["starts"].iloc[0])
        ax.set_title(f"{surface_name}: sensitivity to lr ({starts} starts, {steps} steps{over})")
        note_coinciding(ax)
        handles, labels = ax.get_legend_handles_labels()
        never = diverged_handle()
        if criterion == "steps-to-tol":
            never.set_label(f"x on top edge: {DIVERGED_TEXT} or tolerance never reached")
        handles += [
            plt.Line2D(
                [],
                [],
                marker="*",
                color="0.4",
                markeredgecolor="black",
                linestyle="none",
                markersize=11,
                label=f"tuned value (lowest {CRITERION_LABEL[criterion]})",
            ),
            never,
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return fig


def plot_suboptimality(curves: pd.DataFrame):
    """f - f* per step (mean over seeds, as the exact floor is an expectation), one panel per batch size;
    dashed: the exact SGD noise floor E[f - f*]. A diverged run leaves through the top with an x there."""
    batch_sizes = sorted(curves["batch_size"].unique())
    with style():
        fig, axes = plt.subplots(
            1,
            len(batch_sizes),
            figsize=(max(6.5, 3.4 * len(batch_sizes) + 1.6), 3.6),
            sharey=True,
            squeeze=False,
            layout="constrained",
        )
        looks = optimizer_looks(curves)
        seeds = int(curves["seed"].nunique()) if "seed" in curves else 1
        start = finite_positive(curves.loc[curves["step"] == curves["step"].min(), "suboptimality"])
        top = 10 * float(np.nanmax(start)) if np.isfinite(start).any() else None
        labels, any_diverged = {}, False
        for ax, batch in zip(axes[0], batch_sizes, strict=False):
            for name, run in curves[curves["batch_size"] == batch].groupby("optimizer", sort=False):
                look = looks[name]
                mean = run.groupby("step")["suboptimality"].mean()
                shown = finite_positive(mean.to_numpy())
                if top is not None:
                    shown = np.where(shown <= top, shown, np.nan)
                steps = mean.index.to_numpy() + 1
                labels.setdefault(name, series_label(name, run["lr"].iloc[0]))
                ax.plot(steps, shown, label=labels[name], **look.line(len(steps)))
                gone = ~np.isfinite(run["suboptimality"])  # the table's definition: flagged or non-finite
                if "diverged" in run:
                    gone |= run["diverged"].astype(bool)
                if gone.any():
                    any_diverged = True
                    mark_diverged(ax, [run.loc[gone, "step"].min() + 1], look.color)
                floor = float(run["theory_floor"].iloc[0])
                if np.isfinite(floor):
                    ax.axhline(floor, color=look.color, **THEORY_STYLE)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(1, curves["step"].max() + 1)
            clip_loss_axis(ax, curves["suboptimality"], top=top)
            ax.set_title(f"batch size {batch}")
            ax.set_xlabel("step")
        axes[0][0].set_ylabel("f - f*  (mean squared error)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        handles.append(
            plt.Line2D(
                [],
                [],
                color="0.3",
                **THEORY_STYLE,
                label="exact SGD noise floor E[f - f*], in its series' colour",
            )
        )
        if any_diverged:
            handles.append(diverged_handle())
        fig.legend(handles=handles, loc="outside right center")
        fig.suptitle(
            f"stochastic linear regression: suboptimality f - f* (mean over {seeds} seed{'s' * (seeds > 1)})"
        )
        return fig


def plot_noise_floor(floors: pd.DataFrame):
    """Measured settled f - f* against lr, one colour per batch size, one panel per optimizer; a diverged
    setting (flagged, non-finite, or with an infinite exact floor: unstable in mean square) is an x on the
    top edge."""
    names = list(dict.fromkeys(floors["optimizer"]))
    batch_sizes = sorted(floors["batch_size"].unique())
    colours = plt.get_cmap("viridis")(np.linspace(0.05, 0.8, len(batch_sizes)))
    with style():
        fig, axes = plt.subplots(
            1,
            len(names),
            figsize=(max(6.5, 3.6 * len(names) + 1.6), 3.6),
            sharey=True,
            squeeze=False,
            layout="constrained",
        )
        any_diverged = False
        for ax, name in zip(axes[0], names, strict=False):
            table = floors[floors["optimizer"] == name]
            for colour, batch in zip(colours, batch_sizes, strict=False):
                rows = table[table["batch_size"] == batch].sort_values("lr")
                # an infinite exact floor means the iteration diverges in mean square: unstable, whatever
                # a finite run happened to reach
                diverged = (
                    rows["diverged"].astype(bool)
                    | ~np.isfinite(rows["measured"])
                    | np.isposinf(rows["theory"])
                )
                ax.plot(
                    rows["lr"],
                    rows["measured"].where(~diverged),
                    "o",
                    color=colour,
                    markersize=4,
                    label=f"B = {batch}",
                )
                mark_diverged(ax, rows["lr"][diverged], colour)
                any_diverged = any_diverged or bool(diverged.any())
                theory = rows["theory"].where(np.isfinite(rows["theory"]))
                if theory.notna().any():
                    ax.plot(rows["lr"], theory, "-", color=colour, linewidth=1.2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("learning rate")
            ax.set_title(_without_lr(name) + ": lr on the x axis")
        axes[0][0].set_ylabel("settled f - f*  (from θ*, mean of 2nd half)")
        handles, _ = axes[0][0].get_legend_handles_labels()
        handles.append(plt.Line2D([], [], color="0.3", label="exact (plain SGD)"))
        if any_diverged:
            handles.append(diverged_handle())
        fig.legend(handles=handles, loc="outside right center", title="batch size")
        fig.suptitle("noise floor: f - f* where a constant-lr run settles, ∝ lr / batch size for SGD")
        return fig


def _without_lr(name: str) -> str:
    """'momentum (betas=...)', 'MyOpt' for a spec whose lr a noise-floor panel varies along its x axis."""
    shown, typed = display_name(name)
    kept = [pair.strip() for pair in typed.split(",") if pair.strip() and not pair.strip().startswith("lr=")]
    return f"{shown} ({', '.join(kept)})" if kept else shown
