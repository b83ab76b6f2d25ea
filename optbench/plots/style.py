"""The look every optbench figure shares: palette, series looks, labels, diverged marks, saving.

Every series is told apart by colour, line style and marker together (Okabe–Ito colours, colour-blind
safe): each of the 17 optimizer families has its own (colour, line style, marker) triple, and a second
spec of one family in the same figure (adam at two learning rates) takes a colour no other series of
the figure has, with another line style and marker. A user's own class or a zoo optimizer takes a
colour no built-in family has (`EXTERNAL_COLOURS`) and is labelled by its class name (`MyOpt (lr=0.1)`,
`Lion [pytorch_optimizer]`). Looks are assigned from the ordered list of specs a run holds, so every
figure of the run gives a spec the same look. Series that draw exactly the same values say so in the
legend (`coinciding.note_coinciding`). Style is applied with `plt.style.context(STYLE)`, never by editing global
rcParams, and no module here chooses a backend: the CLI does, so a notebook keeps its own.
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
from matplotlib.ticker import LogFormatter

from ..errors import OptbenchError
from ..optimizers.external import class_name, split_spec
from ..optimizers.registry import PRESETS, ZOO_PACKAGES, is_external
from ..results import atomic_write_bytes

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
YELLOW = OKABE_ITO[6]  # hard to see on white: only a family's own colour, never a spare one
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">"]
# For optimizers outside the registry: Paul Tol's muted palette without its colours close to an
# Okabe-Ito one (cyan, teal, purple), plus a mid grey, so a user's class never passes for a built-in.
EXTERNAL_COLOURS = ["#882255", "#332288", "#999933", "#CC6677", "#117733", "#777777"]

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
# which part of the rule a diverged series met, for its own legend label
EXPLODED = "finite, ended >10x start gap"
EXPLODED_TRAINING = "finite, >1000x first loss"
DIVERGED_Y = 0.97  # axes fraction of the diverged marks


def style_key(label: str, family: str | None) -> str | None:
    """The name a series' look follows: a preset ('momentum:lr=0.01' -> 'momentum'), else its family."""
    base = str(label).removeprefix("torch:").split(":")[0].split(" ")[0].lower()
    return base if base in PRESETS else family


def family_of(spec_text: str) -> str:
    """The family a spec text belongs to, as tables record it: 'torch:adam:lr=1' -> 'adam', a user's
    'dir/my.py:MyOpt:lr=0.1' -> 'dir/my.py:MyOpt' (the class it names)."""
    text = str(spec_text)
    if is_external(text):
        try:
            return split_spec(text)[0]
        except OptbenchError:
            return text
    return text.removeprefix("torch:").split(":")[0].lower()


def assign_looks(labels_and_families) -> dict[str, Look]:
    """Map each (label, family), in order, to a Look no other label of the list has.

    The first label of a family takes the family's look; a later one (sgd at another lr, torch:adam
    beside adam) takes a colour no series of the list has, so that its theory line and its curve are
    told apart from its sibling's by colour too, and steps through line styles and markers. A family
    outside the registry (a user's class, a zoo optimizer) takes the next of `EXTERNAL_COLOURS`, a colour
    no built-in has, and its siblings only those colours.
    """
    pairs = list(labels_and_families)
    others: dict[str, int] = {}  # family outside the registry -> its order of appearance
    bases: dict[str, Look] = {}
    family_bases: dict[Look, Look] = {}  # a family's look -> the look it takes in this figure
    for label, family in pairs:
        if label in bases:
            continue
        base = FAMILY_LOOK.get(style_key(label, family))
        external = base is None
        if external:
            k = others.setdefault(str(family), len(others))
            n = len(EXTERNAL_COLOURS)
            base = Look(EXTERNAL_COLOURS[k % n], LINESTYLES[k // n % 4], MARKERS[(k + 5) % len(MARKERS)])
        if base not in family_bases:
            # eight colours for more families: two families sharing one (adam and radam, adamw and
            # muon) would be told apart by dashes only, so the later takes a colour still free here
            taken = {look.color for look in family_bases.values()}
            pool = EXTERNAL_COLOURS if external else [c for c in OKABE_ITO if c != YELLOW] + EXTERNAL_COLOURS
            free = [c for c in pool if c not in taken]
            family_bases[base] = base._replace(color=free[0]) if base.color in taken and free else base
        bases[label] = family_bases[base]
    taken = {base.color for base in bases.values()}
    # sgd's blue and adam's orange, the colours readers know best, go last
    spare = [c for c in OKABE_ITO[2:] + OKABE_ITO[:2] + EXTERNAL_COLOURS if c not in taken and c != YELLOW]
    used: set[Look] = set()
    siblings: dict[Look, int] = {}  # family look -> how many specs of it came before
    looks: dict[str, Look] = {}
    for label, base in bases.items():
        k = siblings[base] = siblings.get(base, -1) + 1
        if k:  # a sibling of an earlier spec: a colour of its own where one is free, its own dashes
            own = [c for c in spare if base.color in OKABE_ITO or c in EXTERNAL_COLOURS]
            colour = spare.pop(spare.index(own[0])) if own else base.color
            base = Look(
                colour,
                LINESTYLES[(LINESTYLES.index(base.linestyle) + k) % len(LINESTYLES)],
                MARKERS[(MARKERS.index(base.marker) + k) % len(MARKERS)],
            )
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


def display_name(name: str) -> tuple[str, str]:
    """(the name a legend shows, the settings typed) of a spec text: 'torch:adam:lr=1' -> ('torch:adam',
    'lr=1'); a user's class 'dir/my.py:MyOpt:lr=0.1' or 'mypkg.mod:MyOpt:lr=0.1' -> ('MyOpt', 'lr=0.1'),
    not the file or module; a zoo optimizer 'pytorch_optimizer:lion' -> ('Lion [pytorch_optimizer]', '')."""
    text = str(name)
    if is_external(text):
        try:
            target, typed = split_spec(text)
        except OptbenchError:
            return text, ""
        head = target.partition(":")[0]
        shown = class_name(target)
        return (f"{shown} [{head}]" if head in ZOO_PACKAGES else shown), typed
    prefix = "torch:" if text.startswith("torch:") else ""
    base, _, typed = text.removeprefix("torch:").partition(":")
    return prefix + base, typed


def series_label(name: str, lr=None, settings: str | None = None) -> str:
    """One legend format for an optimizer: 'adam (lr=3)', its name (`display_name`) and the settings it
    ran with.

    name: the spec as typed ('adam:lr=0.5,betas=0.9/0.99', 'torch:adam', 'momentum', 'my.py:MyOpt');
    settings: the resolved settings text ('lr=0.09, momentum=0.9') where the table has it; else the
    spec's own settings with lr set to `lr`, the lr used (also when it is torch's default).
    """
    shown, typed = display_name(name)
    if settings:
        return f"{shown} ({settings})"
    pairs = [pair.strip() for pair in typed.split(",") if pair.strip()]
    if lr is not None and not (isinstance(lr, float) and math.isnan(lr)):
        pairs = [f"lr={float(lr):.3g}"] + [pair for pair in pairs if not pair.startswith("lr=")]
    return f"{shown} ({', '.join(pairs)})" if pairs else shown


def table_label(runs: pd.DataFrame) -> str:
    """`series_label` from the rows of one optimizer: its settings column, else its first lr."""
    settings = runs["settings"].iloc[0] if "settings" in runs else None
    lr = runs["lr"].iloc[0] if "lr" in runs else None
    return series_label(runs["optimizer"].iloc[0], lr, settings)


# A theory line (an analytic rate, an exact noise floor) is drawn in its series' colour in a dash-dot-dot
# no series look uses, and explained by one legend entry.
THEORY_STYLE = dict(linestyle=(0, (6, 2, 1, 2, 1, 2)), linewidth=1.1, alpha=0.9)


def diverged_label(label: str, step=None, cause: str | None = None) -> str:
    """The label of a diverged series: 'sgd (lr=1.5), diverged at step 12 (NaN/inf)'; cause: which part
    of the one rule it met (`divergence_cause`)."""
    at = f" at step {int(step)}" if step is not None and step == step else ""
    return f"{label}, {DIVERGED_TEXT}{at}" + (f" ({cause})" if cause else "")


def divergence_cause(values, exploded: str = EXPLODED) -> str:
    """'NaN/inf' where a diverged run's recorded values include a non-finite one, else `exploded` (the
    finite blow-up the threshold rule flagged): a legend says NaN/inf only where there was one."""
    values = np.asarray(values, dtype=float)
    return "NaN/inf" if (~np.isfinite(values)).any() else exploded


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


# A run at its floor (f - f_min exactly 0, or below what float64 resolves next to f_min) has no value a
# log axis can show: a triangle on the bottom edge marks where it got there, explained once.
FLOOR_Y = 0.03  # axes fraction of the floor marks
FLOOR_MARK = dict(marker="v", s=60, edgecolors="black", linewidths=0.6, zorder=7, clip_on=False)


def float_floor(minimum: float) -> float:
    """The smallest gap f - f_min that float64 resolves next to f_min: 8 ulps of |f_min| (0 where
    f_min = 0, where only a gap of exactly 0, or below, is at the floor). Source: IEEE 754 binary64,
    spacing eps·|x| near x."""
    return 8 * float(np.finfo(np.float64).eps) * abs(float(minimum))


def mark_floor(ax, xs, color) -> None:
    """A triangle at each x position on the bottom edge of `ax`, in the series' colour."""
    xs = np.atleast_1d(np.asarray(xs, dtype=float))
    if len(xs):
        transform = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(xs, np.full(len(xs), FLOOR_Y), transform=transform, color=color, **FLOOR_MARK)


def floor_handle(minimum: str = "f_min") -> Line2D:
    """The legend entry explaining the floor mark; `minimum`: the symbol of the value reached."""
    return Line2D(
        [], [], marker="v", markersize=8, markeredgecolor="black", color="0.3", linestyle="none",
        label=f"▼ on bottom edge: reached {minimum} exactly or below float resolution",
    )  # fmt: skip


def finite_positive(values) -> np.ndarray:
    """Values a log axis can draw: NaN where not finite or not > 0 (a diverged run's inf or 1e308
    would make matplotlib's log tick formatter overflow)."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values) & (values > 0) & (values < 1e300), values, np.nan)


class PlainLogFormatter(LogFormatter):
    """matplotlib's LogFormatter (which picks the ticks worth a label, minor ones too on a short axis),
    writing each as a plain number: 60, 0.06, 1e+06 only past 6 digits."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:.6g}"


def plain_log_ticks(axis) -> None:
    """Tick labels of a log `axis` written as plain numbers (60, 0.06), never 6×10¹."""
    axis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


LOSS_DECADES = 20  # a loss axis shows at most this many decades below its top


def clip_loss_axis(ax, values, top=None) -> None:
    """Log loss axis limits that keep curves readable: the top just above the largest value of the runs
    that did not diverge (given as `top` or taken from `values`), the bottom at most LOSS_DECADES below it.
    Curves going lower or higher leave the axes: a note on the axes says so where some value lies below
    the bottom; diverged ones are marked by `mark_diverged`."""
    shown = finite_positive(values)
    shown = shown[np.isfinite(shown)]
    if not len(shown):
        return
    high = float(top) if top is not None and np.isfinite(top) else float(shown.max()) * 2
    low = max(float(shown.min()) / 2, high * 10.0**-LOSS_DECADES)
    if low < high:
        ax.set_ylim(low, high)
        if shown.min() < low:  # values below the clip leave through the bottom: say so on the figure
            ax.annotate(
                f"values below {low:.0e} run off the axis (it shows {LOSS_DECADES} decades)",
                xy=(0.99, 0.01),
                xycoords="axes fraction",
                ha="right",
                va="bottom",
                fontsize=8,
                color="dimgrey",
            )


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
