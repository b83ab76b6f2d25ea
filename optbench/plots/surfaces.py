"""Figures of surface runs: contour + trajectories, loss versus step, GIF animation (the grid heat
map is in `grid_map.py`).

Every function takes tables written by `optbench.runners.surface` (and the `Surface` they ran
on) and returns a figure (the animation: GIF bytes); none computes a result or writes a file.
"""

from __future__ import annotations

import io
import math

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D
from PIL import Image

from ..objectives import Surface
from .coinciding import coinciding, coinciding_label, note_coinciding, on_screen
from .style import (
    DIVERGED_MARK,
    THEORY_STYLE,
    clip_loss_axis,
    diverged_handle,
    diverged_label,
    divergence_cause,
    finite_positive,
    float_floor,
    floor_handle,
    mark_diverged,
    mark_floor,
    optimizer_looks,
    style,
    table_label,
)

START_STYLE = dict(marker="o", s=60, facecolor="white", edgecolor="black", linewidth=1.4, zorder=6)
MINIMUM_STYLE = dict(marker="*", s=180, color="gold", edgecolor="black", linewidth=0.8, zorder=6)


def gap_to_minimum(surface: Surface, loss):
    """f - f_min where the minimum is known (what a log axis can show), else f itself."""
    return loss - surface.minimum_value if surface.minimum_value is not None else loss


def draw_contours(ax, surface: Surface, resolution: int = 200) -> None:
    (x0, x1), (y0, y1) = surface.window[:2]
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = torch.tensor(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1))
    values = surface.value(points).numpy().reshape(grid_x.shape)
    if surface.log_contours:
        gap = np.maximum(gap_to_minimum(surface, values), 1e-12)
        low, high = np.log10(max(gap.min(), gap.max() * 1e-8)), np.log10(gap.max())
        levels = np.logspace(low, high, 25)
        ax.contourf(
            grid_x,
            grid_y,
            gap,
            levels=levels,
            norm=mcolors.LogNorm(),
            cmap="Greys_r",
            alpha=0.35,
            extend="both",
        )
        ax.contour(grid_x, grid_y, gap, levels=levels, norm=mcolors.LogNorm(), colors="0.45", linewidths=0.5)
    else:
        ax.contourf(grid_x, grid_y, values, levels=30, cmap="Greys_r", alpha=0.35)
        ax.contour(grid_x, grid_y, values, levels=30, colors="0.45", linewidths=0.5)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(False)


def mark_start_and_minima(ax, surface: Surface, starts: np.ndarray) -> list:
    style = dict(START_STYLE)
    if len(starts) > 20:  # many random starts: small rings, so the paths stay visible
        style.update(s=style["s"] * 20 / len(starts) + 8, linewidth=0.8)
    handles = [ax.scatter(starts[:, 0], starts[:, 1], label="start", **style)]
    if surface.minima:
        minima = np.array(surface.minima)
        handles.append(ax.scatter(minima[:, 0], minima[:, 1], label="minimum", **MINIMUM_STYLE))
    return handles


def _diverged_step(run: pd.DataFrame):
    """The first step a run (or any trial of an optimizer) is recorded as diverged; None if it never did."""
    if "diverged" not in run or not run["diverged"].any():
        return None
    return int(run.loc[run["diverged"].astype(bool), "step"].min())


def _diverged_point(run: pd.DataFrame, inside: np.ndarray):
    """The row of `run` (one trial, by step) to mark as where it diverged: the diverged step itself when
    inside the window, else the last point inside before it; None if the run did not diverge."""
    if "diverged" not in run or not run["diverged"].any():
        return None
    at = int(np.flatnonzero(run["diverged"].to_numpy(dtype=bool))[0])
    before = np.flatnonzero(inside[: at + 1])
    return before[-1] if len(before) else None


def _coinciding_paths(ax, trajectory: pd.DataFrame) -> dict:
    """{optimizer: the earlier optimizer} whose every trial's path it draws on top of."""
    return coinciding(
        {
            name: {trial: on_screen(ax.transData, run["x"], run["y"]) for trial, run in runs.groupby("trial")}
            for name, runs in trajectory.groupby("optimizer", sort=False)
        }
    )


def _title(surface: Surface, trajectory: pd.DataFrame, what: str, noise: float = 0.0) -> str:
    """'elliptic: f = ... (3 trials, 100 steps, gradient noise σ = 0.5)': what ran, for the figures of
    a comparison."""
    trials, steps = trajectory["trial"].nunique(), int(trajectory["step"].max())
    noise = f", gradient noise σ = {noise:g}" if noise else ""
    return f"{surface.name}: {what} ({trials} trial{'s' if trials > 1 else ''}, {steps} steps{noise})"


def plot_trajectories(trajectory: pd.DataFrame, surface: Surface, ax=None, noise: float = 0.0):
    """Contour of the surface with every trajectory; one look (colour, line style, marker) per optimizer.

    A diverged run has an x at the point where it diverged (`runners.divergence`: the first step of its
    final stretch above f(start)), or at its last point inside the window before it when that point is
    outside, and says so in the legend.
    noise: the std of the gradient noise the runs had, for the title.
    """
    with style():
        fig, ax = plt.subplots(figsize=(7.2, 4.6)) if ax is None else (ax.figure, ax)
        draw_contours(ax, surface)
        looks = optimizer_looks(trajectory)
        trials = trajectory["trial"].nunique()
        alpha, width = (0.9, 1.6) if trials <= 3 else (max(0.15, 0.9 / math.sqrt(trials)), 0.9)
        (x0, x1), (y0, y1) = surface.window[:2]
        handles = []
        same = _coinciding_paths(ax, trajectory)
        for name, runs in trajectory.groupby("optimizer", sort=False):
            look = looks[name]
            for _, run in runs.groupby("trial"):
                xs, ys = run["x"].to_numpy(dtype=float), run["y"].to_numpy(dtype=float)
                inside = np.isfinite(xs) & np.isfinite(ys) & (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
                keep = np.isfinite(xs) & np.isfinite(ys) & (np.abs(xs) < 1e12) & (np.abs(ys) < 1e12)
                ax.plot(
                    np.where(keep, xs, np.nan),
                    np.where(keep, ys, np.nan),
                    alpha=alpha,
                    linewidth=width,
                    **(
                        look.line(len(xs))
                        if trials <= 3
                        else dict(color=look.color, linestyle=look.linestyle)
                    ),
                )
                at = _diverged_point(run, inside)
                if at is not None:
                    ax.scatter([xs[at]], [ys[at]], color=look.color, **{**DIVERGED_MARK, "clip_on": True})
            label, step = table_label(runs), _diverged_step(runs)
            label = label if step is None else diverged_label(label, step, divergence_cause(runs["loss"]))
            if name in same:
                label = coinciding_label(
                    label, table_label(trajectory[trajectory["optimizer"] == same[name]])
                )
            handles.append(Line2D([], [], **look.line(), label=label))
        starts = trajectory[trajectory["step"] == 0][["x", "y"]].drop_duplicates().to_numpy()
        handles += mark_start_and_minima(ax, surface, starts)
        ax.set_title(_title(surface, trajectory, f"f = {surface.formula}", noise))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return fig


def plot_loss(
    trajectory: pd.DataFrame, surface: Surface, ax=None, rates: pd.DataFrame | None = None, noise: float = 0.0
):
    """Loss (f - f_min where known) versus step on a log axis; median and 10–90% band over trials.

    rates (from `optbench.theory.rate_table`): where an analytic rate exists, a line of slope ρ² per step
    (the theory; its series' colour in THEORY_STYLE) is drawn through the run's median at mid-run, and the legend gives the
    measured ρ (median over trials) next to the analytic one. The axis reaches just above the runs that
    did not diverge and spans at most LOSS_DECADES decades (a note says so where values lie below it); a
    diverged optimizer leaves through the top and gets an x there; one whose median reaches f_min
    exactly or below float resolution (`style.float_floor`) stops there with a triangle on the bottom
    edge, and its label gives the step.
    """
    with style():
        fig, ax = plt.subplots(figsize=(7.2, 4.0)) if ax is None else (ax.figure, ax)
        looks = optimizer_looks(trajectory)
        known = surface.minimum_value is not None
        floor = float_floor(surface.minimum_value) if known else -np.inf
        starts = []
        diverged, floors = [], []
        for name, runs in trajectory.groupby("optimizer", sort=False):
            look = looks[name]
            gap = runs.assign(gap=gap_to_minimum(surface, runs["loss"])).groupby("step")["gap"]
            median = gap.median()
            shown = (
                finite_positive(median.to_numpy()) if known else np.where(np.isfinite(median), median, np.nan)
            )
            starts.append(float(np.nan_to_num(median.iloc[0], nan=0.0, posinf=0.0)))
            label = table_label(runs)
            step = _diverged_step(runs)
            if step is not None:
                label = diverged_label(label, step, divergence_cause(runs["loss"]))
                diverged.append((step, look.color))
            at_floor = np.isfinite(median.to_numpy(dtype=float)) & (median.to_numpy(dtype=float) <= floor)
            if known and step is None and at_floor.any() and not at_floor[0]:
                # no value to draw from there: the curve stops, a triangle marks where (and the label says)
                reached = int(median.index[np.argmax(at_floor)])
                shown = np.where(at_floor, np.nan, shown)
                label += f", at f_min from step {reached} (▼)"
                floors.append((reached, look.color))
            theory = _rates_for(rates, name)
            if theory is not None and step is None:
                measured = f"{theory[0]:.4f}" if np.isfinite(theory[0]) else "none (no gap left to fit)"
                label += f"\n  rate measured {measured}, theory {theory[1]:.4f}"
            # markers by the points a log axis shows: none at all (a run started at the minimum) has no path
            ax.plot(median.index, shown, label=label, **look.line(int(np.isfinite(shown).sum())))
            if runs["trial"].nunique() > 1:
                low, high = gap.quantile(0.1).to_numpy(), gap.quantile(0.9).to_numpy()
                if known:
                    low, high = finite_positive(low), finite_positive(high)
                ax.fill_between(median.index, low, high, color=look.color, alpha=0.15, linewidth=0)
            if theory is not None and step is None and len(median) > 2:
                _draw_rate_line(ax, median, theory[1], look.color)
        # every run sitting at the minimum (started there) has no gap a log axis can show
        on_log = known and np.isfinite(finite_positive(gap_to_minimum(surface, trajectory["loss"]))).any()
        ax.set_yscale("log" if on_log else "symlog")
        if on_log:
            # the top shows every run that did not diverge; diverged ones leave through it, with an x
            healthy = trajectory[
                ~trajectory["optimizer"].isin(
                    [n for n, r in trajectory.groupby("optimizer") if _diverged_step(r) is not None]
                )
            ]
            gaps = finite_positive(gap_to_minimum(surface, healthy["loss"]))
            top = (
                2 * np.nanmax(gaps)
                if np.isfinite(gaps).any()
                else 10 * max(starts)
                if max(starts) > 0
                else None
            )
            resolved = gap_to_minimum(surface, trajectory["loss"])
            clip_loss_axis(ax, resolved.where(resolved > floor), top=top)
            for step, colour in floors:
                mark_floor(ax, [step], colour)
        for step, colour in diverged:
            mark_diverged(ax, [step], colour)
        ax.set_xlabel("step")
        ax.set_ylabel("f - f_min" if known else "f")
        several = trajectory["trial"].nunique() > 1
        ax.set_title(
            _title(
                surface, trajectory, "loss per step" + (", median and 10–90% band" if several else ""), noise
            )
        )
        note_coinciding(ax)
        handles, _ = ax.get_legend_handles_labels()
        if rates is not None and rates["analytic_rate"].notna().any():
            handles.append(
                Line2D(
                    [],
                    [],
                    color="0.3",
                    **THEORY_STYLE,
                    label="analytic rate in the series' colour (slope ρ²/step)",
                )
            )
        if diverged:
            handles.append(diverged_handle())
        if floors and on_log:
            handles.append(floor_handle())
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return fig


def _rates_for(rates: pd.DataFrame | None, name: str):
    """(median measured rate, analytic rate) for an optimizer, or None where there is no theory."""
    if rates is None:
        return None
    rows = rates[rates["optimizer"] == name]
    if rows.empty or rows["analytic_rate"].isna().all():
        return None
    return float(rows["measured_rate"].median()), float(rows["analytic_rate"].iloc[0])


def _draw_rate_line(ax, median: pd.Series, rate: float, colour) -> None:
    """gap(t) = gap(t0)·ρ^(2(t - t0)) through the median at mid-run, over the steps where it stays visible."""
    steps, gaps = median.index.to_numpy(dtype=float), median.to_numpy(dtype=float)
    usable = np.isfinite(gaps) & (gaps > 1e-250)
    if usable.sum() < 3 or not rate > 0:
        return
    steps, gaps = steps[usable], gaps[usable]
    anchor = len(steps) // 2
    with np.errstate(over="ignore", under="ignore"):
        line = gaps[anchor] * rate ** (2 * (steps - steps[anchor]))
    ax.plot(steps, finite_positive(line), color=colour, **THEORY_STYLE)


GIF_DPI = 125  # the GIF is drawn 7.2 inches wide: 900 pixels, large enough to read its legend


def animate(
    trajectory: pd.DataFrame, surface: Surface, frames: int = 50, fps: int = 12, noise: float = 0.0
) -> bytes:
    """A GIF of the trajectories moving over the contour, made with Pillow (no ffmpeg needed), titled like
    the trajectory figure (with the gradient noise σ the runs had: `noise`), GIF_DPI dots per inch.

    The contour is drawn once and only the lines and heads are redrawn per frame (blitting);
    matplotlib's PillowWriter redraws the whole figure for every frame, about 10x slower.
    """
    steps = np.sort(trajectory["step"].unique())
    shown_steps = steps[np.unique(np.linspace(0, len(steps) - 1, min(frames, len(steps))).astype(int))]
    looks = optimizer_looks(trajectory)
    runs = [
        (looks[name], run["step"].to_numpy(), run["x"].to_numpy(), run["y"].to_numpy())
        for (name, _), run in trajectory.groupby(["optimizer", "trial"], sort=False)
    ]
    with style():
        fig, ax = plt.subplots(figsize=(7.2, 4.6), dpi=GIF_DPI)
        draw_contours(ax, surface, resolution=150)
        lines = [
            ax.plot([], [], color=look.color, linestyle=look.linestyle, linewidth=1.4, animated=True)[0]
            for look, *_ in runs
        ]
        heads = [
            ax.plot([], [], look.marker, color=look.color, markersize=5, animated=True)[0]
            for look, *_ in runs
        ]
        starts = trajectory[trajectory["step"] == 0][["x", "y"]].drop_duplicates().to_numpy()
        handles = [
            Line2D([], [], **looks[name].line(), label=table_label(rows))
            for name, rows in trajectory.groupby("optimizer", sort=False)
        ]
        handles += mark_start_and_minima(ax, surface, starts)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        ax.set_title(_title(surface, trajectory, f"f = {surface.formula}", noise))
        counter = ax.text(0.02, 0.95, "", transform=ax.transAxes, animated=True)

        def frame(step):
            for line, head, (_, run_steps, xs, ys) in zip(lines, heads, runs, strict=False):
                seen = np.searchsorted(run_steps, step, side="right")
                line.set_data(xs[:seen], ys[:seen])
                head.set_data(xs[seen - 1 : seen], ys[seen - 1 : seen])
            counter.set_text(f"step {int(step)}")
            return lines + heads + [counter]

        fig.tight_layout()
        fig.canvas.draw()
        background = fig.canvas.copy_from_bbox(fig.bbox)
        images = []
        for step in shown_steps:
            fig.canvas.restore_region(background)
            for artist in frame(step):
                ax.draw_artist(artist)
            fig.canvas.blit(fig.bbox)
            rgba = np.asarray(fig.canvas.buffer_rgba())
            images.append(Image.fromarray(rgba[:, :, :3].copy()).convert("P", palette=Image.ADAPTIVE))
        plt.close(fig)
    images += [images[-1]] * fps  # hold the last frame for a second before looping
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
    )
    return buffer.getvalue()
