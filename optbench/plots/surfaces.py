"""Figures of surface runs: contour + trajectories, loss versus step, grid heat map, GIF animation.

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
from matplotlib.patches import Patch
from PIL import Image

from ..objectives import Surface
from .style import optimizer_styles, style

START_STYLE = dict(marker="o", s=60, facecolor="white", edgecolor="black", linewidth=1.4, zorder=6)
MINIMUM_STYLE = dict(marker="*", s=180, color="gold", edgecolor="black", linewidth=0.8, zorder=6)


def _gap(surface: Surface, loss):
    """f - f_min where the minimum is known (what a log axis can show), else f itself."""
    return loss - surface.minimum_value if surface.minimum_value is not None else loss


def draw_contours(ax, surface: Surface, resolution: int = 200) -> None:
    (x0, x1), (y0, y1) = surface.window[:2]
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = torch.tensor(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1))
    values = surface.value(points).numpy().reshape(grid_x.shape)
    if surface.log_contours:
        gap = np.maximum(_gap(surface, values), 1e-12)
        low, high = np.log10(max(gap.min(), gap.max() * 1e-8)), np.log10(gap.max())
        levels = np.logspace(low, high, 25)
        ax.contourf(grid_x, grid_y, gap, levels=levels, norm=mcolors.LogNorm(), cmap="Greys_r", alpha=0.35,
                    extend="both")
        ax.contour(grid_x, grid_y, gap, levels=levels, norm=mcolors.LogNorm(), colors="0.45",
                   linewidths=0.5)
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
    if len(starts) > 20:   # many random starts: small rings, so the paths stay visible
        style.update(s=style["s"] * 20 / len(starts) + 8, linewidth=0.8)
    handles = [ax.scatter(starts[:, 0], starts[:, 1], label="start", **style)]
    if surface.minima:
        minima = np.array(surface.minima)
        handles.append(ax.scatter(minima[:, 0], minima[:, 1], label="minimum", **MINIMUM_STYLE))
    return handles


def plot_trajectories(trajectory: pd.DataFrame, surface: Surface, ax=None):
    """Contour of the surface with every trajectory; one colour per optimizer."""
    with style():
        fig, ax = (plt.subplots(figsize=(7.2, 4.6)) if ax is None else (ax.figure, ax))
        draw_contours(ax, surface)
        styles = optimizer_styles(trajectory)
        trials = trajectory["trial"].nunique()
        alpha, width = (0.9, 1.6) if trials <= 3 else (max(0.15, 0.9 / math.sqrt(trials)), 0.9)
        handles = []
        for name, runs in trajectory.groupby("optimizer", sort=False):
            colour, linestyle = styles[name]
            for _, run in runs.groupby("trial"):
                line, = ax.plot(run["x"], run["y"], color=colour, linestyle=linestyle, alpha=alpha,
                                linewidth=width, marker="." if trials <= 3 else None, markersize=3)
            handles.append(plt.Line2D([], [], color=colour, linestyle=linestyle, label=_label(runs)))
        starts = trajectory[trajectory["step"] == 0][["x", "y"]].drop_duplicates().to_numpy()
        handles += mark_start_and_minima(ax, surface, starts)
        ax.set_title(f"{surface.name}: f = {surface.formula}")
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return fig


def _label(runs: pd.DataFrame) -> str:
    settings = runs["settings"].iloc[0] if "settings" in runs else ""
    name = runs["optimizer"].iloc[0]
    return f"{name} ({settings})" if settings and "=" not in name else name


def plot_loss(trajectory: pd.DataFrame, surface: Surface, ax=None, rates: pd.DataFrame | None = None):
    """Loss (f - f_min where known) versus step on a log axis; median and 10–90% band over trials.

    rates (from `optbench.theory.rate_table`): where an analytic rate exists, a dotted line of slope
    ρ² per step (the theory) is drawn through the run's median at mid-run, and the legend gives the
    measured ρ next to the analytic one.
    """
    with style():
        fig, ax = (plt.subplots(figsize=(7.2, 4.0)) if ax is None else (ax.figure, ax))
        styles = optimizer_styles(trajectory)
        for name, runs in trajectory.groupby("optimizer", sort=False):
            colour, linestyle = styles[name]
            gap = runs.assign(gap=_gap(surface, runs["loss"])).groupby("step")["gap"]
            median = gap.median()
            label = _label(runs)
            theory = _rates_for(rates, name)
            if theory is not None:
                label += f"\n  rate measured {theory[0]:.4f}, theory {theory[1]:.4f}"
            ax.plot(median.index, median.to_numpy(), color=colour, linestyle=linestyle, label=label)
            if runs["trial"].nunique() > 1:
                ax.fill_between(median.index, gap.quantile(0.1).to_numpy(), gap.quantile(0.9).to_numpy(),
                                color=colour, alpha=0.15, linewidth=0)
            if theory is not None and len(median) > 2:
                _draw_rate_line(ax, median, theory[1], colour)
        known = surface.minimum_value is not None
        ax.set_yscale("log" if known else "symlog")
        ax.set_xlabel("step")
        ax.set_ylabel("f - f_min" if known else "f")
        ax.set_title(f"{surface.name}: loss per step" + (" (median, 10–90% band)"
                                                        if trajectory["trial"].nunique() > 1 else ""))
        handles, _ = ax.get_legend_handles_labels()
        if rates is not None and rates["analytic_rate"].notna().any():
            handles.append(plt.Line2D([], [], color="0.3", linestyle=":", label="analytic rate (slope ρ²/step)"))
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
    line = gaps[anchor] * rate ** (2 * (steps - steps[anchor]))
    ax.plot(steps, line, color=colour, linestyle=":", linewidth=1.3, alpha=0.9)


def plot_grid(metrics: pd.DataFrame, surface: Surface, x_name: str, y_name: str, ax=None, stability=None):
    """Heat map of the final loss over a 2-D hyperparameter grid; diverged cells hatched grey.

    stability: (lr values, momentum values) of a stability limit to draw as a dashed line
    (`optbench.theory.stability_limits`), or None.
    """
    with style():
        fig, ax = (plt.subplots(figsize=(6.4, 5.0)) if ax is None else (ax.figure, ax))
        xs, ys = np.sort(metrics[x_name].unique()), np.sort(metrics[y_name].unique())
        table = metrics.assign(gap=_gap(surface, metrics["final_loss"]))
        gap = table.pivot_table(index=y_name, columns=x_name, values="gap", aggfunc="median",
                                  dropna=False).to_numpy()
        diverged = table.pivot_table(index=y_name, columns=x_name, values="diverged", aggfunc="max",
                                       dropna=False).to_numpy()
        bad = diverged.astype(bool) | ~np.isfinite(gap)
        shown = np.ma.masked_array(np.log10(np.maximum(gap, 1e-300)) if surface.minimum_value is not None
                                   else gap, mask=bad)
        x_log, y_log = _is_log(xs), _is_log(ys)
        ax.pcolormesh(_edges(xs, x_log), _edges(ys, y_log), np.ma.masked_array(np.ones_like(gap), ~bad),
                      cmap=mcolors.ListedColormap(["0.82"]), linewidth=0)
        low = max(float(shown.min()), -16.0) if shown.count() else 0
        mesh = ax.pcolormesh(_edges(xs, x_log), _edges(ys, y_log), shown, cmap="viridis",
                             vmin=low, vmax=float(shown.max()) if shown.count() else 1)
        colourbar = fig.colorbar(mesh, ax=ax)
        colourbar.set_label("log10(final f - f_min)" if surface.minimum_value is not None else "final f")
        if shown.count():
            best = np.unravel_index(np.ma.argmin(shown), shown.shape)
            ax.scatter([xs[best[1]]], [ys[best[0]]], marker="*", s=160, color="white", edgecolor="black",
                       zorder=5, label=f"best: {x_name}={xs[best[1]]:.3g}, {y_name}={ys[best[0]]:.3g}")
        ax.set_xscale("log" if x_log else "linear")
        ax.set_yscale("log" if y_log else "linear")
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        ax.grid(False)
        optimizer = metrics["optimizer"].iloc[0]
        steps = int(metrics["steps"].iloc[0])
        ax.set_title(f"{optimizer} on {surface.name} after {steps} steps")
        handles = [Patch(facecolor="0.82", label="diverged (NaN/inf, or f grew 10⁶-fold)")]
        if shown.count():
            handles.append(ax.collections[-1])
        if stability is not None:
            lrs, momenta = stability
            other = y_name if x_name == "lr" else x_name
            if other == "momentum":
                xs_line, ys_line = (lrs, momenta) if x_name == "lr" else (momenta, lrs)
                ax.plot(xs_line, ys_line, color="crimson", linewidth=2.0, linestyle="--", zorder=4,
                        label="stability limit lr = 2(1+μ)/λ_max")
            else:
                line = ax.axvline if x_name == "lr" else ax.axhline
                line(lrs[0], color="crimson", linewidth=2.0, linestyle="--", zorder=4,
                     label=f"stability limit lr = 2(1+μ)/λ_max = {lrs[0]:.3g}")
            ax.set_xlim(_edges(xs, x_log)[[0, -1]])
            ax.set_ylim(_edges(ys, y_log)[[0, -1]])
            handles.append(ax.get_lines()[-1])
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2)
        return fig


def _is_log(values: np.ndarray) -> bool:
    if len(values) < 3 or values.min() <= 0:
        return False
    ratios = values[1:] / values[:-1]
    return bool(np.allclose(ratios, ratios[0], rtol=1e-6)) and not np.allclose(np.diff(values), np.diff(values)[0])


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges halfway between grid values (in log space for log-spaced axes)."""
    v = np.log10(values) if log else values.astype(float)
    if len(v) == 1:
        edges = np.array([v[0] - 0.5, v[0] + 0.5])
    else:
        middle = (v[1:] + v[:-1]) / 2
        edges = np.concatenate([[v[0] - (middle[0] - v[0])], middle, [v[-1] + (v[-1] - middle[-1])]])
    return 10 ** edges if log else edges


def animate(trajectory: pd.DataFrame, surface: Surface, frames: int = 50, fps: int = 12) -> bytes:
    """A GIF of the trajectories moving over the contour, made with Pillow (no ffmpeg needed).

    The contour is drawn once and only the lines and heads are redrawn per frame (blitting);
    matplotlib's PillowWriter redraws the whole figure for every frame, about 10x slower.
    """
    steps = np.sort(trajectory["step"].unique())
    shown_steps = steps[np.unique(np.linspace(0, len(steps) - 1, min(frames, len(steps))).astype(int))]
    styles = optimizer_styles(trajectory)
    runs = [(styles[name], run["step"].to_numpy(), run["x"].to_numpy(), run["y"].to_numpy())
            for (name, _), run in trajectory.groupby(["optimizer", "trial"], sort=False)]
    with style():
        fig, ax = plt.subplots(figsize=(7.2, 4.6), dpi=80)
        draw_contours(ax, surface, resolution=150)
        lines = [ax.plot([], [], color=c, linestyle=ls, linewidth=1.4, animated=True)[0] for (c, ls), *_ in runs]
        heads = [ax.plot([], [], "o", color=c, markersize=5, animated=True)[0] for (c, _), *_ in runs]
        starts = trajectory[trajectory["step"] == 0][["x", "y"]].drop_duplicates().to_numpy()
        handles = [plt.Line2D([], [], color=styles[n][0], linestyle=styles[n][1], label=n)
                   for n in trajectory["optimizer"].unique()] + mark_start_and_minima(ax, surface, starts)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        ax.set_title(f"{surface.name}: f = {surface.formula}")
        counter = ax.text(0.02, 0.95, "", transform=ax.transAxes, animated=True)

        def frame(step):
            for line, head, (_, run_steps, xs, ys) in zip(lines, heads, runs):
                seen = np.searchsorted(run_steps, step, side="right")
                line.set_data(xs[:seen], ys[:seen])
                head.set_data(xs[seen - 1:seen], ys[seen - 1:seen])
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
    images += [images[-1]] * fps   # hold the last frame for a second before looping
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    return buffer.getvalue()
