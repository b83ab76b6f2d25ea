"""Batched trajectories on analytic surfaces: thousands of runs as one tensor, one optimizer.

Every trial of one optimizer configuration (many starts, or a grid of hyperparameters) lives in
one `[trials, dim]` tensor stepped by ONE optimizer built with `OptimizerSpec.build`. A grid is
passed as per-trial hyperparameters, which become `[trials, 1]` tensors broadcast against the
parameter, so an lr × momentum grid of 4096 cells is a single tensor program. That is exact for
element-wise algorithms only: LBFGS, Muon and Adafactor reduce across a tensor (`elementwise=False`
in the registry), so for them each trial gets its own parameter and optimizer, stepped in a loop
(slower; `per_trial` is True in the result). A class from outside optbench is run per trial unless
it declares `elementwise = True`.

What is recorded
- `trajectory`: one row per (trial, recorded step): optimizer, settings, hyperparameters, trial,
  step, coordinates (`x`, `y` on 2-D surfaces, `x0..x{n-1}` beyond), loss, grad_norm (of the exact
  gradient at that point), diverged. Step 0 is the start. When trials × (steps + 1) exceeds
  `MAX_RECORDED_POINTS`, only every k-th step is kept (k is the smallest stride that fits, stored
  as `record_every`); the last step is always kept. Metrics are computed from every step regardless.
  For an optimizer with a train/eval switch (Schedule-Free), the recorded point is the one its
  `eval()` sets, the averaged iterate x it is evaluated and saved at, while gradients are taken at
  its training point y; the switch is undone exactly, so recording changes no step.
- `metrics`: one row per trial: final loss, distance to the nearest minimum, steps until
  f - f_min first falls below the surface's tolerance, path length (sum of step lengths; NaN for a
  diverged run), and the step at which the run diverged (`runners.divergence`: f - f_min NaN/inf at some
  step, or at the end beyond 10 (f(start) - f_min + 1); diverged from the first step of its final stretch
  above f(start); a transient excursion it came back from is not divergence; on surfaces unbounded
  below (saddles), only NaN/inf counts).

Default hyperparameters come from the surface's task (`tasks.surface_task(surface).default_hparams`),
per surface and per optimizer, chosen so each optimizer is near its best plain setting on that surface
(the tables and their reasons are in `tasks.defaults`); anything in a spec overrides them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch

from ..errors import OptbenchError
from ..objectives import GradientNoise, Surface
from ..optimizers import PerTrialSchedule
from ..specs import OptimizerSpec
from ..tasks.registry import surface_task
from .eval_mode import evaluation_mode, has_eval_mode
from .recorder import RELATIVE_TOLERANCE, Recorder

MAX_RECORDED_POINTS = 250_000  # trial-steps kept in the trajectory table before striding
PROGRESS_EVERY = 1000  # steps between progress reports (a report costs a function call)


@dataclass
class SurfaceRun:
    trajectory: pd.DataFrame
    metrics: pd.DataFrame
    record_every: int
    per_trial: bool


def random_starts(surface: Surface, trials: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """`trials` starts uniform in the middle half of the plot window (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    low = torch.tensor([lo + (hi - lo) / 4 for lo, hi in surface.window], dtype=dtype)
    high = torch.tensor([hi - (hi - lo) / 4 for lo, hi in surface.window], dtype=dtype)
    return low + (high - low) * torch.rand(trials, surface.dim, generator=generator, dtype=dtype)


def fixed_starts(surface: Surface, point=None, trials: int = 1, dtype=torch.float64) -> torch.Tensor:
    """`trials` copies of `point` (the surface's start when None), as a [trials, dim] tensor."""
    return torch.tensor([point if point is not None else surface.start] * trials, dtype=dtype)


def run_surface(
    spec: OptimizerSpec,
    surface: Surface,
    starts: torch.Tensor,
    steps: int,
    *,
    grid: dict | None = None,
    noise: float = 0.0,
    seed: int = 0,
    noise_keys: list | None = None,
    defaults: dict | None = None,
    record_every: int | None = None,
    clip_grad_norm: float | None = None,
    device: str = "cpu",
    relative_tolerance: float = RELATIVE_TOLERANCE,
    dtype=torch.float64,
    progress: Callable[[int], None] | None = None,
    make_scheduler: Callable | None = None,
) -> SurfaceRun:
    """Run `spec` from every row of `starts` for `steps` steps; returns trajectory and metrics tables.

    grid: hyperparameter name -> one value per trial (`beta1`/`beta2` address `betas`).
    noise: σ of the gradient noise (`objectives.GradientNoise`); each trial's drawn from its own generator,
    keyed by its entry of `noise_keys` (default: [seed, its row index]), so it does not depend on the
    other trials of the batch.
    defaults: settings under the spec's (None: the surface task's `default_hparams(spec)`).
    clip_grad_norm: None (the default) never touches a gradient; a number rescales each trial's gradient
    to at most that norm, as `torch.nn.utils.clip_grad_norm_` would, and is recorded as a column.
    device: where the optimizer steps ('cuda' for a reproducibility check); tables are always on the CPU.
    relative_tolerance: a trial has converged once f - f_min <= relative_tolerance (f(its start) - f_min).
    progress: called with the number of steps taken, every `PROGRESS_EVERY` steps and at the end.
    make_scheduler: builds a torch.optim.lr_scheduler for one optimizer, stepped after every step of
    every trial (per trial through `PerTrialSchedule` when trials share one optimizer); None: constant.
    Raises OptbenchError for steps < 0, a clipping norm or relative tolerance <= 0, a grid of the wrong size.
    """
    if steps < 0:
        raise OptbenchError(f"steps must be >= 0, got {steps}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise OptbenchError(f"gradient clipping norm must be > 0, got {clip_grad_norm}")
    check_relative_tolerance(relative_tolerance)
    starts = torch.as_tensor(starts, dtype=dtype).reshape(-1, surface.dim).clone().to(device)
    trials = starts.shape[0]
    grid = {
        name: torch.as_tensor(values, dtype=dtype).reshape(-1).to(device)
        for name, values in (grid or {}).items()
    }
    for name, values in grid.items():
        if values.numel() != trials:
            raise OptbenchError(f"grid '{name}' has {values.numel()} values for {trials} trials")
    defaults = surface_task(surface).default_hparams(spec) if defaults is None else defaults
    if record_every is None:
        record_every = max(1, math.ceil(trials * (steps + 1) / MAX_RECORDED_POINTS))
    _check_grid(spec, grid)
    keys = [[seed, i] for i in range(trials)] if noise_keys is None else list(noise_keys)
    if len(keys) != trials:
        raise OptbenchError(f"{len(keys)} noise keys for {trials} trials")
    gradient_noise = GradientNoise(noise, keys)

    def evaluate_rows(points, rows):
        value, gradient = surface.evaluate(points)
        return value, clip_rows(gradient_noise.add(gradient, rows), clip_grad_norm)

    per_trial = not spec.algorithm.elementwise
    stepper = (PerTrialStepper if per_trial else BatchedStepper)(spec, starts, grid, defaults, evaluate_rows)
    stepper.schedule(make_scheduler)
    recorder = Recorder(surface, trials, steps, record_every, dtype, relative_tolerance)
    on_cpu = torch.device(device).type == "cpu"
    for t in range(steps + 1):
        points = stepper.points()
        value, gradient = surface.evaluate(points)
        seen = stepper.evaluation_points()
        seen_value, seen_gradient = (value, gradient) if seen is None else surface.evaluate(seen)
        seen = points if seen is None else seen
        if on_cpu:
            recorder.observe(t, seen, seen_value, seen_gradient)
        else:
            recorder.observe(t, seen.cpu(), seen_value.cpu(), seen_gradient.cpu())
        if t < steps:
            stepper.step(clip_rows(gradient_noise.add(gradient), clip_grad_norm))
        if progress is not None and (t % PROGRESS_EVERY == 0 or t == steps):
            progress(t)
    hparams = _hparam_columns(spec, defaults, {n: v.cpu() for n, v in grid.items()}, trials)
    if clip_grad_norm is not None:
        hparams["clip_grad_norm"] = float(clip_grad_norm)
    label = {
        "optimizer": spec.name,
        "family": spec.family,
        "settings": settings(spec, defaults, grid)
        + (f", clip_grad_norm={clip_grad_norm:g}" if clip_grad_norm is not None else ""),
    }
    return SurfaceRun(
        *recorder.tables(label, hparams, surface, stepper.evaluations()), record_every, per_trial
    )


def check_relative_tolerance(value: float) -> None:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise OptbenchError(f"relative tolerance must be between 0 and 1 (e.g. 1e-6), got {value}")


# --- gradient clipping: only when asked, per trial ---------------------------------------------


def clip_rows(gradient: torch.Tensor, max_norm: float | None) -> torch.Tensor:
    """Each trial's gradient rescaled to norm <= max_norm (torch's clip_grad_norm_ rule); None: untouched."""
    if max_norm is None:
        return gradient
    norm = gradient.norm(dim=1, keepdim=True)
    return gradient * torch.clamp(max_norm / (norm + 1e-6), max=1.0)


# --- stepping: one optimizer for the batch, or one per trial ------------------------------------

BETA_AXES = ("beta1", "beta2")  # grids and tuning may vary one coefficient of `betas` at a time


def with_beta_axes(names) -> set:
    """Hyperparameter names, plus beta1/beta2 where `betas` is one of them."""
    names = set(names)
    return names | set(BETA_AXES) if "betas" in names else names


def set_hyperparameters(hparams: dict, values: dict, betas=(0.9, 0.999)) -> dict:
    """`hparams` with `values` set; beta1/beta2 replace one coefficient of `betas` (default `betas`)."""
    hparams = dict(hparams)
    for name, value in values.items():
        if name in BETA_AXES:
            pair = list(hparams.get("betas", betas))
            pair[name == "beta2"] = value
            if any(isinstance(β, torch.Tensor) for β in pair):
                # torch.optim.Adam takes betas as both floats or both tensors; float64 keeps the number
                pair = [
                    β if isinstance(β, torch.Tensor) else torch.tensor(float(β), dtype=torch.float64)
                    for β in pair
                ]
            hparams["betas"] = tuple(pair)
        else:
            hparams[name] = value
    return hparams


def _with_grid(hparams: dict, grid: dict, index=None) -> dict:
    """Put grid values into the optimizer's keyword arguments: a [trials, 1] tensor, or trial `index`."""
    return set_hyperparameters(
        hparams,
        {name: values[:, None] if index is None else float(values[index]) for name, values in grid.items()},
    )


def at_evaluation_point(optimizer: torch.optim.Optimizer, parameters: list) -> list | None:
    """Copies of `parameters` where `optimizer.eval()` puts them (Schedule-Free's averaged iterate);
    None for optimizers without the switch (see `eval_mode`)."""
    if not has_eval_mode(optimizer):
        return None
    with evaluation_mode(optimizer), torch.no_grad():
        return [p.clone() for p in parameters]


class BatchedStepper:
    """All trials as one leaf tensor [trials, dim], stepped by one optimizer."""

    def __init__(self, spec, starts, grid, defaults, evaluate):
        self.theta = starts.clone()
        if grid and spec.use_torch:
            raise OptbenchError(
                "a grid passes hyperparameters as tensors, which torch.optim does not "
                f"accept; run '{spec.text.partition(':')[2]}' (ours) instead"
            )
        self.optimizer = spec.build([self.theta], defaults, **_with_grid({}, grid))
        _train_mode(self.optimizer)
        self.sparse = spec.algorithm.sparse_grad
        self.scheduler = None

    def schedule(self, make_scheduler) -> None:
        if make_scheduler is not None:
            self.scheduler = PerTrialSchedule(self.optimizer, make_scheduler)

    def points(self):
        return self.theta

    def evaluation_points(self):
        evaluated = at_evaluation_point(self.optimizer, [self.theta])
        return None if evaluated is None else evaluated[0]

    def step(self, gradient):
        self.theta.grad = gradient.to_sparse() if self.sparse else gradient
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()

    def evaluations(self):
        return None  # one gradient per step


class PerTrialStepper:
    """One parameter and one optimizer per trial, for algorithms that reduce across a tensor."""

    def __init__(self, spec, starts, grid, defaults, evaluate):
        matrix = spec.family == "muon"  # Muon orthogonalises 2-D parameters: each trial is [1, dim]
        self.evaluate = evaluate
        self.thetas = [row.clone().reshape(1, -1) if matrix else row.clone() for row in starts]
        self.optimizers = [
            spec.build([theta], defaults, **_with_grid({}, grid, i)) for i, theta in enumerate(self.thetas)
        ]
        for optimizer in self.optimizers:
            _train_mode(optimizer)
        self.counts = [[0] * len(self.thetas)]  # cumulative gradient evaluations per trial, after each step
        self.schedulers = []

    def schedule(self, make_scheduler) -> None:
        if make_scheduler is not None:
            self.schedulers = [make_scheduler(optimizer) for optimizer in self.optimizers]

    def points(self):
        return torch.stack([theta.reshape(-1) for theta in self.thetas])

    def evaluation_points(self):
        evaluated = [
            at_evaluation_point(optimizer, [theta])
            for optimizer, theta in zip(self.optimizers, self.thetas, strict=True)
        ]
        if evaluated[0] is None:
            return None
        return torch.stack([points[0].reshape(-1) for points in evaluated])

    def step(self, gradient):
        counts = list(self.counts[-1])
        for i, (theta, optimizer, g) in enumerate(zip(self.thetas, self.optimizers, gradient, strict=True)):
            calls = [0]

            def closure(theta=theta, calls=calls, i=i):  # LBFGS re-evaluates during its line search
                calls[0] += 1
                value, grad = self.evaluate(theta.reshape(1, -1), [i])
                theta.grad = grad.reshape(theta.shape)
                return float(value[0])

            theta.grad = g.reshape(theta.shape).clone()
            optimizer.step(closure)
            # the first closure call re-evaluates the step's own point: at least one gradient per step
            counts[i] += max(1, calls[0])
        for scheduler in self.schedulers:
            scheduler.step()
        self.counts.append(counts)

    def evaluations(self):
        return self.counts


def _train_mode(optimizer) -> None:
    """Schedule-free optimizers take gradients in train mode (`.train()`), as their authors' loop does."""
    if hasattr(optimizer, "train") and callable(optimizer.train):
        optimizer.train()


def _hparam_columns(spec: OptimizerSpec, defaults: dict, grid: dict, trials: int) -> dict:
    """Numeric hyperparameters as table columns: floats, or per-trial tensors for grid axes."""
    resolved = spec.resolved(defaults)
    columns = {}
    for name, value in resolved.items():
        if isinstance(value, tuple):
            names = ("beta1", "beta2") if name == "betas" else [f"{name}{i}" for i in range(len(value))]
            for sub, item in zip(names, value, strict=False):
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    columns[sub] = float(item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            columns[name] = float(value)
    for name, values in grid.items():
        columns[name] = values
    return columns


def settings(spec: OptimizerSpec, defaults: dict, grid: dict) -> str:
    """'lr=0.09, momentum=0.9': the settings that differ from the class defaults, for legends."""
    class_defaults = spec.algorithm.defaults()
    shown = []
    for name, value in spec.resolved(defaults).items():
        if name in class_defaults and class_defaults[name] == value:
            continue
        shown.append(f"{name}={'/'.join(map(str, value)) if isinstance(value, tuple) else _short(value)}")
    return ", ".join(shown + [f"{name}=grid" for name in grid])


def _short(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def grid_axes(spec: OptimizerSpec) -> set:
    """The hyperparameters a grid may vary for `spec`: those its algorithm accepts as per-trial tensors
    (any of its settings where it steps one trial at a time), with beta1/beta2 for betas."""
    return with_beta_axes(spec.algorithm.tensor_hparams if spec.algorithm.elementwise else spec.resolved())


def takes_grid(spec: OptimizerSpec, axes) -> bool:
    """Whether `run_surface` can step trials of `spec` that differ in `axes` as one run (`grid=`):
    torch.optim's classes take no per-trial setting, and every axis must be a `grid_axes` one."""
    return not spec.use_torch and set(axes) <= grid_axes(spec)


def _check_grid(spec: OptimizerSpec, grid: dict) -> None:
    """Only hyperparameters the algorithm accepts as tensors can be grid axes (any, per trial)."""
    allowed = grid_axes(spec)
    for name in grid:
        if name not in allowed:
            raise OptbenchError(
                f"{spec.family} cannot vary '{name}' in a grid "
                f"(valid: {', '.join(sorted(allowed)) or 'none'})"
            )
