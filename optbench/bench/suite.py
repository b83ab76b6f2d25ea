"""The benchmark's tasks, from the rows of `tasks.defaults`: BENCH_TASKS, each a problem of points (an
analytic surface, or logistic regression seen as one) with a budget of steps and a target; and
BENCH_NETWORKS, small networks on real data trained through the batched trainer (`bench.networks`).

Every surface task runs through the surface runner (`runners.surface.run_surface`): all trials of one
optimizer on one task are one `[trials, dim]` tensor stepped by one optimizer with per-trial
hyperparameters. A trial reaches the target at the first step where
f - f* <= tolerance * (f(start) - f*); its steps to target are that step (gradient evaluations).

A seed moves the start: start + 0.01 * (window width) * N(0, 1) per coordinate, drawn from a
generator seeded with the seed, and seeds the gradient noise of a noisy task.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import torch

from ..errors import OptbenchError
from ..objectives import Surface, get_surface
from ..tasks.defaults import BENCH_NETWORKS, BENCH_SUITES, BENCH_TASKS
from ..tasks.names import bench_task_names, check_bench_task
from .networks import NetworkTask

START_JITTER = 0.01  # of the window's width per coordinate: seeds differ, the problem stays the same


@dataclass(frozen=True)
class BenchTask:
    """One task of the benchmark: `problem` ('elliptic', 'quadratic:...', 'logistic'), `steps` (the
    budget, gradient evaluations per trial), `tolerance` (relative target), `noise` (σ of the
    Gaussian added to every gradient coordinate) and the `reason` for these numbers."""

    name: str
    problem: str
    steps: int
    tolerance: float
    noise: float
    reason: str
    kind: str = "surface"

    def __post_init__(self):
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise OptbenchError(f"task '{self.name}': the budget must be at least 1 step, got {self.steps}")
        if not 0 < self.tolerance < 1:
            raise OptbenchError(f"task '{self.name}': tolerance must be in (0, 1), got {self.tolerance}")
        if not self.noise >= 0:
            raise OptbenchError(f"task '{self.name}': noise must be >= 0, got {self.noise}")

    def unavailable(self) -> str | None:
        return None  # surfaces need nothing beyond optbench's own dependencies

    def prepare(self) -> None:
        """Builds the problem now, so a broken task fails before any write."""
        self.surface  # noqa: B018

    @cached_property
    def surface(self) -> Surface:
        return logistic_surface() if self.problem == "logistic" else get_surface(self.problem)

    def starts(self, seeds) -> torch.Tensor:
        """One start per seed, `[len(seeds), dim]` float64 (see the module docstring)."""
        surface = self.surface
        start = torch.tensor(surface.start, dtype=torch.float64)
        width = torch.tensor([high - low for low, high in surface.window], dtype=torch.float64)
        rows = []
        for seed in seeds:
            generator = torch.Generator().manual_seed(int(seed))
            noise = torch.randn(surface.dim, generator=generator, dtype=torch.float64)
            rows.append(start + START_JITTER * width * noise)
        return torch.stack(rows)

    def one_step(self) -> BenchTask:
        """The same task with a budget of one step: the timing's warm-up run."""
        return replace(self, steps=1)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "problem": self.problem,
            "steps": self.steps,
            "tolerance": self.tolerance,
            "noise": self.noise,
            "reason": self.reason,
            "kind": self.kind,
        }


def logistic_surface() -> Surface:
    """Logistic regression on breast cancer (`tasks.logistic`, C = 1) as a surface of θ `[31]`:
    start θ = 0, minimum f* (Newton's), window ±1 per coordinate (the scale of the start's jitter)."""
    from ..tasks.logistic import logistic_regression

    task = logistic_regression(1.0)
    return Surface(
        "logistic",
        "(1/n) Σ log(1 + exp(z)) - y z + (λ/2)‖w‖²",
        task.evaluate,
        minima=(tuple(task.theta_star.tolist()),),
        start=(0.0,) * task.dim,
        window=((-1.0, 1.0),) * task.dim,
        minimum_value=task.f_star,
        log_contours=False,
        note="L2-regularised logistic regression, breast cancer, C = 1",
    )


def get_bench_task(name: str) -> BenchTask | NetworkTask:
    """The task of that name (a row of BENCH_TASKS or BENCH_NETWORKS); unknown names list the valid ones."""
    check_bench_task(name)
    if name in BENCH_NETWORKS:
        return NetworkTask(name, *BENCH_NETWORKS[name])
    problem, steps, tolerance, noise, reason = BENCH_TASKS[name]
    return BenchTask(name, problem, steps, tolerance, noise, reason)


def task_from_dict(row: dict) -> BenchTask | NetworkTask:
    """The task an `as_dict()` describes (a cell's context)."""
    return (NetworkTask if row.get("kind") == "network" else BenchTask)(**row)


def suite_tasks(suite) -> list[BenchTask]:
    """A suite's tasks: a suite name ('quick', 'default', 'full') or a list of task names. Raises
    OptbenchError for an unknown suite or task, or an empty one."""
    return [get_bench_task(name) for name in bench_task_names(suite)]


def describe():
    """(title, columns, rows) for `optbench list`: every benchmark task, its suites, budget and target,
    and why it would be skipped here."""
    rows = []
    for name in [*BENCH_TASKS, *BENCH_NETWORKS]:
        task = get_bench_task(name)
        suites = ", ".join(suite for suite, names in BENCH_SUITES.items() if name in names) or "-"
        if isinstance(task, NetworkTask):
            what = f"{task.model} on {task.data}, batch {task.batch_size}"
            target = f"{task.metric} {'>=' if task.direction == 'max' else '<='} {task.target:g}"
        else:
            what = f"{task.problem}" + (f", gradient noise σ = {task.noise:g}" if task.noise else "")
            target = f"f - f* <= {task.tolerance:g} (f(start) - f*)"
        rows.append((name, suites, what, str(task.steps), target, task.unavailable() or "ready"))
    return "benchmark tasks (optbench bench)", ("name", "suites", "problem", "steps", "target", "here"), rows
