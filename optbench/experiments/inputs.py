"""What every experiment accepts: a spec or its text, a surface or its name, checked once."""

from __future__ import annotations

import math

import torch

from ..budget import MAX_SEED, check_count, finite, require_memory, require_work, surface_run_bytes
from ..errors import OptbenchError
from ..objectives import Surface
from ..runners.surface import BETA_AXES, MAX_RECORDED_POINTS, set_hyperparameters
from ..specs import OptimizerSpec, parse_optimizer
from ..tasks import get_surface_task
from ..values import hyperparameter_kind


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
    """The surface itself, or the one a registered surface task names ('elliptic', 'surface:elliptic',
    'quadratic:dim=20'); unknown names are user errors listing the valid ones."""
    return surface if isinstance(surface, Surface) else get_surface_task(surface).surface


def check_start(surface: Surface, start) -> tuple | None:
    """`start` as a tuple of floats, or None for the surface's own; raises OptbenchError if it does not fit."""
    if start is None:
        return None
    point = tuple(float(value) for value in start)
    if len(point) != surface.dim:
        raise OptbenchError(f"start needs {surface.dim} coordinates for {surface.name}, got {len(point)}")
    return point


def check_run_settings(surface: Surface, steps, seed, noise=0.0, clip_grad_norm=None) -> int:
    """Steps (None: the surface's), seed, noise and clipping checked the same way for every surface
    experiment; returns the steps. Raises OptbenchError naming the setting and the value."""
    steps = surface.steps if steps is None else check_count("steps", steps, 1)
    check_seed(seed)
    finite("noise", noise, 0.0)
    if clip_grad_norm is not None:
        finite("gradient clipping norm", clip_grad_norm, 0.0, strict=True)
    return steps


def check_seed(seed) -> int:
    check_count("seed", seed)
    if seed > MAX_SEED:
        raise OptbenchError(f"seed must be at most {MAX_SEED} (a 64-bit seed), got {seed}")
    return seed


def surface_memory(surface: Surface, trials: int, steps: int) -> float:
    """The bytes of one surface run of `trials` x `surface.dim` for `steps` steps, its recorded
    trajectory capped as `run_surface` caps it."""
    recorded = min(trials * (steps + 1), max(MAX_RECORDED_POINTS, 2 * trials))
    return surface_run_bytes(trials, surface.dim, recorded)


def require_surface_memory(what: str, surface: Surface, trials: int, steps: int, runs: int = 1) -> None:
    """Refuse `runs` surface runs of `trials` x `surface.dim` for `steps` steps that cannot fit in memory."""
    require_memory(what, runs * surface_memory(surface, trials, steps))


def require_surface_budget(
    what: str, surface: Surface, trials: int, steps: int, runs: int = 1, allow_long: bool = False
) -> None:
    """`require_surface_memory`, then the work (`budget.require_work`) of the same runs."""
    require_surface_memory(what, surface, trials, steps, runs)
    require_work(what, steps, trials * surface.dim, runs, allow_long)


def check_axes_not_in_spec(spec: OptimizerSpec, axes) -> None:
    """Refuse a grid axis that the spec also sets ('sgd:lr=0.1' with --lr): the axis would override it."""
    for name in axes:
        given = "betas" if name in BETA_AXES else name
        if given in spec.hparams:
            raise OptbenchError(
                f"grid axis '{name}' would override {given} given in '{spec.text}': "
                "give it in the spec or as an axis, not both"
            )


def check_axis(spec: OptimizerSpec, name: str, values, what: str = "grid") -> None:
    """A grid or tuning axis holds real numbers that the optimizer accepts: refuse counts, flags and choices
    (a grid passes each value as a float tensor) and values torch's own checks reject, naming the value."""
    resolved = spec.resolved()
    betas = resolved.get("betas", (0.9, 0.999))
    default = betas[name == "beta2"] if name in BETA_AXES else resolved.get(name)
    if name not in resolved and name not in BETA_AXES:
        return  # not a hyperparameter of this algorithm: run_surface names the valid axes
    kind = hyperparameter_kind(name, default)
    if kind != "number":
        raise OptbenchError(
            f"{what} axis '{name}' of {spec.family} is not a real number ({kind}): "
            f"a {what} varies real-valued hyperparameters such as lr"
        )
    for value in (min(values), max(values)):
        if not math.isfinite(value):
            raise OptbenchError(f"{what} axis {name}: {value} is not a finite number")
        try:
            setting = set_hyperparameters({}, {name: float(value)}, betas)
            spec.build([torch.zeros(2, 2, requires_grad=True)], **setting)
        except OptbenchError as error:
            raise OptbenchError(f"{what} axis {name}={value:g}: {error}") from None
        except Exception:
            if spec.origin is None:
                raise
            return  # a user's class whose constructor raises fails its own run, which records why
