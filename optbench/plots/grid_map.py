"""The heat map of a 2-D hyperparameter grid: one value per cell (the final loss, or the tuning
criterion the table ranked by), diverged cells hatched, the table's winner starred and the stability
edge of `optbench.theory.stability_edge` drawn where the theory applies.

Takes a grid's table and the `Surface` it ran on; returns a figure; computes no result.
"""

from __future__ import annotations

import math
import warnings

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from ..objectives import Surface
from .style import DIVERGED_RULE, DIVERGED_TEXT, LOSS_DECADES, display_name, style
from .surfaces import gap_to_minimum

DIVERGED_CELL = dict(facecolor="0.82", hatch="xx", edgecolor="0.55")
NOT_REACHED_CELL = dict(facecolor="white", hatch="..", edgecolor="0.6")
CELL_VALUE_LABEL = {
    "final_loss": "log10(final f - f_min)",
    "score": "steps to tolerance",
    "loss_score": "log10(final f - f_min)",
}


def plot_grid(
    cells: pd.DataFrame,
    surface: Surface,
    x_name: str,
    y_name: str,
    ax=None,
    stability=None,
    value: str = "final_loss",
    best=None,
    criterion: str | None = None,
):
    """Heat map of one value per cell of a 2-D hyperparameter grid (median over a cell's rows).

    value: the column coloured: "final_loss" (drawn as log10 of f - f_min), a tuning criterion
    "score" (steps to tolerance when `criterion` is "steps-to-tol") or "loss_score". Diverged cells
    are grey with an x hatch; finite-valued cells that never met the criterion are hatched dots.
    best: the (x, y) values the caller's table chose, starred with the criterion's name; the figure
    picks no winner of its own. stability: the stability edge as (x values, y values) of a curve
    in the axes' units (`optbench.theory.stability_edge`), drawn dashed, or None.
    """
    with style():
        own = ax is None
        fig, ax = plt.subplots(figsize=(6.8, 5.8), layout="constrained") if own else (ax.figure, ax)
        xs, ys = np.sort(cells[x_name].unique()), np.sort(cells[y_name].unique())
        steps_valued = value == "score" and criterion == "steps-to-tol"
        table = cells.assign(
            shown=cells[value]
            if steps_valued
            else gap_to_minimum(surface, cells[value])
            if value == "final_loss"
            else cells[value]
        )
        table["diverged"] = table["diverged"].astype(float)

        def grid_of(column, how):
            return (
                table.pivot_table(index=y_name, columns=x_name, values=column, aggfunc=how, dropna=False)
                .reindex(index=ys, columns=xs)
                .to_numpy()
            )

        raw = grid_of("shown", "median")
        diverged = np.nan_to_num(grid_of("diverged", "max")) > 0
        missing = ~np.isfinite(raw) & ~diverged
        log_scale = not steps_valued and (value != "final_loss" or surface.minimum_value is not None)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log10(np.maximum(raw, 1e-300)) if log_scale else raw
        x_log, y_log = _is_log(xs), _is_log(ys)
        x_edges, y_edges = _edges(xs, x_log), _edges(ys, y_log)
        blocks = (math.ceil(len(ys) / SCREEN_CELLS), math.ceil(len(xs) / SCREEN_CELLS))
        if blocks != (1, 1):
            values, diverged, missing = _downsampled(values, diverged, missing, blocks)
            y_edges, x_edges = _block_edges(y_edges, blocks[0]), _block_edges(x_edges, blocks[1])
        shown = np.ma.masked_array(values, mask=diverged | missing)
        for mask, look in ((diverged, DIVERGED_CELL), (missing, NOT_REACHED_CELL)):
            if mask.any():
                ax.pcolor(
                    x_edges,
                    y_edges,
                    np.ma.masked_array(np.ones_like(values), ~mask),
                    cmap=mcolors.ListedColormap([look["facecolor"]]),
                    hatch=look["hatch"],
                    edgecolor=look["edgecolor"],
                    linewidth=0,
                )
        high = float(shown.max()) if shown.count() else 1.0
        low = float(shown.min()) if shown.count() else 0.0
        floor = high - LOSS_DECADES if log_scale else low
        clipped = low < floor
        mesh = ax.pcolormesh(x_edges, y_edges, shown, cmap="viridis", vmin=max(low, floor), vmax=high)
        colourbar = fig.colorbar(mesh, ax=ax, extend="min" if clipped else "neither")
        # a "score" is steps only under steps-to-tol; under final-loss it is the final gap, drawn as log10
        key = "score" if steps_valued else "loss_score" if value == "score" else value
        label = CELL_VALUE_LABEL.get(key, value)
        if clipped:
            label += f"\n(clipped: cells below {floor:.3g} drawn at {floor:.3g})"
        colourbar.set_label(label)
        handles = [
            Patch(
                **DIVERGED_CELL,
                label=f"{DIVERGED_TEXT} ({DIVERGED_RULE})",
            )
        ]
        if missing.any():
            handles.append(
                Patch(
                    **NOT_REACHED_CELL,
                    label="tolerance not reached in the budget" if steps_valued else "no value",
                )
            )
        if best is not None:
            chosen = f"best by {criterion or value.replace('_', ' ')}"
            handles.append(
                ax.scatter(
                    [best[0]],
                    [best[1]],
                    marker="*",
                    s=170,
                    color="white",
                    edgecolor="black",
                    zorder=5,
                    label=f"{chosen}: {x_name}={best[0]:.3g}, {y_name}={best[1]:.3g}",
                )
            )
        ax.set_xscale("log" if x_log else "linear")
        ax.set_yscale("log" if y_log else "linear")
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        ax.grid(False)
        optimizer = display_name(cells["optimizer"].iloc[0])[0]
        steps = f" after {int(cells['steps'].iloc[0])} steps" if "steps" in cells else ""
        title = f"{optimizer} on {surface.name}{steps}"
        if blocks != (1, 1):
            title += (
                f"\n{len(xs):,} x {len(ys):,} cells drawn as {values.shape[1]:,} x {values.shape[0]:,}: "
                f"each the median of {blocks[1]} x {blocks[0]} cells"
            )
        ax.set_title(title)
        if stability is not None:
            line_x, line_y, text = stability
            handles += ax.plot(
                line_x,
                line_y,
                color="crimson",
                linewidth=2.0,
                linestyle="--",
                zorder=4,
                label=f"stability edge {text}",
            )
        ax.set_xlim(x_edges[[0, -1]])
        ax.set_ylim(y_edges[[0, -1]])
        for axis, edges, log in ((ax.xaxis, x_edges, x_log), (ax.yaxis, y_edges, y_log)):
            if log and np.log10(edges[-1]) - np.log10(edges[0]) > LOG_TICKER_DECADES:
                _decade_ticks(axis, edges)
        if own:  # one column under the map and its colour bar, so the canvas holds no empty third
            fig.legend(handles=handles, loc="outside lower center", ncol=1)
        else:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=1)
        return fig


SCREEN_CELLS = 400  # cells per axis drawn at most: a heat map on a screen has about this many pixels


def _downsampled(values, diverged, missing, blocks: tuple[int, int]):
    """(values, diverged, missing) over blocks of `blocks` (rows, columns) cells: a block's value is the
    median of its drawn cells, it is diverged when most of its cells diverged, missing when it has no
    value otherwise. The last block of a row or column may be partial."""
    (fy, fx), (ny, nx) = blocks, values.shape
    height, width = math.ceil(ny / fy), math.ceil(nx / fx)

    def padded(array, fill):
        out = np.full((height * fy, width * fx), fill, dtype=float)
        out[:ny, :nx] = array
        return out.reshape(height, fy, width, fx)

    drawn = np.where(diverged | missing, np.nan, values)
    counted = padded(np.ones_like(values), 0.0).sum(axis=(1, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block's median: handled below
        median = np.nanmedian(padded(drawn, np.nan), axis=(1, 3))
    mostly_diverged = padded(diverged, 0.0).sum(axis=(1, 3)) > counted / 2
    return median, mostly_diverged, ~np.isfinite(median) & ~mostly_diverged


def _block_edges(edges: np.ndarray, size: int) -> np.ndarray:
    """The edges of blocks of `size` cells from the cells' edges (the last block may be partial)."""
    kept = edges[::size]
    return kept if (len(edges) - 1) % size == 0 else np.append(kept, edges[-1])


LOG10_SMALLEST = math.log10(np.nextafter(0.0, 1.0))  # the smallest positive float64 (subnormal)
LOG10_LARGEST = math.floor(math.log10(np.finfo(float).max))  # 308: 10**308.25 rounds to inf


LOG_TICKER_DECADES = 250  # past this span matplotlib's log ticker steps beyond float64 and fails on inf


def _decade_ticks(axis, edges: np.ndarray) -> None:
    """At most 8 major ticks on whole decades inside `edges`, no minor ticks: an axis spanning most of
    float64 (lr 1e-308:1e308) whose decades matplotlib's LogLocator would extend to 1e309 = inf."""
    from matplotlib.ticker import FixedLocator, NullLocator

    low, high = math.ceil(math.log10(edges[0])), math.floor(math.log10(edges[-1]))
    step = max(1, math.ceil((high - low) / 7 / 50)) * 50  # decades 10^-300, 10^-200, ...
    first = math.ceil(low / step) * step
    axis.set_major_locator(FixedLocator([10.0**k for k in range(first, high + 1, step)]))
    axis.set_minor_locator(NullLocator())


def _is_log(values: np.ndarray) -> bool:
    if len(values) < 3 or values.min() <= 0:
        return False
    ratios = values[1:] / values[:-1]
    return bool(np.allclose(ratios, ratios[0], rtol=1e-6)) and not np.allclose(
        np.diff(values), np.diff(values)[0]
    )


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges halfway between grid values (in log space for log-spaced axes)."""
    v = np.log10(values) if log else values.astype(float)
    if len(v) == 1:
        edges = np.array([v[0] - 0.5, v[0] + 0.5])
    else:
        middle = (v[1:] + v[:-1]) / 2
        edges = np.concatenate([[v[0] - (middle[0] - v[0])], middle, [v[-1] + (v[-1] - middle[-1])]])
    # an axis reaching the ends of float64 (lr 1e-308:1e308) keeps finite outer edges: pcolormesh refuses inf
    if log:
        return 10 ** np.clip(edges, LOG10_SMALLEST, LOG10_LARGEST)
    return np.clip(edges, -np.finfo(float).max, np.finfo(float).max)
