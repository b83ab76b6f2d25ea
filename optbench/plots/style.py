"""The look every optbench figure shares: palette, series looks, labels, diverged marks, saving.

Every series is told apart by colour, line style and marker together (Okabe–Ito colours, colour-blind
safe): each of the 17 optimizer families has its own (colour, line style, marker) triple, and a second
spec of one family in the same figure (adam at two learning rates) keeps the family colour with another
line style and marker. Looks are assigned from the ordered list of specs a run holds, so every figure of
the run gives a spec the same look. Style is applied with `plt.style.context(STYLE)`, never by editing
global rcParams, and no module here chooses a backend: the CLI does, so a notebook keeps its own.
"""

from __future__ import annotations

import io
import math
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import matplotlib.transforms as mtransforms
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ..optimizers.registry import PRESETS
from ..results import atomic_write_bytes

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">"]

# Presets (momentum, nesterov) are optimizers in their own right to a reader, so they get their own
# looks; the classic ones take the clearest colours, and yellow (hard to see on white) goes to a
# rarely compared algorithm.
_FAMILIES = [
    "sgd",
    "adam",
    "rmsprop",
    "momentum",
    "adagrad",
    "nesterov",
    "adafactor",
    "adamw",
    "nadam",
    "radam",
    "adamax",
    "adadelta",
    "asgd",
    "rprop",
    "lbfgs",
    "muon",
    "sparseadam",
]


class Look(NamedTuple):
    """How one series is drawn; `line(n)` gives the keyword arguments of `ax.plot` for n points."""

    color: str
    linestyle: str
    marker: str

    def line(self, points: int = 0) -> dict:
        """`ax.plot` keywords; a line of more than 12 points gets a marker every ~1/10 of its drawn
        length (spaced on screen, so log axes too), so dense curves stay readable."""
        return dict(
            color=self.color,
            linestyle=self.linestyle,
            marker=self.marker,
            markersize=5,
            markevery=0.1 if points > 12 else None,
        )


FAMILY_LOOK = {
    name: Look(OKABE_ITO[i % 8], LINESTYLES[i // 8 % 4], MARKERS[i % len(MARKERS)])
    for i, name in enumerate(_FAMILIES)
}

# One mark for a diverged run in every figure: an x in the run's colour on the top edge of the axes
# (inside it, clear of the title), and "(diverged)" after the run's legend label.
DIVERGED_MARK = dict(marker="x", s=60, linewidths=2.0, zorder=7, clip_on=False)
DIVERGED_TEXT = "diverged"
# optbench's one definition (runners.divergence), in words a legend can hold
DIVERGED_RULE = "NaN/inf, or ended >10x start gap"
# a training run stops at the blow-up limit instead (runners.divergence)
STOPPED_RULE = "NaN/inf, or >1000x first loss: stopped"
DIVERGED_Y = 0.97  # axes fraction of the diverged marks


def style_key(label: str, family: str | None) -> str | None:
    """The name a series' look follows: a preset ('momentum:lr=0.01' -> 'momentum'), else its family."""
    base = str(label).removeprefix("torch:").split(":")[0].split(" ")[0].lower()
    return base if base in PRESETS else family


def assign_looks(labels_and_families) -> dict[str, Look]:
    """Map each (label, family), in order, to a Look no other label of the list has.

    The first label of a family takes the family's look; later ones keep its colour and step through
    line styles and markers to the next unused triple. Unknown families cycle through the palette.
    """
    used: set[Look] = set()
    looks: dict[str, Look] = {}
    for index, (label, family) in enumerate(labels_and_families):
        if label in looks:
            continue
        base = FAMILY_LOOK.get(style_key(label, family))
        if base is None:
            base = Look(OKABE_ITO[index % 8], LINESTYLES[index // 8 % 4], MARKERS[index % len(MARKERS)])
        look, shift = base, 0
        while look in used:
            shift += 1
            look = Look(
                base.color,
                LINESTYLES[(LINESTYLES.index(base.linestyle) + shift) % len(LINESTYLES)],
                MARKERS[(MARKERS.index(base.marker) + shift) % len(MARKERS)],
            )
        used.add(look)
        looks[label] = look
    return looks


def optimizer_looks(table: pd.DataFrame) -> dict[str, Look]:
    """Look per optimizer of a table with `optimizer` and `family` columns, in table order."""
    pairs = table[["optimizer", "family"]].drop_duplicates("optimizer")
    return assign_looks(list(pairs.itertuples(index=False, name=None)))


def series_label(name: str, lr=None, settings: str | None = None) -> str:
    """One legend format for an optimizer: 'adam (lr=3)', its base name and the settings it ran with.

    name: the spec as typed ('adam:lr=0.5,betas=0.9/0.99', 'torch:adam', 'momentum'); settings: the
    resolved settings text ('lr=0.09, momentum=0.9') where the table has it; else the spec's own
    settings with lr set to `lr`, the lr used (also when it is torch's default).
    """
    prefix = "torch:" if str(name).startswith("torch:") else ""
    base, _, typed = str(name).removeprefix("torch:").partition(":")
    if settings:
        return f"{prefix}{base} ({settings})"
    pairs = [pair.strip() for pair in typed.split(",") if pair.strip()]
    if lr is not None and not (isinstance(lr, float) and math.isnan(lr)):
        pairs = [f"lr={float(lr):.3g}"] + [pair for pair in pairs if not pair.startswith("lr=")]
    return f"{prefix}{base} ({', '.join(pairs)})" if pairs else prefix + base


def table_label(runs: pd.DataFrame) -> str:
    """`series_label` from the rows of one optimizer: its settings column, else its first lr."""
    settings = runs["settings"].iloc[0] if "settings" in runs else None
    lr = runs["lr"].iloc[0] if "lr" in runs else None
    return series_label(runs["optimizer"].iloc[0], lr, settings)


def diverged_label(label: str, step=None) -> str:
    """The label of a diverged series: 'sgd (lr=1.5), diverged at step 12'."""
    at = f" at step {int(step)}" if step is not None and step == step else ""
    return f"{label}, {DIVERGED_TEXT}{at}"


def mark_diverged(ax, xs, color) -> None:
    """An x at each x position on the top edge of `ax` (inside the axes, so clear of the title)."""
    xs = np.atleast_1d(np.asarray(xs, dtype=float))
    if len(xs):
        transform = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(xs, np.full(len(xs), DIVERGED_Y), transform=transform, color=color, **DIVERGED_MARK)


def diverged_handle(rule: str = DIVERGED_RULE) -> Line2D:
    """The legend entry explaining the diverged mark; `rule`: which part of the definition applies."""
    return Line2D(
        [],
        [],
        marker="x",
        markersize=8,
        markeredgewidth=2.0,
        color="0.3",
        linestyle="none",
        label=f"x on top edge: {DIVERGED_TEXT} ({rule})",
    )


def finite_positive(values) -> np.ndarray:
    """Values a log axis can draw: NaN where not finite or not > 0 (a diverged run's inf or 1e308
    would make matplotlib's log tick formatter overflow)."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values) & (values > 0) & (values < 1e300), values, np.nan)


LOSS_DECADES = 20  # a loss axis shows at most this many decades below its top


def clip_loss_axis(ax, values, top=None) -> None:
    """Log loss axis limits that keep curves readable: the top just above the largest value of the runs
    that did not diverge (given as `top` or taken from `values`), the bottom at most LOSS_DECADES below it.
    Curves going lower or higher leave the axes; diverged ones are marked by `mark_diverged`."""
    shown = finite_positive(values)
    shown = shown[np.isfinite(shown)]
    if not len(shown):
        return
    high = float(top) if top is not None and np.isfinite(top) else float(shown.max()) * 2
    low = max(float(shown.min()) / 2, high * 10.0**-LOSS_DECADES)
    if low < high:
        ax.set_ylim(low, high)


STYLE = {
    "figure.dpi": 110,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.6,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # embed TrueType so text in PDFs stays editable
    "svg.fonttype": "none",
}

# One resolution policy for every PNG: figures are drawn 6.5–12 inches wide and saved at PNG_DPI,
# so every PNG is about 1300–2400 pixels wide, whatever command made it.
PNG_DPI = 200
WIDTH_RANGE_INCHES = (6.5, 12.0)


@contextmanager
def style():
    with plt.style.context(STYLE):
        yield


def save(fig, stem: Path, formats=("png",)) -> list[Path]:
    """Write `stem.png`, `stem.pdf`, ... atomically at PNG_DPI in the shared style; closes the figure;
    returns the paths written."""
    paths = []
    with style():
        for fmt in formats:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=PNG_DPI)
            path = Path(f"{stem}.{fmt}")
            atomic_write_bytes(path, buffer.getvalue())
            paths.append(path)
    plt.close(fig)
    return paths


def save_figures(figures: dict, folder: Path, formats=("png",)) -> list[Path]:
    """Write each {stem: figure} as `folder/stem.<format>`; closes the figures; returns the paths written."""
    paths = []
    for stem, fig in figures.items():
        paths += save(fig, Path(folder) / stem, formats)
    return paths
