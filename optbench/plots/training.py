"""Training curves: loss and accuracy per optimizer, and f - f* for stochastic linear regression.

Every function takes result tables (as written by `optbench train`) and returns a figure; one
look (colour, line style, marker) per optimizer spec (`style.assign_looks`), labelled `adam (lr=0.001)`
with the lr each run started from; a diverged run is marked as in every optbench figure. Where a
table holds several seeds of each optimizer (`train --seeds K`), a curve is their mean and a band of
the optimizer's colour its 95% Student-t interval (`optbench.seeds.seed_band`), said in the legend.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from ..errors import OptbenchError
from ..seeds import CONFIDENCE, seed_band, seed_count
from .coinciding import note_coinciding
from .style import (
    EXPLODED_TRAINING,
    STOPPED_RULE,
    assign_looks,
    clip_loss_axis,
    diverged_handle,
    diverged_label,
    divergence_cause,
    finite_positive,
    float_floor,
    floor_handle,
    mark_diverged,
    mark_floor,
    series_label,
    style,
)


def _looks(table: pd.DataFrame) -> dict:
    pairs = table[["optimizer", "family"]].drop_duplicates().itertuples(index=False, name=None)
    return assign_looks(list(pairs))


def _label(name: str, runs: pd.DataFrame, lr=None, values=None) -> str:
    """`adam (lr=0.001)` (the lr the run started from), with ', diverged (NaN/inf)' when it did, or
    ', diverged (finite, >1000x first loss)' where every recorded value (`values`, else the runs' loss
    columns) stayed finite."""
    if lr is None and "lr" in runs:
        lr = runs["lr"].iloc[0]
    label = series_label(name, lr)
    if "diverged" not in runs or not runs["diverged"].any():
        return label
    if values is None:
        values = runs[[c for c in ("val_loss", "loss", "suboptimality") if c in runs]].to_numpy().ravel()
    return diverged_label(label, cause=divergence_cause(values, EXPLODED_TRAINING))


def _draw_over_seeds(
    ax, runs: pd.DataFrame, x: str, y: str, look, label=None, scale: float = 1.0, log: bool = False
):
    """The mean of `y` over `runs`' seeds against `x`, and where several seeds ran its Student-t band,
    filled in the look's colour; `scale` multiplies both (100 for %); `log`: the geometric mean and
    its band (`seed_band`). A loss's non-positive mean is left out (log axes)."""
    band = seed_band(runs, x, y, log=log)
    mean = scale * band["mean"]
    ax.plot(
        band[x],
        mean if y.endswith("accuracy") else finite_positive(mean),
        label=label,
        **look.line(len(band)),
    )
    if band["seeds"].max() > 1:
        ax.fill_between(band[x], scale * band["low"], scale * band["high"], color=look.color, alpha=0.2, lw=0)


def _mean_over_seeds(runs: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """`x` and the mean of `y` over `runs`' seeds (the faint per-step curves, drawn without a band)."""
    return runs.groupby(x, sort=True, as_index=False)[y].mean()


def _band_handle(table: pd.DataFrame, log: bool = False) -> list:
    """The legend entry that says what the bands are, where `table` holds several seeds."""
    seeds = seed_count(table)
    if seeds == 1:
        return []
    mean = "geometric mean" if log else "mean"
    label = (
        f"{mean} of {seeds} seeds;\nband: {CONFIDENCE:.0%} t interval\nof the {'mean log' if log else 'mean'}"
    )
    return [Patch(facecolor="0.5", alpha=0.35, label=label)]


def _first_seed(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each optimizer's first seed (what all its seeds share, such as the lr schedule)."""
    if "seed" not in table:
        return table
    first = table.groupby("optimizer", sort=False)["seed"].transform("min")
    return table[table["seed"] == first]


def _title_of(summary: pd.DataFrame | None) -> str | None:
    """'digits, lenet' from a training summary table: what was run."""
    if summary is None or summary.empty:
        return None
    parts = [
        str(summary[column].iloc[0])
        for column in ("task", "model")
        if column in summary and pd.notna(summary[column].iloc[0])
    ]
    return ", ".join(parts) or None


def _scheduled(epochs: pd.DataFrame, steps: pd.DataFrame | None) -> pd.DataFrame | None:
    """The lr per step (or per epoch) where some run's lr changes during training, else None."""
    table = steps if steps is not None and "lr" in steps else epochs if "lr" in epochs else None
    if table is None or not len(table):
        return None
    changes = table.groupby("optimizer", sort=False)["lr"].nunique()
    return table if (changes > 1).any() else None


def plot_training(epochs: pd.DataFrame, steps: pd.DataFrame | None = None, title: str | None = None):
    """Loss (per step, faint, and validation per epoch) and accuracy (%, train and validation) panels,
    and a third, the learning rate per step, where a schedule changed it. Diverged runs leave the loss
    axis through the top, with an x there."""
    schedule = _scheduled(epochs, steps)
    with style():
        panels = 3 if schedule is not None else 2
        fig, axes = plt.subplots(1, panels, figsize=(3.4 * panels + 1.6, 3.8), layout="constrained")
        loss_ax, accuracy_ax = axes[0], axes[1]
        looks = _looks(epochs)
        per_epoch = _steps_per_epoch(epochs, steps)
        for name, runs in epochs.groupby("optimizer", sort=False):
            look = looks[name]
            own_steps = steps.loc[steps["optimizer"] == name, "loss"] if steps is not None else []
            label = _label(
                name, runs, values=np.r_[runs["val_loss"].to_numpy(float), np.asarray(own_steps, float)]
            )
            if per_epoch:
                own = _mean_over_seeds(steps[steps["optimizer"] == name], "step", "loss")
                loss_ax.plot(
                    (own["step"] + 1) / per_epoch,
                    finite_positive(own["loss"]),
                    color=look.color,
                    alpha=0.25,
                    lw=0.8,
                )
            _draw_over_seeds(loss_ax, runs, "epoch", "val_loss", look, label)
            train_accuracy = _mean_over_seeds(runs, "epoch", "train_accuracy")
            accuracy_ax.plot(
                train_accuracy["epoch"],
                100 * train_accuracy["train_accuracy"],
                color=look.color,
                alpha=0.35,
                linestyle=look.linestyle,
                lw=1,
            )
            _draw_over_seeds(accuracy_ax, runs, "epoch", "val_accuracy", look, label, scale=100)
        loss_ax.set(
            xlabel="epoch",
            ylabel="cross-entropy loss",
            title="loss: validation (markers),\ntraining steps (faint)",
        )
        top = _loss_ceiling(epochs, steps)
        if _spans_decades(epochs["val_loss"]) or (steps is not None and _spans_decades(steps["loss"])):
            loss_ax.set_yscale("log")
            clip_loss_axis(loss_ax, epochs["val_loss"], top=top)
        loss_ax.set_ylim(top=top)
        diverged = epochs[epochs["diverged"].astype(bool)]
        each_run = ["optimizer", "seed"] if "seed" in epochs else ["optimizer"]
        for (name, *seed), runs in diverged.groupby(each_run, sort=False):
            own = steps[(steps["optimizer"] == name) & _of_seed(steps, seed)] if per_epoch else None
            at = (
                (own["step"].max() + 1) / per_epoch if own is not None and len(own) else runs["epoch"].iloc[0]
            )
            mark_diverged(loss_ax, [at], looks[name].color)
        accuracy_ax.set(
            xlabel="epoch", ylabel="accuracy (%)", title="accuracy: validation (markers),\ntraining (faint)"
        )
        lowest = np.nanmin(100 * epochs[["val_accuracy", "train_accuracy"]].to_numpy())
        accuracy_ax.set_ylim(max(0.0, np.floor(lowest / 10) * 10 if np.isfinite(lowest) else 0.0), 100.5)
        if schedule is not None:
            _draw_lr(axes[2], _first_seed(schedule), looks, per_epoch)
        note_coinciding(loss_ax, accuracy_ax)
        handles, labels = accuracy_ax.get_legend_handles_labels()
        band = _band_handle(epochs)
        handles, labels = handles + band, labels + [handle.get_label() for handle in band]
        if len(diverged):
            handles.append(diverged_handle(STOPPED_RULE))
            labels.append(handles[-1].get_label())
        fig.legend(handles, labels, loc="outside right center", title="optimizer")
        if title:
            fig.suptitle(title)
        return fig


def _of_seed(table: pd.DataFrame, seed: list):
    """Row mask of `seed` ([] or [seed], from a groupby that includes the seed where there is one)."""
    return table["seed"] == seed[0] if seed else np.ones(len(table), dtype=bool)


def _steps_per_epoch(epochs: pd.DataFrame, steps: pd.DataFrame | None):
    """Steps in one whole epoch, counted in the epochs no run stopped in (a diverged run's last epoch is
    cut short, so its count would place its steps late); None without step rows or a whole epoch."""
    if steps is None or not len(steps):
        return None
    run = ["optimizer", "epoch", *(["seed"] if "seed" in epochs and "seed" in steps else [])]
    whole = epochs.loc[~epochs["diverged"].astype(bool), run]
    counts = steps.merge(whole, on=run).groupby(run)["step"].count()
    return int(counts.max()) if len(counts) else None


def _draw_lr(ax, schedule: pd.DataFrame, looks: dict, per_epoch) -> None:
    """The learning rate each run used, per step (as epochs) or per epoch."""
    for name, run in schedule.groupby("optimizer", sort=False):
        x = (run["step"] + 1) / per_epoch if "step" in run and per_epoch else run["epoch"]
        ax.plot(x, run["lr"], **looks[name].line(len(run)))
    ax.set(xlabel="epoch", ylabel="learning rate", title="learning rate\n(schedule)")
    if schedule["lr"].max() / max(schedule["lr"][schedule["lr"] > 0].min(), 1e-300) > 100:
        ax.set_yscale("log")


def plot_regression(steps: pd.DataFrame, f_star: float | None = None):
    """f(w, b) - f* over all samples after each mini-batch step, log scale."""
    with style():
        fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
        looks = _looks(steps)
        start = finite_positive(steps.groupby("optimizer")["suboptimality"].first())
        top = 10 * float(np.nanmax(start)) if np.isfinite(start).any() else None
        diverged, floored = False, False
        floor = float_floor(f_star) if f_star is not None else 0.0
        for name, run in steps.groupby("optimizer", sort=False):
            raw = run["suboptimality"].to_numpy(dtype=float)
            at_floor = np.isfinite(raw) & (raw <= floor)
            label = _label(name, run)
            if at_floor.any() and not run["diverged"].any():
                floored = True
                reached = int(run["step"].to_numpy()[at_floor].min()) + 1
                label += f", at f* from step {reached} (▼)"
                mark_floor(ax, [reached], looks[name].color)
            gap = np.where(at_floor, np.nan, raw)
            if top is not None:
                gap = np.where(gap <= top, gap, np.nan)
            shown = run.assign(step=run["step"] + 1, suboptimality=gap)
            _draw_over_seeds(ax, shown, "step", "suboptimality", looks[name], label, log=True)
            if run["diverged"].any():
                diverged = True
                mark_diverged(ax, run.loc[run["diverged"].astype(bool), "step"] + 1, looks[name].color)
        ax.set_yscale("log")
        clip_loss_axis(ax, steps["suboptimality"], top=top)
        ax.set(
            xlabel="mini-batch step",
            ylabel="f(w, b) − f*  (mean squared error)",
            title="linear regression: gap to the least-squares optimum"
            + (f" f* = {f_star:.3g}" if f_star is not None else ""),
        )
        note_coinciding(ax)
        handles, _ = ax.get_legend_handles_labels()
        handles += _band_handle(steps, log=True)
        handles += [diverged_handle(STOPPED_RULE)] if diverged else []
        handles += [floor_handle("f*")] if floored else []
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="optimizer")
        return fig


def plot_scalar_trace(trace: pd.DataFrame):
    """The worked example: a per iteration, approaching the solution a = 2 (values written beside the
    points for short runs); a diverged run leaves the axes with an x on the top edge."""
    with style():
        fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
        looks = _looks(trace)
        diverged = False
        for name, run in trace.groupby("optimizer", sort=False):
            look = looks[name]
            a = np.r_[run["a"].to_numpy(dtype=float), run["a_next"].to_numpy(dtype=float)[-1:]]
            finite = np.isfinite(a) & (np.abs(a) < 1e6)
            gone = "diverged" in run and run["diverged"].any() or not finite.all()
            label = series_label(name, run["lr"].iloc[0] if "lr" in run else None)
            ax.plot(
                np.arange(len(a)),
                np.where(finite, a, np.nan),
                label=diverged_label(label, cause=divergence_cause(a, EXPLODED_TRAINING)) if gone else label,
                **look.line(len(a)),
            )
            if gone:
                diverged = True
                mark_diverged(ax, [int(np.argmin(finite)) if not finite.all() else len(a) - 1], look.color)
            if len(a) <= 12:
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
        iterations = len(trace) // trace["optimizer"].nunique() + 1
        if iterations <= 12:
            ax.set_xticks(np.arange(iterations))
        ax.set(xlabel="iteration", ylabel="a", title="y = a·x, one sample (x=2, y=4): solution a = 2")
        handles, _ = ax.get_legend_handles_labels()
        ax.legend(handles=handles + ([diverged_handle(STOPPED_RULE)] if diverged else []), loc="lower right")
        return fig


def plot_language_model(
    evaluations: pd.DataFrame,
    steps: pd.DataFrame | None = None,
    references: dict | None = None,
    title: str | None = None,
):
    """A language model's loss (nats per character) against steps: training steps faint, validation
    evaluations with markers, and the corpus's trivial references as grey lines (`references`:
    "bigram_val_loss" dashed, "unigram_entropy" dotted, where given)."""
    with style():
        fig, ax = plt.subplots(figsize=(8.0, 3.8), layout="constrained")
        looks = _looks(evaluations)
        for name, runs in evaluations.groupby("optimizer", sort=False):
            look = looks[name]
            if steps is not None and len(steps):
                own = _mean_over_seeds(steps[steps["optimizer"] == name], "step", "loss")
                ax.plot(own["step"] + 1, finite_positive(own["loss"]), color=look.color, alpha=0.25, lw=0.8)
            _draw_over_seeds(ax, runs, "step", "val_loss", look, _label(name, runs))
        for key, label, linestyle in (
            ("bigram_val_loss", "bigram baseline", "--"),
            ("unigram_entropy", "unigram entropy", ":"),
        ):
            value = (references or {}).get(key)
            if value is not None and np.isfinite(value):
                ax.axhline(value, color="0.45", lw=1, linestyle=linestyle, label=f"{label} ({value:.2f})")
        ax.set(
            xlabel="step",
            ylabel="cross-entropy (nats per character)",
            title="loss: validation (markers), training steps (faint)",
        )
        handles = ax.get_legend_handles_labels()[0] + _band_handle(evaluations)
        fig.legend(handles=handles, loc="outside right center", title="optimizer")
        if title:
            fig.suptitle(title)
        return fig


def training_figures(
    tables: dict[str, pd.DataFrame], f_star: float | None = None, references: dict | None = None
) -> dict:
    """Figure name -> figure for whichever training tables are present: 'training' (epochs, with
    steps if given; a language model's evaluations against steps, with its `references`),
    'regression' (f - f*, with the least-squares loss f_star), 'trace' (scalar)."""
    figures = {}
    epochs = tables.get("epochs")
    if epochs is not None and "train_bpc" in epochs:  # a language model's epochs
        figures["training"] = plot_language_model(
            tables["evaluations"], tables.get("steps"), references, _title_of(tables.get("summary"))
        )
    elif epochs is not None:
        missing = [c for c in ("val_accuracy", "train_accuracy") if c not in epochs]
        if missing:
            raise OptbenchError(
                f"the epochs table lacks column(s) {', '.join(missing)}; was it written by optbench?"
            )
        figures["training"] = plot_training(
            tables["epochs"], tables.get("steps"), _title_of(tables.get("summary"))
        )
    if tables.get("regression") is not None:
        figures["regression"] = plot_regression(tables["regression"], f_star)
    if tables.get("trace") is not None:
        figures["trace"] = plot_scalar_trace(tables["trace"])
    return figures


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
