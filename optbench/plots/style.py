"""The look every optbench figure shares: palette, line styles, fonts, saving.

One colour per optimizer *family* everywhere (Okabe–Ito, colour-blind safe), with a line style
as a second cue, so "adam" is the same blue in a trajectory plot, a loss curve and a sweep.
Style is applied with `plt.style.context(STYLE)`, never by editing global rcParams, and no module
here chooses a backend: the CLI does, in its entry function, so a notebook keeps its own.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..optimizers.registry import PRESETS
from ..results import atomic_write_bytes

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
LINESTYLES = ["-", "--", "-.", ":"]

# Fixed name -> (colour, line style). Presets (momentum, nesterov) are optimizers in their own right
# to a reader, so they get their own colours; the classic ones take the clearest colours, and
# yellow (hard to see on white) goes to a rarely compared algorithm.
_FAMILIES = ["sgd", "adam", "rmsprop", "momentum", "adagrad", "nesterov", "adafactor", "adamw",
             "nadam", "radam", "adamax", "adadelta", "asgd", "rprop", "lbfgs", "muon", "sparseadam"]
FAMILY_STYLE = {name: (OKABE_ITO[i % 8], LINESTYLES[i // 8 % 4]) for i, name in enumerate(_FAMILIES)}


def style_key(label: str, family: str | None) -> str | None:
    """The name a curve's colour follows: a preset ('momentum:lr=0.01' -> 'momentum'), else its family."""
    base = str(label).removeprefix("torch:").split(":")[0].split(" ")[0].lower()
    return base if base in PRESETS else family


STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
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
    "pdf.fonttype": 42,   # embed TrueType so text in PDFs stays editable
    "svg.fonttype": "none",
}


def color_for(label: str, family: str | None = None, index: int = 0) -> tuple[str, str]:
    """(colour, linestyle) for a curve: by family when known, else cycled by index.

    Several specs of one family in one figure (adam at two learning rates) get the family colour
    with different line styles.
    """
    if family in FAMILY_STYLE:
        colour, _ = FAMILY_STYLE[family]
        return colour, LINESTYLES[index % len(LINESTYLES)]
    return OKABE_ITO[index % 8], LINESTYLES[index // 8 % 4]


def assign_styles(labels_and_families) -> dict[str, tuple[str, str]]:
    """Map each (label, family) to a (colour, linestyle); repeated families get new line styles."""
    seen: dict[str, int] = {}
    styles = {}
    for i, (label, family) in enumerate(labels_and_families):
        family = style_key(label, family)
        if family in FAMILY_STYLE:
            styles[label] = color_for(label, family, seen.get(family, 0))
            seen[family] = seen.get(family, 0) + 1
        else:
            styles[label] = color_for(label, None, i)
    return styles


def optimizer_styles(table: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """(colour, linestyle) per optimizer of a table with `optimizer` and `family` columns, in table order."""
    pairs = table[["optimizer", "family"]].drop_duplicates("optimizer")
    return assign_styles(list(pairs.itertuples(index=False, name=None)))


@contextmanager
def style():
    with plt.style.context(STYLE):
        yield


def save(fig, stem: Path, formats=("png",)) -> list[Path]:
    """Write `stem.png`, `stem.pdf`, ... atomically; returns the paths written."""
    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt)
        path = Path(f"{stem}.{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def save_figures(figures: dict, folder: Path, formats=("png",)) -> list[Path]:
    """Write each {stem: figure} as `folder/stem.<format>` (in the shared style, which savefig reads too:
    dpi, tight bounding box); closes the figures; returns the paths written."""
    paths = []
    with style():
        for stem, fig in figures.items():
            paths += save(fig, Path(folder) / stem, formats)
    return paths
