"""What a benchmark costs, estimated from its settings before anything runs or is written, and refused
past `optbench.budget`'s limits as compare, grid and sweep refuse theirs: its work over
`budget.WORK_LIMIT` unless the caller accepts it (`allow_long`, the CLI's --allow-long), and its memory
beyond what this machine has available (always).

Each (task, optimizer) pair has three cells (`run`): studies x trials tuning trials, studies x seeds
seeded reruns and one lone timing run. Their work is counted in `budget`'s coordinate-steps (one step of
one trial on one coordinate):
- a surface task of dimension d and a budget of S steps: `budget.work(S, n x d)` for n trials stepped as
  one tensor, `budget.work(S, d, runs=n)` where they step one at a time (torch.optim's classes,
  optimizers that reduce across a tensor or cannot take a searched hyperparameter per trial);
- a network task of S steps whose training step costs F floating-point operations per trial
  (`NetworkTask.model_cost`): `budget.work(S, TRIAL_STEP_COORDINATES + F / FLOPS_PER_COORDINATE,
  runs=n)`, batched or not (measured: a network cell's trials cost about the same per trial-step
  either way).

Memory: the largest cell (a surface run's tensors and trajectory as `budget.surface_run_bytes` counts
them; a network cell's stacked parameters, STATE_COPIES float64 copies per parameter and trial, one
trial at a time for the language model) in each of the processes computing cells at once, each spawned
worker's own (`budget.WORKER_BYTES`), and the tables' rows (`budget.PYTHON_ROW` each). A shard (i, n)
computes ceil(P / n) of the P pairs: it is estimated by the costliest ceil(P / n), an upper bound.
"""

from __future__ import annotations

import functools

from ..budget import (
    FLOAT,
    PYTHON_ROW,
    STATE_COPIES,
    STEP_COORDINATES,
    WORKER_BYTES,
    require_memory,
    require_total_work,
    work,
)
from . import protocol
from .networks import NetworkTask

# A network's trial-step in coordinate-steps (~10 µs each on the 2-core development VM): a fixed part,
# the batched trainer's own per-trial work, plus its floating-point operations at FLOPS_PER_COORDINATE.
# Fitted to tuning cells measured there under a load average of about 10 (sgd; 25 trials, Fashion-MNIST
# 5), in ms per trial-step, validation passes included, then the estimate: digits-mlp (6.5 MFLOP per
# step) 3.6 -> 2.8, digits-lenet (25.6 MFLOP) 5.3 -> 3.8, mnist1d-mlp (5.4 MFLOP) 1.6 -> 2.8,
# fashion-mnist-mlp (83.9 MFLOP) 5.6 -> 6.7: within a factor 1.7 either way, and on an idle machine
# the measured times are lower. (lamb, one trial at a time: within 12% of batched on digits-mlp.)
TRIAL_STEP_COORDINATES = 250 - STEP_COORDINATES  # `budget.work` adds STEP_COORDINATES per trial-step
FLOPS_PER_COORDINATE = 200_000  # 20 GFLOP/s


@functools.cache
def _model_cost(task: NetworkTask) -> tuple[int, int]:
    return task.model_cost()  # once per task, not once per optimizer


def pair_cost(task, optimizer, cells: tuple[int, ...]) -> tuple[int, float]:
    """(work in coordinate-steps, bytes of its largest cell) of one (task, optimizer) pair whose cells
    run `cells` trials each (see the module docstring)."""
    if isinstance(task, NetworkTask):
        parameters, flops = _model_cost(task)
        coordinates = TRIAL_STEP_COORDINATES + -(-flops // FLOPS_PER_COORDINATE)
        together = 1 if task.data == "shakespeare" else max(cells)  # the language model: one trial at a time
        return (
            sum(work(task.steps, coordinates, runs=n) for n in cells),
            together * parameters * STATE_COPIES * FLOAT,
        )
    from ..experiments.inputs import surface_memory
    from ..runners.surface import takes_grid

    # one at a time where the bench cannot pass the trials as a grid, or the runner steps a grid's
    # trials one by one (an optimizer that reduces across a tensor)
    alone = (
        not takes_grid(optimizer, protocol.searched_axes(optimizer)) or not optimizer.algorithm.elementwise
    )
    dim, steps = task.surface.dim, task.steps
    total = sum(work(steps, dim, runs=n) if alone else work(steps, n * dim) for n in cells)
    return total, surface_memory(task.surface, max(cells), steps)


def require_affordable(
    tasks,
    specs,
    studies: int,
    trials_per_study: int,
    seeds: int,
    jobs: int = 1,
    shard: tuple[int, int] = (1, 1),
    allow_long: bool = False,
) -> None:
    """Refuse (OptbenchError naming the settings, the estimate and the limit) a benchmark that cannot
    fit in memory, or whose work exceeds `budget.WORK_LIMIT` unless `allow_long`. Reads nothing from
    disk beyond the tasks' data, writes nothing; cheap whatever the settings (no trial is drawn)."""
    cells = (studies * trials_per_study, studies * seeds, 1)  # tuning, seeds, timing
    costs = [pair_cost(task, optimizer, cells) for task in tasks for optimizer in specs]
    mine = -(-len(costs) // shard[1])
    what = (
        f"the benchmark of {len(specs)} optimizer(s) x {len(tasks)} task(s) with {studies:,} "
        f"study(ies) x {trials_per_study:,} trial(s) and {seeds:,} seed(s)"
        + (f" (shard {shard[0]}/{shard[1]})" if shard[1] > 1 else "")
    )
    workers = min(jobs, mine)
    rows = len(costs) * sum(cells)
    memory = rows * PYTHON_ROW + workers * max(size for _, size in costs)
    if workers > 1:
        memory += workers * WORKER_BYTES
    require_memory(what + (f" in {workers} processes" if workers > 1 else ""), memory)
    require_total_work(what, sum(sorted((w for w, _ in costs), reverse=True)[:mine]), allow_long)
