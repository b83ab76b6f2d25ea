"""What every experiment accepts: a spec or its text, a surface or its name, checked once."""

from __future__ import annotations

from ..errors import OptbenchError
from ..objectives import Surface, get_surface
from ..specs import OptimizerSpec, parse_optimizer


def as_spec(optimizer: OptimizerSpec | str) -> OptimizerSpec:
    return optimizer if isinstance(optimizer, OptimizerSpec) else parse_optimizer(optimizer)


def as_specs(optimizers) -> list[OptimizerSpec]:
    """Parsed specs with distinct labels; raises OptbenchError for an empty list or a repeated label."""
    if isinstance(optimizers, (str, OptimizerSpec)):
        optimizers = [optimizers]
    specs = [as_spec(optimizer) for optimizer in optimizers]
    if not specs:
        raise OptbenchError("no optimizer given")
    labels = [spec.name for spec in specs]
    if len(set(labels)) != len(labels):
        raise OptbenchError("each optimizer may be given once (add a setting to tell two apart)")
    return specs


def as_surface(surface: Surface | str) -> Surface:
    return surface if isinstance(surface, Surface) else get_surface(surface)


def check_start(surface: Surface, start) -> tuple | None:
    """`start` as a tuple of floats, or None for the surface's own; raises OptbenchError if it does not fit."""
    if start is None:
        return None
    point = tuple(float(value) for value in start)
    if len(point) != surface.dim:
        raise OptbenchError(f"start needs {surface.dim} coordinates for {surface.name}, got {len(point)}")
    return point
