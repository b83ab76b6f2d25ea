"""Options `compare` and `grid` share: the surface, steps, start, noise; checked before any work."""

from __future__ import annotations

import rich_click as click

from ..errors import OptbenchError

MAX_STEPS = 2**63 - 1  # a step counter is a 64-bit integer in torch


def surface_options(function):
    for option in reversed(
        [
            click.option(
                "--surface",
                default="elliptic",
                show_default=True,
                help="Surface name (see `optbench list`); quadratic:dim=N,condition=K.",
            ),
            click.option(
                "--steps",
                type=click.IntRange(max=MAX_STEPS),
                default=None,
                help="Steps per run (default: the surface's).",
            ),
            click.option("--start", default=None, help="Start point 'X,Y' (default: the surface's)."),
            click.option(
                "--noise",
                type=float,
                default=0.0,
                show_default=True,
                help="Std of Gaussian noise added to every gradient coordinate (seeded).",
            ),
        ]
    ):
        function = option(function)
    return function


def resolve_surface(surface: str, steps: int | None, start: str | None, noise: float):
    """(Surface, steps, start tuple or None) with every user mistake raised as one line."""
    from ..tasks import get_surface_task
    from ..values import parse_number_list

    resolved = get_surface_task(surface).surface
    steps = resolved.steps if steps is None else steps
    if steps < 1:  # 0 steps would print a table of start values as if it were a comparison
        raise OptbenchError(f"--steps must be >= 1, got {steps}")
    if not noise >= 0:
        raise OptbenchError(f"--noise must be >= 0, got {noise}")
    point = None
    if start is not None:
        point = tuple(parse_number_list(start, float, "--start"))
        if len(point) != resolved.dim:
            raise OptbenchError(
                f"--start needs {resolved.dim} coordinates for {resolved.name}, got {len(point)}"
            )
        if not resolved.contains(point):
            window = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in resolved.window[:2])
            raise OptbenchError(
                f"--start {start} is outside the plot window of {resolved.name} ({window}"
                f"{' ...' if resolved.dim > 2 else ''})"
            )
    return resolved, steps, point
