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
from .coinciding import note_coinciding
from .style import (
    LINESTYLES,
    MARKERS,
    OKABE_ITO,
    diverged_handle,
    mark_diverged,
    plain_log_ticks,
    series_label,
    style,
)

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
    """{file stem: Figure} for a sweep's cell table, summary and critical-batch table; {} if empty.

    Where a `tuned` rule tried several lrs per batch size (`lr_chosen` in the summary), every figure
    shows the chosen lr's cells only, as the table does: its loss curves and its lr, not all tried."""
    if table.empty:
        return {}
    if "lr_chosen" in summary:
        summary = summary[summary["lr_chosen"].astype(bool)]
        table = table[table["cell"].isin(summary["cell"])]
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
        groups.append((_setting_label(columns, keys), rows["cell"].tolist()))
    return groups


def _setting_label(columns: list, keys) -> str:
    """'MyOpt, momentum=0.9': the optimizer as every figure names it (`style.series_label`, without the
    lr the sweep varies) and the setting's other grid values."""
    keys = keys if isinstance(keys, tuple) else (keys,)
    return series_label(keys[0]) + "".join(
        f", {name}={value}" for name, value in zip(columns[1:], keys[1:], strict=False)
    )


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
            f"{label}: loss curves per batch size ({_run_text(cells.drop_duplicates('cell'), 'median')})",
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
    """Steps to the target against B per (setting, rule); one perfect-scaling reference (steps ∝ 1/B)
    through the fastest setting at the smallest batch size; each setting's fitted S_min(1 + B_crit/B);
    a batch size whose median missed the target is an x on the top edge in its series' colour."""
    medians = _median_by(summary, "steps_to_target")
    settings = optimizer_setting_columns(summary)
    several = medians[settings].drop_duplicates().shape[0] > 1
    target = _target_text(summary)
    with style():
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        ax = fig.subplots()
        missed = False
        for s_index, (keys, group) in enumerate(medians.groupby(settings, sort=False, dropna=False)):
            keys = keys if isinstance(keys, tuple) else (keys,)
            prefix = _setting_label(settings, keys) + ": " if several else ""
            dash = LINESTYLES[s_index % len(LINESTYLES)]
            for rule, part in group.groupby("lr_scale", sort=False):
                part = part.sort_values("batch_size")
                reached = part["steps_to_target"].notna()
                label = prefix + RULE_LABELS.get(rule, rule)
                if not reached.any():
                    label += ": target not reached at any B (x on top edge)"
                ax.plot(
                    part["batch_size"],
                    part["steps_to_target"],
                    marker=MARKERS[s_index % len(MARKERS)],
                    linestyle=dash,
                    color=RULE_COLOURS.get(rule),
                    label=label,
                )
                if not reached.all():
                    missed = True
                    mark_diverged(ax, part.loc[~reached, "batch_size"], RULE_COLOURS.get(rule))
            _draw_fit(ax, _critical_row(critical, keys, settings), group, prefix)
        _draw_perfect_scaling(ax, medians)
        _batch_axis(ax, medians["batch_size"])
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
        lowest = medians["steps_to_target"].min()
        if np.isfinite(lowest) and lowest > 0:  # the perfect-scaling line may leave through the bottom
            ax.set_ylim(bottom=max(ax.get_ylim()[0], lowest / 4))
        if missed:
            ax.annotate(
                "x on top edge: target not reached (diverged, or budget ran out)",
                xy=(0.01, 0.01),
                xycoords="axes fraction",
                ha="left",
                va="bottom",
                fontsize=8,
                color="dimgrey",
            )
        ax.set_xlabel("batch size B")
        ax.set_ylabel(f"optimizer steps to reach {target}")
        ax.set_title(f"Steps to {target} vs batch size ({_run_text(summary, 'median')})")
        note_coinciding(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def _draw_perfect_scaling(ax, medians: pd.DataFrame) -> None:
    """One reference line, steps ∝ 1/B, through the fewest steps any series took at the smallest batch
    size where one reached the target (one line, however many settings the figure holds)."""
    reached = medians.dropna(subset=["steps_to_target"])
    if reached.empty:
        return
    b_first = reached["batch_size"].min()
    s_first = reached.loc[reached["batch_size"] == b_first, "steps_to_target"].min()
    xs = np.array(sorted(medians["batch_size"].unique()), dtype=float)
    xs = xs[xs >= b_first]
    ax.plot(
        xs,
        s_first * b_first / xs,
        color="grey",
        linestyle=":",
        linewidth=1.2,
        label=f"perfect scaling (steps ∝ 1/B) from {s_first:.0f} steps at B={b_first:g}",
    )


def _draw_fit(ax, fit, group: pd.DataFrame, prefix: str) -> None:
    """The fitted S_min(1 + B_crit/B) of one setting with its 95% interval in the label; nothing where
    the analysis found the model does not describe the points."""
    if fit is None or ("fit_ok" in fit and not bool(fit["fit_ok"])):
        return
    if not np.isfinite(fit["critical_batch_size"]):
        return
    xs = np.logspace(np.log10(group["batch_size"].min()), np.log10(group["batch_size"].max()), 100)
    interval = ""
    if np.isfinite(fit.get("critical_low", np.nan)):
        interval = (
            f" (95%: {fit['critical_low']:.3g}-{fit['critical_high']:.3g})"
            if np.isfinite(fit["critical_high"])
            else f" (95%: from {fit['critical_low']:.3g}, not identifiable above)"
        )
    ax.plot(
        xs,
        fit["s_min"] * (1 + fit["critical_batch_size"] / xs),
        color="black",
        linestyle="--",
        linewidth=1.0,
        label=prefix + f"fit S_min(1 + B_crit/B): B_crit ≈ {fit['critical_batch_size']:.0f}" + interval,
    )
    if not fit["at_edge"]:
        ax.axvline(fit["critical_batch_size"], color="black", linewidth=0.8, alpha=0.5)


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
            f"({_run_text(summary, 'median')}{budget})"
        )
        note_coinciding(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def _mark_diverged(ax, rows: pd.DataFrame) -> None:
    """Diverged cells as x on the top edge, in their rule's colour (the mark of every optbench figure)."""
    for rule, part in rows.groupby("lr_scale"):
        mark_diverged(ax, part["batch_size"], RULE_COLOURS.get(rule))
    ax.add_artist(ax.legend(handles=[diverged_handle()], loc="lower left", fontsize=8))


def _run_text(summary: pd.DataFrame, aggregate: str | None = None) -> str:
    """'digits, 3 seeds, median over seeds': what a sweep ran, for its titles; `aggregate` names the
    statistic taken over seeds, said only where there were several ('digits, 1 seed')."""
    seeds = summary["seed"].nunique() if "seed" in summary else 1
    task = f"{summary['task'].iloc[0]}, " if "task" in summary else ""
    over = f", {aggregate} over seeds" if aggregate and seeds > 1 else ""
    return f"{task}{seeds} seed{'s' * (seeds > 1)}{over}"


def _budget_text(summary: pd.DataFrame) -> str:
    steps = summary["steps"].unique()
    return f", {int(steps[0])} steps each" if len(steps) == 1 else ""


def lr_used(summary: pd.DataFrame):
    """The lr each (setting, rule, batch size) ran with: a `tuned` rule's chosen lr (the median over
    seeds where seeds chose differently), never the other lrs it tried."""
    settings = optimizer_setting_columns(summary)
    if "lr_chosen" in summary:
        summary = summary[summary["lr_chosen"].astype(bool)]
    cells = (
        summary.groupby(settings + ["lr_scale", "batch_size"], sort=False, dropna=False)
        .agg(lr=("lr", "median"), diverged=("diverged", "any"))
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
        plain_log_ticks(ax.yaxis)
        ax.set_xlabel("batch size B")
        ax.set_ylabel("learning rate used")
        b0 = int(summary["base_batch_size"].iloc[0])
        ax.set_title(f"Learning rate per cell (scaled from B0 = {b0}; {_run_text(summary, 'median')})")
        note_coinciding(ax)
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
        prefix = _setting_label(settings, keys) + ": " if several else ""
        for rule, part in group.groupby("lr_scale", sort=False):
            part = part.sort_values("batch_size")
            label = prefix + RULE_LABELS.get(rule, rule)
            if part[column].isna().all():  # its line draws nothing: its x marks still need an owner
                label += ": diverged at every B (x on top edge)"
            ax.plot(
                part["batch_size"],
                part[column],
                marker=MARKERS[s_index % len(MARKERS)],
                color=RULE_COLOURS.get(rule),
                linestyle=LINESTYLES[s_index % len(LINESTYLES)],
                label=label,
            )
