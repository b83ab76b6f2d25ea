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

from .style import optimizer_styles, style

CRITERION_LABEL = {"final-loss": "median final f - f_min", "steps-to-tol": "median steps to tolerance"}


def plot_sensitivity(profile: pd.DataFrame, summary: pd.DataFrame, criterion: str, steps: int,
                     surface_name: str, other_axes=(), ax=None):
    """Criterion against lr per optimizer; stars mark the tuned values, x marks lrs where every run diverged.

    profile: one row per (optimizer, lr) with family and score (`runners.tuning.sensitivity`);
    summary: the tuning winners, one row per optimizer (lr, score, starts).
    """
    with style():
        fig, ax = (plt.subplots(figsize=(7.2, 4.2)) if ax is None else (ax.figure, ax))
        styles = optimizer_styles(profile)
        finite = profile["score"][np.isfinite(profile["score"])]
        if criterion == "steps-to-tol":
            top = float(steps) * 1.08
        else:
            top = float(finite.max()) * 30 if len(finite) else 1.0
        for name, curve in profile.groupby("optimizer", sort=False):
            colour, linestyle = styles[name]
            curve = curve.sort_values("lr")
            score = curve["score"].to_numpy(dtype=float)
            shown = np.where(np.isfinite(score), score, np.nan)
            best = summary[summary["optimizer"] == name].iloc[0]
            ax.plot(curve["lr"], shown, color=colour, linestyle=linestyle, marker=".",
                    label=f"{name}: best lr={best['lr']:.3g}")
            failed = curve[~np.isfinite(score)]
            ax.scatter(failed["lr"], np.full(len(failed), top), marker="x", color=colour, s=22, clip_on=False)
            if np.isfinite(best["score"]):
                ax.scatter([best["lr"]], [best["score"]], marker="*", s=170, color=colour, edgecolor="black",
                           linewidth=0.7, zorder=5)
        ax.set_xscale("log")
        if criterion == "final-loss":
            ax.set_yscale("log")
        ax.set_ylim(top=top)
        ax.set_xlabel("learning rate")
        ax.set_ylabel(CRITERION_LABEL[criterion])
        over = f", best over {', '.join(other_axes)}" if other_axes else ""
        starts = int(summary["starts"].iloc[0])
        ax.set_title(f"{surface_name}: sensitivity to lr ({starts} starts, {steps} steps{over})")
        handles, labels = ax.get_legend_handles_labels()
        handles += [plt.Line2D([], [], marker="*", color="0.4", markeredgecolor="black", linestyle="none",
                               markersize=11, label="tuned value"),
                    plt.Line2D([], [], marker="x", color="0.4", linestyle="none",
                               label="diverged" + (" / never reached" if criterion == "steps-to-tol" else ""))]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return fig


def plot_suboptimality(curves: pd.DataFrame):
    """f - f* per step (median over seeds), one panel per batch size; dashed: exact SGD noise floor."""
    batch_sizes = sorted(curves["batch_size"].unique())
    with style():
        fig, axes = plt.subplots(1, len(batch_sizes), figsize=(3.4 * len(batch_sizes) + 1.6, 3.6),
                                 sharey=True, squeeze=False, layout="constrained")
        styles = optimizer_styles(curves)
        for ax, batch in zip(axes[0], batch_sizes):
            for name, run in curves[curves["batch_size"] == batch].groupby("optimizer", sort=False):
                colour, linestyle = styles[name]
                median = run.groupby("step")["suboptimality"].median()
                ax.plot(median.index.to_numpy() + 1, median.clip(lower=1e-18).to_numpy(), color=colour,
                        linestyle=linestyle, label=name if "lr=" in name else f"{name} (lr={run['lr'].iloc[0]:.3g})")
                floor = float(run["theory_floor"].iloc[0])
                if np.isfinite(floor):
                    ax.axhline(floor, color=colour, linestyle=(0, (4, 3)), linewidth=1.0, alpha=0.9)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"batch size {batch}")
            ax.set_xlabel("step")
        axes[0][0].set_ylabel("f - f*  (mean squared error)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        handles.append(plt.Line2D([], [], color="0.3", linestyle=(0, (4, 3)), linewidth=1.0,
                                  label="exact SGD noise floor"))
        fig.legend(handles=handles, loc="outside right center")
        fig.suptitle("stochastic linear regression: suboptimality f - f* (median over seeds)")
        return fig


def plot_noise_floor(floors: pd.DataFrame):
    """Measured settled f - f* against lr, one colour per batch size, one panel per optimizer."""
    names = list(dict.fromkeys(floors["optimizer"]))
    batch_sizes = sorted(floors["batch_size"].unique())
    colours = plt.get_cmap("viridis")(np.linspace(0.05, 0.8, len(batch_sizes)))
    with style():
        fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names) + 1.6, 3.6), sharey=True,
                                 squeeze=False, layout="constrained")
        for ax, name in zip(axes[0], names):
            table = floors[floors["optimizer"] == name]
            for colour, batch in zip(colours, batch_sizes):
                rows = table[table["batch_size"] == batch].sort_values("lr")
                measured = rows["measured"].where(~rows["diverged"])
                ax.plot(rows["lr"], measured, "o", color=colour, markersize=4, label=f"B = {batch}")
                theory = rows["theory"].where(np.isfinite(rows["theory"]))
                if theory.notna().any():
                    ax.plot(rows["lr"], theory, "-", color=colour, linewidth=1.2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("learning rate")
            ax.set_title(name)
        axes[0][0].set_ylabel("settled f - f*  (from θ*, mean of 2nd half)")
        handles, _ = axes[0][0].get_legend_handles_labels()
        handles.append(plt.Line2D([], [], color="0.3", label="exact (plain SGD)"))
        fig.legend(handles=handles, loc="outside right center", title="batch size")
        fig.suptitle("noise floor: f - f* where a constant-lr run settles, ∝ lr / batch size for SGD")
        return fig
