"""Training curves: loss and accuracy per optimizer, and f - f* for stochastic linear regression.

Every function takes result tables (as written by `optbench train`) and returns a figure; one
colour per optimizer family, a line style per spec within a family (`style.assign_styles`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..results import read_metadata, read_table
from .style import assign_styles, save, style


def _styles(table: pd.DataFrame) -> dict:
    pairs = table[["optimizer", "family"]].drop_duplicates().itertuples(index=False, name=None)
    return assign_styles(list(pairs))


def _label(name: str, runs: pd.DataFrame) -> str:
    return f"{name} (diverged)" if runs["diverged"].any() else name


def plot_training(epochs: pd.DataFrame, steps: pd.DataFrame | None = None, title: str | None = None):
    """Two panels: loss (per step, faint, and validation per epoch) and accuracy (train and validation)."""
    with style():
        fig, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
        styles = _styles(epochs)
        for name, runs in epochs.groupby("optimizer", sort=False):
            colour, linestyle = styles[name]
            if steps is not None and len(steps):
                own = steps[steps["optimizer"] == name]
                per_epoch = own.groupby("epoch")["step"].count().max()
                loss_ax.plot((own["step"] + 1) / per_epoch, own["loss"], color=colour, alpha=0.25, lw=0.8)
            loss_ax.plot(
                runs["epoch"],
                runs["val_loss"],
                color=colour,
                linestyle=linestyle,
                marker="o",
                ms=3,
                label=_label(name, runs),
            )
            accuracy_ax.plot(
                runs["epoch"],
                100 * runs["train_accuracy"],
                color=colour,
                alpha=0.35,
                linestyle=linestyle,
                lw=1,
            )
            accuracy_ax.plot(
                runs["epoch"],
                100 * runs["val_accuracy"],
                color=colour,
                linestyle=linestyle,
                marker="o",
                ms=3,
                label=_label(name, runs),
            )
        loss_ax.set(
            xlabel="epoch",
            ylabel="cross-entropy loss",
            title="loss: validation (markers), training steps (faint)",
        )
        top = _loss_ceiling(epochs, steps)
        if _spans_decades(epochs["val_loss"]) or (steps is not None and _spans_decades(steps["loss"])):
            loss_ax.set_yscale("log")
        loss_ax.set_ylim(top=top)
        for name, runs in epochs[epochs["diverged"]].groupby("optimizer", sort=False):
            # a diverged curve leaves the plot; mark where it went off the top
            loss_ax.plot(runs["epoch"].iloc[-1], top, "x", color=styles[name][0], ms=9, mew=2, clip_on=False)
        accuracy_ax.set(
            xlabel="epoch", ylabel="accuracy (%)", title="accuracy: validation (markers), training (faint)"
        )
        lowest = np.nanmin(100 * epochs[["val_accuracy", "train_accuracy"]].to_numpy())
        accuracy_ax.set_ylim(max(0.0, np.floor(lowest / 10) * 10 if np.isfinite(lowest) else 0.0), 100.5)
        handles, labels = accuracy_ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", title="optimizer")
        if title:
            fig.suptitle(title)
        return fig


def plot_regression(steps: pd.DataFrame, f_star: float | None = None):
    """f(w, b) - f* over all samples after each mini-batch step, log scale."""
    with style():
        fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
        styles = _styles(steps)
        for name, run in steps.groupby("optimizer", sort=False):
            colour, linestyle = styles[name]
            gap = run["suboptimality"].clip(lower=1e-16)
            ax.plot(run["step"] + 1, gap, color=colour, linestyle=linestyle, label=_label(name, run))
        ax.set_yscale("log")
        ax.set(
            xlabel="mini-batch step",
            ylabel="f(w, b) − f*  (mean squared error)",
            title="linear regression: gap to the least-squares optimum"
            + (f" f* = {f_star:.3g}" if f_star is not None else ""),
        )
        ax.legend(loc="upper right", title="optimizer")
        return fig


def plot_scalar_trace(trace: pd.DataFrame):
    """The worked example: a per iteration, approaching the solution a = 2."""
    with style():
        fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
        styles = _styles(trace)
        for name, run in trace.groupby("optimizer", sort=False):
            colour, linestyle = styles[name]
            a = np.r_[run["a"].to_numpy(), run["a_next"].to_numpy()[-1:]]
            ax.plot(np.arange(len(a)), a, color=colour, linestyle=linestyle, marker="o", label=name)
            for i, value in enumerate(a):
                ax.annotate(
                    f"{value:.4g}",
                    (i, value),
                    textcoords="offset points",
                    xytext=(-6, 7),
                    fontsize=8,
                    ha="right",
                )
        ax.axhline(2.0, color="0.5", lw=0.8, ls=":")
        ax.set_xticks(np.arange(len(trace) // trace["optimizer"].nunique() + 1))
        ax.set(xlabel="iteration", ylabel="a", title="y = a·x, one sample (x=2, y=4): solution a = 2")
        ax.legend(loc="lower right")
        return fig


TABLE_COLUMNS = {  # the tables a training results folder holds -> the columns the figures read
    "epochs": ["optimizer", "family", "epoch", "val_loss", "val_accuracy", "train_accuracy", "diverged"],
    "steps": ["optimizer", "epoch", "step", "loss"],
    "regression": ["optimizer", "family", "step", "suboptimality", "diverged"],
    "trace": ["optimizer", "family", "a", "a_next"],
}


def training_figures(tables: dict[str, pd.DataFrame], f_star: float | None = None) -> dict:
    """Figure name -> figure for whichever training tables are present: 'training' (epochs, with
    steps if given), 'regression' (f - f*, with the least-squares loss f_star), 'trace' (scalar)."""
    figures = {}
    if tables.get("epochs") is not None:
        figures["training"] = plot_training(tables["epochs"], tables.get("steps"))
    if tables.get("regression") is not None:
        figures["regression"] = plot_regression(tables["regression"], f_star)
    if tables.get("trace") is not None:
        figures["trace"] = plot_scalar_trace(tables["trace"])
    return figures


def redraw(folder, formats) -> list[Path]:
    """Every figure of an `optbench train` results folder, from its saved tables."""
    folder = Path(folder)
    tables = {
        name: read_table(folder / f"{name}.parquet", columns)
        for name, columns in TABLE_COLUMNS.items()
        if (folder / f"{name}.parquet").exists()
    }
    f_star = read_metadata(folder).get("spec", {}).get("least_squares", {}).get("loss")
    written = []
    for name, figure in training_figures(tables, f_star).items():
        written += save(figure, folder / name, formats)
    return written


def _loss_ceiling(epochs: pd.DataFrame, steps: pd.DataFrame | None) -> float:
    """The top of the loss axis: what runs that did not diverge reached, so one blow-up cannot
    squash every other curve (diverged curves run off the top and get an x there)."""
    healthy = epochs[~epochs["optimizer"].isin(epochs.loc[epochs["diverged"], "optimizer"])]
    values = [healthy["val_loss"].to_numpy()]
    if steps is not None and len(steps):
        values.append(steps.loc[steps["optimizer"].isin(healthy["optimizer"]), "loss"].to_numpy())
    values = np.concatenate(values)
    values = values[np.isfinite(values)]
    if not len(values):  # every run diverged: show the start, around ln(classes)
        values = steps["loss"].to_numpy()[:1] if steps is not None and len(steps) else np.array([3.0])
    return float(np.nanmax(values)) * 1.3


def _spans_decades(values: pd.Series) -> bool:
    finite = values[np.isfinite(values) & (values > 0)]
    return len(finite) > 1 and finite.max() / finite.min() > 100
