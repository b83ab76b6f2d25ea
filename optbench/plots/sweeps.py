"""Figures of a batch-size sweep, from its tables: loss curves per batch size (against steps and
against samples), steps-to-target against batch size with the perfect-scaling line and the fitted
critical batch size, final accuracy per scaling rule, and the lr each cell used.

`figures(table, summary, critical)` returns them by file stem; it computes nothing beyond what a
figure shows (medians over seeds) and writes nothing. Figures are built without pyplot, so drawing
never touches the user's matplotlib backend.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

from ..sweeps.columns import optimizer_setting_columns
from .style import LINESTYLES, MARKERS, OKABE_ITO, diverged_handle, mark_diverged, style

RULE_COLOURS = {
    "linear": OKABE_ITO[1],
    "sqrt": OKABE_ITO[0],
    "none": OKABE_ITO[2],
    "tuned": OKABE_ITO[3],
    "best rule": "black",
}
RULE_LABELS = {
    "linear": "linear (lr ∝ B)",
    "sqrt": "sqrt (lr ∝ √B)",
    "none": "none (lr fixed)",
    "tuned": "tuned (best of 5 lrs per B)",
}
BATCH_COLOURS = "viridis"


def figures(table: pd.DataFrame, summary: pd.DataFrame, critical: pd.DataFrame) -> dict[str, Figure]:
    """{file stem: Figure} for a sweep's cell table, summary and critical-batch table; {} if empty."""
    if table.empty:
        return {}
    drawn = {}
    groups = _groups(summary)
    for index, (label, keys) in enumerate(groups):
        suffix = "" if len(groups) == 1 else f"_{index + 1}"
        drawn[f"sweep_loss_curves{suffix}"] = loss_curves(table[table["cell"].isin(keys)], label)
    if summary["steps_to_target"].notna().any():
        drawn["sweep_steps_to_target"] = steps_to_target(summary, critical)
    drawn["sweep_final_accuracy"] = final_metric(summary)
    drawn["sweep_lr"] = lr_used(summary)
    return drawn


def _groups(summary: pd.DataFrame) -> list[tuple[str, list]]:
    """(label, cell keys) per optimizer setting (optimizer and extra hyperparameters)."""
    columns = optimizer_setting_columns(summary)
    groups = []
    for keys, rows in summary.groupby(columns, sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        label = keys[0] + "".join(
            f", {name}={value}" for name, value in zip(columns[1:], keys[1:], strict=False)
        )
        groups.append((label, rows["cell"].tolist()))
    return groups


def _batch_axis(ax, batch_sizes) -> None:
    """A log2 batch-size axis ticked at the batch sizes run, written 16, 64, 256 (not 2⁴)."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted({float(b) for b in batch_sizes})))
    ax.xaxis.set_minor_locator(NullLocator())
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    ax.xaxis.set_major_formatter(formatter)


# --- loss curves ---------------------------------------------------------------------------------


def _curve(cells: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Which loss to draw: the evaluated loss where it exists at every step (surfaces, regression),
    else (training, where it is the validation loss) the mini-batch loss smoothed by a running mean;
    the median over seeds (as steps to target is)."""
    dense = cells["eval_accuracy"].isna().all() and cells["eval_loss"].notna().mean() > 0.5
    column = "eval_loss" if dense else "loss"
    mean = cells.groupby(["lr_scale", "batch_size", "step"], sort=False)[column].median().reset_index()
    if not dense:  # a window of 1/25 of each curve's length smooths mini-batch noise alike for every B
        mean[column] = mean.groupby(["lr_scale", "batch_size"], sort=False)[column].transform(
            lambda values: values.rolling(max(1, len(values) // 25), min_periods=1).mean()
        )
    return ("loss (exact/full data)" if dense else "training loss (running mean)"), mean.rename(
        columns={column: "y"}
    )


def loss_curves(cells: pd.DataFrame, label: str):
    ylabel, curves = _curve(cells)
    rules = [r for r in RULE_COLOURS if r in set(curves["lr_scale"])]
    batch_sizes = sorted(curves["batch_size"].unique())
    norm = LogNorm(
        vmin=min(batch_sizes), vmax=max(batch_sizes) * 1.6 if len(batch_sizes) > 1 else min(batch_sizes) * 2
    )
    cmap = matplotlib.colormaps[BATCH_COLOURS]
    curves["y"] = curves["y"].where(np.isfinite(curves["y"]) & (curves["y"] > 0))
    starts = curves.groupby(["lr_scale", "batch_size"])["y"].first()
    top = 10 * starts.max() if starts.notna().any() else np.nan  # diverging curves leave through the top
    finite = curves["y"][curves["y"] <= top]
    with style():
        fig = Figure(figsize=(10, 2.9 * len(rules)), layout="constrained")
        axes = fig.subplots(len(rules), 2, squeeze=False, sharey=True)
        for row, rule in enumerate(rules):
            for col, x_name in enumerate(("step", "samples")):
                ax = axes[row, col]
                for index, b in enumerate(batch_sizes):
                    part = curves[(curves["lr_scale"] == rule) & (curves["batch_size"] == b)]
                    x = part["step"] * (b if x_name == "samples" else 1)
                    ax.plot(
                        x,
                        part["y"].clip(upper=top * 10),
                        color=cmap(norm(b)),
                        linestyle=LINESTYLES[index % len(LINESTYLES)],
                        label=f"B={b}",
                    )
                ax.set_xscale("log")
                if len(finite):  # every curve diverged: nothing to put on a log axis
                    ax.set_yscale("log")
                    ax.set_ylim(max(finite.min() * 0.7, top * 1e-8), top)
                against = "optimizer steps" if col == 0 else "samples seen"
                ax.set_title(f"{RULE_LABELS.get(rule, rule)}: loss vs {against}")
                ax.set_xlabel("optimizer steps" if col == 0 else "training samples seen")
                if col == 0:
                    ax.set_ylabel(ylabel)
        axes[0, 1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="batch size")
        fig.suptitle(
            f"{label}: loss curves per batch size ({_run_text(cells.drop_duplicates('cell'))}, "
            "median over seeds)",
            fontsize=11,
        )
    return fig


# --- steps to target -----------------------------------------------------------------------------


def _median_by(summary: pd.DataFrame, column: str) -> pd.DataFrame:
    """Median over seeds per (setting, rule, batch); NaN where any seed missed (for steps)."""
    keys = optimizer_setting_columns(summary) + ["lr_scale", "batch_size"]
    if "lr_chosen" in summary:  # a `tuned` rule's grid: only each batch size's chosen lr
        summary = summary[summary["lr_chosen"]]

    def median(values):
        return math.nan if values.isna().any() else float(values.median())

    agg = summary.groupby(keys, sort=False, dropna=False)
    return agg[column].agg(median if column == "steps_to_target" else "median").reset_index()


def steps_to_target(summary: pd.DataFrame, critical: pd.DataFrame):
    medians = _median_by(summary, "steps_to_target")
    settings = optimizer_setting_columns(summary)
    target = _target_text(summary)
    with style():
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        ax = fig.subplots()
        for s_index, (keys, group) in enumerate(medians.groupby(settings, sort=False, dropna=False)):
            keys = keys if isinstance(keys, tuple) else (keys,)
            prefix = (
                ", ".join(map(str, keys)) + ": " if medians[settings].drop_duplicates().shape[0] > 1 else ""
            )
            dash = LINESTYLES[s_index % len(LINESTYLES)]
            for rule, part in group.groupby("lr_scale", sort=False):
                part = part.sort_values("batch_size")
                ax.plot(
                    part["batch_size"],
                    part["steps_to_target"],
                    marker=MARKERS[s_index % len(MARKERS)],
                    linestyle=dash,
                    color=RULE_COLOURS.get(rule),
                    label=prefix + RULE_LABELS.get(rule, rule),
                )
            best = group.groupby("batch_size")["steps_to_target"].min().dropna()
            if len(best):
                b_first, s_first = best.index[0], best.iloc[0]
                xs = np.array(sorted(group["batch_size"].unique()), dtype=float)
                ax.plot(
                    xs,
                    s_first * b_first / xs,
                    color="grey",
                    linestyle=":",
                    linewidth=1.2,
                    label=prefix + "perfect scaling (steps ∝ 1/B)",
                )
            fit = _critical_row(critical, keys, settings)
            if fit is not None and "fit_ok" in fit and not bool(fit["fit_ok"]):
                fit = None  # the analysis found the model does not describe these points: no line
            if fit is not None and np.isfinite(fit["critical_batch_size"]):
                xs = np.logspace(
                    np.log10(group["batch_size"].min()), np.log10(group["batch_size"].max()), 100
                )
                ax.plot(
                    xs,
                    fit["s_min"] * (1 + fit["critical_batch_size"] / xs),
                    color="black",
                    linestyle="--",
                    linewidth=1.0,
                    label=prefix
                    + f"fit S_min(1 + B_crit/B): B_crit ≈ {fit['critical_batch_size']:.0f}"
                    + (
                        (
                            f" (95%: {fit['critical_low']:.3g}-{fit['critical_high']:.3g})"
                            if np.isfinite(fit["critical_high"])
                            else f" (95%: from {fit['critical_low']:.3g}, not identifiable above)"
                        )
                        if np.isfinite(fit.get("critical_low", np.nan))
                        else ""
                    ),
                )
                if not fit["at_edge"]:
                    ax.axvline(fit["critical_batch_size"], color="black", linewidth=0.8, alpha=0.5)
        _batch_axis(ax, medians["batch_size"])
        ax.set_yscale("log")
        lowest = medians["steps_to_target"].min()
        if np.isfinite(lowest) and lowest > 0:  # the perfect-scaling line may leave through the bottom
            ax.set_ylim(bottom=max(ax.get_ylim()[0], lowest / 4))
        _mark_missed(ax, medians)
        ax.set_xlabel("batch size B")
        ax.set_ylabel(f"optimizer steps to reach {target}")
        ax.set_title(f"Steps to {target} vs batch size ({_run_text(summary)}, median)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def _mark_missed(ax, medians):
    """Settings that never reached the target: an x on the top edge in the rule's colour."""
    missed = medians[medians["steps_to_target"].isna()]
    if missed.empty:
        return
    for rule, part in missed.groupby("lr_scale"):
        mark_diverged(ax, part["batch_size"], RULE_COLOURS.get(rule))
    ax.annotate(
        "x on top edge: target not reached (diverged, or budget ran out)",
        xy=(0.01, 0.01),
        xycoords="axes fraction",
        ha="left",
        va="bottom",
        fontsize=8,
        color="dimgrey",
    )


def _critical_row(critical: pd.DataFrame, keys, settings):
    if critical is None or critical.empty:
        return None
    rows = critical[critical["lr_scale"] == "best rule"]
    for name, value in zip(settings, keys, strict=False):
        if name in rows:
            rows = rows[rows[name].astype(str) == str(value)]
    return rows.iloc[0] if len(rows) else None


def _target_text(summary: pd.DataFrame) -> str:
    parts = []
    accuracy, loss = summary["target_accuracy"].iloc[0], summary["target_loss"].iloc[0]
    if pd.notna(accuracy):
        parts.append(f"accuracy {accuracy:g}")
    if pd.notna(loss):
        parts.append(f"loss {loss:g}")
    return " and ".join(parts) or "target"


# --- final metric and lr per cell ------------------------------------------------------------------


def final_metric(summary: pd.DataFrame):
    has_accuracy = summary["final_accuracy"].notna().any()
    column = "final_accuracy" if has_accuracy else "final_loss"
    if has_accuracy:  # accuracy in % in every optbench figure
        summary = summary.assign(final_accuracy=100 * summary["final_accuracy"])
    # A diverged cell's final loss (NaN, inf or 1e289) has no place on the axis: x on the top edge.
    summary = summary.assign(**{column: summary[column].where(~summary["diverged"].astype(bool))})
    medians = _median_by(summary, column)
    diverged = _median_by(summary.assign(diverged=summary["diverged"].astype(float)), "diverged")
    diverged = medians[(diverged["diverged"] >= 0.5).to_numpy()]
    settings = optimizer_setting_columns(summary)
    with style():
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")
        ax = fig.subplots()
        _rule_lines(ax, medians, settings, column)
        _batch_axis(ax, summary["batch_size"])
        if not has_accuracy and (medians[column] > 0).any():  # every cell diverged: no loss to scale
            ax.set_yscale("log")
        if len(diverged):
            _mark_diverged(ax, diverged)
        ax.set_xlabel("batch size B")
        ax.set_ylabel("final validation accuracy (%)" if has_accuracy else "final loss")
        budget = _budget_text(summary)
        ax.set_title(
            f"Final {'accuracy' if has_accuracy else 'loss'} vs batch size per lr-scaling rule\n"
            f"({_run_text(summary)}, median{budget})"
        )
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def _mark_diverged(ax, rows: pd.DataFrame) -> None:
    """Diverged cells as x on the top edge, in their rule's colour (the mark of every optbench figure)."""
    for rule, part in rows.groupby("lr_scale"):
        mark_diverged(ax, part["batch_size"], RULE_COLOURS.get(rule))
    ax.add_artist(ax.legend(handles=[diverged_handle()], loc="lower left", fontsize=8))


def _run_text(summary: pd.DataFrame) -> str:
    """'digits, 3 seeds': what a sweep ran, for its titles."""
    seeds = summary["seed"].nunique() if "seed" in summary else 1
    task = f"{summary['task'].iloc[0]}, " if "task" in summary else ""
    return f"{task}{seeds} seed{'s' * (seeds > 1)}"


def _budget_text(summary: pd.DataFrame) -> str:
    steps = summary["steps"].unique()
    return f", {int(steps[0])} steps each" if len(steps) == 1 else ""


def lr_used(summary: pd.DataFrame):
    settings = optimizer_setting_columns(summary)
    cells = (
        summary.groupby(settings + ["lr_scale", "batch_size"], sort=False, dropna=False)
        .agg(lr=("lr", "first"), diverged=("diverged", "any"))
        .reset_index()
    )
    with style():
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")
        ax = fig.subplots()
        _rule_lines(ax, cells, settings, "lr")
        bad = cells[cells["diverged"]]
        for rule, part in bad.groupby("lr_scale"):
            mark_diverged(ax, part["batch_size"], RULE_COLOURS.get(rule))
        _batch_axis(ax, cells["batch_size"])
        ax.set_yscale("log")
        ax.set_xlabel("batch size B")
        ax.set_ylabel("learning rate used")
        b0 = int(summary["base_batch_size"].iloc[0])
        ax.set_title(f"Learning rate per cell (scaled from B0 = {b0}; {_run_text(summary)})")
        handles, _ = ax.get_legend_handles_labels()
        ax.legend(
            handles=handles + ([diverged_handle()] if len(bad) else []),
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
        )
    return fig


def _rule_lines(ax, table: pd.DataFrame, settings: list, column: str) -> None:
    several = table[settings].drop_duplicates().shape[0] > 1
    for s_index, (keys, group) in enumerate(table.groupby(settings, sort=False, dropna=False)):
        keys = keys if isinstance(keys, tuple) else (keys,)
        prefix = f"{', '.join(map(str, keys))}: " if several else ""
        for rule, part in group.groupby("lr_scale", sort=False):
            part = part.sort_values("batch_size")
            ax.plot(
                part["batch_size"],
                part[column],
                marker=MARKERS[s_index % len(MARKERS)],
                color=RULE_COLOURS.get(rule),
                linestyle=LINESTYLES[s_index % len(LINESTYLES)],
                label=prefix + RULE_LABELS.get(rule, rule),
            )
