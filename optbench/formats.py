"""Numbers as tables show them: one format for the commands, the reports and the published pages.
Light on purpose (no torch, no numpy): the command line imports it before it loads anything heavy."""

from __future__ import annotations


def format_number(value) -> str:
    """Compact, honest numbers for tables: 3 significant digits, NaN/inf spelled out."""
    if value is None:
        return "-"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if 1e3 <= abs(value) < 1e7:
        return str(round(value))  # 5990, not 5.99e+03
    return f"{value:.3g}"
