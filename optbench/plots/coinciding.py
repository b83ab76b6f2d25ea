"""Series drawn on top of each other, found from the drawn data and said in the legend.

`note_coinciding(ax)` relabels each line lying (within half a pixel) on an earlier one, so a legend
built afterwards says "(coincides with ...)": torch:adam under adam, SGD under ASGD at its defaults.
Figures with proxy legend handles use `coinciding` and `coinciding_label` directly.
"""

from __future__ import annotations

import numpy as np

COINCIDES = "coincides with"
COINCIDE_PIXELS = 0.5  # drawn points closer than this (at the figure's dpi) are one curve to the eye


def on_screen(transform, x, y) -> np.ndarray:
    """[n, 2] display coordinates (pixels) of the points (x, y) drawn with `transform` (`ax.transData`);
    NaN where a point is not drawn (not finite, or not > 0 on a log axis)."""
    points = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    with np.errstate(all="ignore"):
        shown = np.asarray(transform.transform(points), dtype=float)
    shown[~np.isfinite(points).all(axis=1)] = np.nan
    return np.where(np.isfinite(shown), shown, np.nan)


def coinciding(drawings: dict, pixels: float = COINCIDE_PIXELS) -> dict[str, str]:
    """{later label: earlier label} for each series drawn on top of an earlier one, from the data.

    drawings: label -> {panel key: [n, 2] display coordinates (`on_screen`)}, in drawing order. Two
    series coincide where every panel both draw holds the same number of points, the same points drawn,
    each within `pixels` of its partner: torch:adam on adam (equal to rounding), SGD under ASGD at its
    default settings (1% apart on a loss axis spanning 18 decades). A series with nothing drawn
    coincides with none. Never decided from names.
    """
    labels = list(drawings)
    found: dict[str, str] = {}
    for j, later in enumerate(labels):
        for earlier in labels[:j]:
            if earlier not in found and _same_drawing(drawings[earlier], drawings[later], pixels):
                found[later] = earlier
                break
    return found


def coinciding_label(label: str, earlier: str) -> str:
    """'torch:adam (lr=3)' -> 'torch:adam (lr=3)\n  (coincides with adam (lr=3))', the note on a line of
    its own after the label's first line."""
    first, *rest = str(label).split("\n")
    return "\n".join([first, f"  ({COINCIDES} {str(earlier).splitlines()[0]})", *rest])


def note_coinciding(*axes, pixels: float = COINCIDE_PIXELS) -> dict[str, str]:
    """Relabel each labelled line of `axes` drawn on top of an earlier one (`coinciding`; lines of one
    label paired by axes) with `coinciding_label`, so a legend built afterwards says so. Call it once
    the axes' limits are final. Returns {later label: earlier label} as they were before the note."""
    lines: dict[str, list] = {}
    for index, ax in enumerate(axes):
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                lines.setdefault(line.get_label(), []).append((index, line))
    drawings = {
        label: {
            index: on_screen(line.get_transform(), line.get_xdata(), line.get_ydata())
            for index, line in drawn
        }
        for label, drawn in lines.items()
    }
    found = coinciding(drawings, pixels)
    for later, earlier in found.items():
        for _, line in lines[later]:
            line.set_label(coinciding_label(later, earlier))
    return found


def _same_drawing(first: dict, second: dict, pixels: float) -> bool:
    shared = [key for key in first if key in second]
    if not shared:
        return False
    for key in shared:
        a, b = first[key], second[key]
        drawn = np.isfinite(a).all(axis=1)
        if a.shape != b.shape or not np.array_equal(drawn, np.isfinite(b).all(axis=1)):
            return False
        if np.any(np.abs(a[drawn] - b[drawn]) > pixels):
            return False
    return any(np.isfinite(first[key]).all(axis=1).any() for key in shared)
