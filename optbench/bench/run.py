"""`bench(optimizers, suite=...)`: the tuning protocol over a suite of tasks, on the cell engine.

For each task and optimizer, three cells:
1. tuning: the protocol's studies of quasi-random trials over the shared search space
   (`protocol.quasi_random_studies`), every trial from the seed-0 start; steps to target per trial;
   one batched program (`bench.suite`);
2. seeds: each study's fastest trial (`protocol.fastest_per_study`) rerun from the starts of seeds
   0..K-1 (K = `seeds`); these rows feed the profiles and the ranking (`profiles.ranking`); one
   batched program;
3. timing: the task's winner (`timing.lone_winner`) rerun alone, one trial in one process, after every
   other cell has finished, for wall seconds (`timing.timed_rows`). Trials batched into one program
   share their time, so seconds come only from here; the profiles stay on steps.

Cells are content-keyed (the task's row, the optimizer's resolved text and origin, every trial's
hyperparameters, the seeds), so a rerun computes only unfinished cells (a finished one whose table is not
its rows, being damaged, cut or another cell's, counts as unfinished), and `jobs` changes no number
(timings aside: wall time varies from run to run, and is in no key of the other cells).
A shard (i, n) computes the cells of every n-th (task, optimizer) pair, the pairs ordered by the
content key of their tuning cell, so n runs sharing one folder (an array job) split the work
between them whatever order the optimizers were given in; a run finds every shard's finished cells.
An optimizer that raises is recorded as failed (status "failed: ..."; steps NaN), a trial whose loss
turns NaN/inf or explodes as diverged (`runners.divergence`): both count as never reaching the target.
Gradient noise of a noisy task is drawn per trial, from a generator keyed by the protocol's seed and the
trial's seed (`objectives.GradientNoise`): a trial's noise does not depend on the trials beside it, so a
study winner's seed-0 rerun repeats its tuning trial and its timing rerun repeats the rerun it times.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..budget import MAX_SEED
from ..cells import DONE, SKIPPED, CellStore, Group, Interrupted, Local, content_key, schedule
from ..errors import OptbenchError, failure
from ..experiments.result import KEY, MEASURE, TEXT, TableSchema, check_table
from ..progress import Progress
from ..runners.devices import torch_threads
from ..specs import OptimizerSpec, allowed_hyperparameters, as_spec
from ..values import format_value
from . import protocol
from .cost import require_affordable
from .networks import NetworkTask, run_network
from .suite import BenchTask, suite_tasks, task_from_dict
from .timing import TIMING_COLUMNS, lone_winner, timed_rows

KIND = "bench"
BAR = "bench"
VERSION = 4  # bump when a cell's computation changes, so old cells are not reused
STAGES = 3  # cells per task and optimizer: tuning, seeds, timing
AXES = ("lr", "momentum", "beta1", "beta2")


@dataclass(frozen=True)
class Cell:
    key: str
    label: str


@dataclass(frozen=True)
class Pending:
    """What a shard returns while other shards' cells are unfinished: `finished` of the `total`
    (task, optimizer) pairs of the whole benchmark have all their cells in `folder`."""

    shard: tuple[int, int]
    finished: int
    total: int
    folder: Path


def check_whole(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptbenchError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_shard(shard) -> tuple[int, int]:
    """(i, n) with 1 <= i <= n, whole numbers; OptbenchError otherwise."""
    try:
        index, count = (check_whole("shard", part) for part in shard)
    except (TypeError, ValueError, OptbenchError):
        index, count = 0, 0
    if not 1 <= index <= count:
        raise OptbenchError(f"shard must be (i, n) with 1 <= i <= n, got {shard}")
    return index, count


def bench_spec(
    optimizers,
    suite,
    studies,
    trials_per_study,
    seeds,
    seed,
    jobs=1,
    shard=(1, 1),
    allow_long: bool = False,
) -> tuple[dict, list, list]:
    """Check every input, the benchmark's estimated work and memory included (`cost.require_affordable`),
    before anything runs or is written (OptbenchError naming the first problem); returns (spec dict,
    specs, tasks), the tasks prepared (their data loaded). `jobs`: the processes computing cells at once."""
    if isinstance(optimizers, (str, OptimizerSpec)):
        optimizers = [optimizers]
    optimizers = list(optimizers)
    if not optimizers:
        raise OptbenchError("the benchmark needs at least one optimizer")
    # lr is the protocol's to give: a class requiring it is checked with the search's lowest value
    specs = [as_spec(o, {"lr": protocol.DEFAULT_SPACE["lr"].low}) for o in optimizers]
    for spec in specs:
        check_tunable(spec)
    check_distinct(specs)
    labels = [s.text for s in specs]
    tasks = suite_tasks(suite)
    skipped = {task.name: note for task in tasks if (note := task.unavailable())}
    tasks = [task for task in tasks if task.name not in skipped]
    if not tasks:
        raise OptbenchError(f"every task of the suite is skipped: {'; '.join(skipped.values())}")
    studies = check_whole("studies", studies)
    trials_per_study = check_whole("trials per study", trials_per_study)
    seeds = check_whole("seeds", seeds)
    seed = check_whole("seed", seed, 0)
    if seed > MAX_SEED:
        raise OptbenchError(f"seed must be at most {MAX_SEED} (a 64-bit seed), got {seed}")
    jobs = check_whole("jobs", jobs)
    shard = check_shard(shard)
    for task in tasks:
        task.prepare()  # a broken task fails here, before any write
    require_affordable(tasks, specs, studies, trials_per_study, seeds, jobs, shard, allow_long)
    spec = {
        "optimizers": labels,
        "suite": suite if isinstance(suite, str) else list(suite),
        "tasks": [t.as_dict() for t in tasks],
        "studies": studies,
        "trials_per_study": trials_per_study,
        "seeds": seeds,
        "space": {name: vars(axis) for name, axis in protocol.DEFAULT_SPACE.items()},
        "schedule": protocol.SCHEDULE,
        "skipped": skipped,
        "seed": seed,
        "version": VERSION,
    }
    return spec, specs, tasks


def check_tunable(spec: OptimizerSpec) -> None:
    """Refuse a spec the protocol cannot tune: one that fixes lr (searched for every optimizer, so a
    fixed value would be silently replaced), a class whose constructor takes no lr, or L-BFGS (several
    gradient evaluations per step). A spec may fix
    momentum or betas: they are then not searched (`protocol.searched_axes`)."""
    lr = protocol.DEFAULT_SPACE["lr"]
    if spec.family == "lbfgs":
        raise OptbenchError(
            f"'{spec.text}': the benchmark does not run lbfgs: L-BFGS takes several gradient evaluations per "
            "step (a line search through a closure), which the network tasks do not give and the profiles' "
            "unit (gradient evaluations to target) would hide; compare it on a surface (optbench compare lbfgs)"
        )
    if "lr" in spec.hparams:
        raise OptbenchError(
            f"'{spec.text}' fixes lr={format_value(spec.hparams['lr'])}, but lr is tuned by the protocol for "
            f"every optimizer (log-uniform in [{lr.low:g}, {lr.high:g}]): drop it from the spec"
        )
    names = allowed_hyperparameters(spec.algorithm)
    if "lr" in names:
        return
    name = class_path(spec).rpartition(":")[2]
    catch_all = keyword_catch_all(spec)
    if catch_all:
        raise OptbenchError(
            f"'{spec.text}': {name}'s constructor takes its settings through **{catch_all}, so optbench "
            "cannot tell whether it takes lr (the protocol tunes lr for every optimizer): name it, as in "
            f"def __init__(self, params, lr=1e-3, **{catch_all})"
        )
    raise OptbenchError(
        f"'{spec.text}': {name}'s constructor takes no lr argument "
        f"(it takes: {', '.join(names) or 'no setting'}), and the protocol tunes lr for every optimizer"
    )


def keyword_catch_all(spec: OptimizerSpec) -> str | None:
    """The name of the `**kwargs` parameter of the constructor of the class `spec` builds, if any."""
    import inspect

    try:
        parameters = inspect.signature(built_class(spec).__init__).parameters.values()
    except (TypeError, ValueError):
        return None
    return next((p.name for p in parameters if p.kind == p.VAR_KEYWORD), None)


def tuning_identity(spec: OptimizerSpec) -> tuple:
    """What decides an optimizer's numbers under the protocol, however it is spelt: the class that runs
    (module:qualified name), a wrapper's inner algorithm, the searched axes, and the settings the spec
    gives that differ from the constructor's own defaults. 'adam', 'Adam', 'optbench.optimizers:Adam'
    and 'adam:eps=1e-8' are one optimizer; 'torch:adam' (torch.optim's class) is another, and
    'adam:betas=0.9/0.999' another again (its betas are fixed, not searched)."""
    defaults = spec.algorithm.defaults()
    given = sorted(
        (name, format_value(value))
        for name, value in spec.hparams.items()
        if name not in defaults or format_value(defaults[name]) != format_value(value)
    )
    inner = getattr(spec.algorithm, "inner", "")
    return class_path(spec), inner, tuple(protocol.searched_axes(spec)), tuple(given)


def built_class(spec: OptimizerSpec):
    """The class `spec` builds (a wrapper built over its inner algorithm, a partial of a factory: the
    wrapper's class)."""
    cls = spec.cls
    while isinstance(cls, functools.partial):
        cls = next((arg for arg in cls.args if isinstance(arg, type)), cls.func)
    return cls


def class_path(spec: OptimizerSpec) -> str:
    """'module:QualifiedName' of the class `spec` builds (`built_class`)."""
    cls = built_class(spec)
    return f"{cls.__module__}:{cls.__qualname__}"


def check_distinct(specs: list[OptimizerSpec]) -> None:
    """Refuse an optimizer given twice, under one spelling or two (`tuning_identity`): the profiles and
    the ranking would count it twice."""
    seen: dict[tuple, OptimizerSpec] = {}
    for spec in specs:
        first = seen.setdefault(tuning_identity(spec), spec)
        if first is spec:
            continue
        if first.text == spec.text:
            raise OptbenchError(f"optimizer '{spec.text}' is given twice")
        raise OptbenchError(
            f"'{spec.text}' is the same optimizer as '{first.text}' ({class_path(spec)} with the same "
            "settings): the ranking would count it twice; give it once"
        )


def bench(
    optimizers,
    suite="default",
    studies: int = protocol.DEFAULT_STUDIES,
    trials_per_study: int = protocol.DEFAULT_TRIALS,
    seeds: int = 3,
    folder=None,
    jobs: int = 1,
    progress: Callable[[Progress], None] | None = None,
    seed: int = 0,
    force: bool = False,
    executor=None,
    shard: tuple[int, int] = (1, 1),
    allow_long: bool = False,
):
    """Run the benchmark; returns a `BenchResult` (saved to `folder` when given, report included).

    optimizers: names or specs ('adamw', 'momentum', 'torch:adam', 'pkg.mod:Class'); suite: 'quick',
    'default', 'full' or a list of names of `tasks.defaults` BENCH_TASKS and BENCH_NETWORKS (a task whose
    data is absent is skipped, with a note in meta's 'skipped'); studies x trials_per_study
    quasi-random trials per task and optimizer, then `seeds` seeds at each study's winner.
    folder: where cells, the tables, meta.json and report.html go; None: a temporary folder, removed
    afterwards (nothing kept).
    executor: where the tuning and seed cells run: `cells.Local(jobs)` by default, or
    `cells.Submitit(...)` (one job per cell, each a whole batched program). Timing cells run one at
    a time: in this process (local), or one job each (Submitit).
    shard: (i, n) computes only shard i of n (see the module docstring) into `folder`; it returns
    the `BenchResult` when every shard's cells are finished, else a `Pending`. Needs a folder.
    progress: gets a `Progress` on bar "bench" per cell (3 per task and optimizer of this shard).
    allow_long: run even when the work estimate (`cost`) exceeds `budget.WORK_LIMIT` coordinate-steps.
    Raises OptbenchError for bad input before anything is written (an unknown task or optimizer, one
    given twice under any spelling, a spec fixing lr, a class taking no lr, counts below 1, a benchmark
    that cannot fit in memory or, unless `allow_long`, whose work exceeds the limit); `cells.Interrupted`
    on SIGINT or SIGTERM (finished cells are kept; a rerun resumes).
    """
    import tempfile

    from .result import BenchResult

    jobs = check_whole("jobs", jobs)
    executor = executor or Local(jobs)
    at_once = executor.jobs if isinstance(executor, Local) else 1  # a cluster's jobs use its memory
    spec, specs, tasks = bench_spec(
        optimizers, suite, studies, trials_per_study, seeds, seed, at_once, shard, allow_long
    )
    shard = check_shard(shard)
    if shard != (1, 1) and folder is None:
        raise OptbenchError("a shard needs a folder that every shard writes into")
    if folder is not None:
        CellStore(folder).check(KIND, spec, seed, force)
        tables = _run(Path(folder), spec, specs, tasks, executor, progress, force, shard)
        if isinstance(tables, Pending):
            return tables
        result = BenchResult.from_run(spec, seed, tables)
        result.save(folder)
        result.write_report(folder)
        return result
    with tempfile.TemporaryDirectory(prefix="optbench-bench-") as scratch:
        return BenchResult.from_run(
            spec, seed, _run(Path(scratch), spec, specs, tasks, executor, progress, force, shard)
        )


def _run(folder, spec, specs, tasks, executor, progress, force, shard) -> dict | Pending:
    pairs = [(task, optimizer) for task in tasks for optimizer in specs]
    mine = in_shard(pairs, [_tuning_group(task, optimizer, spec).key for task, optimizer in pairs], shard)
    total = STAGES * len(mine)
    counted: dict[str, str] = {}
    labels: dict[str, str] = {}

    def report(key: str, status: str) -> None:
        if key in counted:
            return
        counted[key] = status
        if progress:
            progress(Progress(BAR, len(counted), total, f"{status.split(':')[0]}: {labels[key]}"))

    with CellStore(folder) as store:
        store.open(KIND, spec, spec["seed"], force)
        try:
            # a shard may hold no pair (more shards than pairs in an array job): it computes nothing
            tables = _stages(store, folder, mine, spec, executor, report, labels) if mine else None
        except Interrupted as stop:
            stop.total = total
            stop.finished = sum(store.finished(k) for k in labels)
            raise
        if len(mine) < len(pairs):  # the other shards' cells, read only: the tables once all are done
            done = [_stages(store, folder, [pair], spec, None, _ignore, {}) is not None for pair in pairs]
            if not all(done):
                return Pending(shard, sum(done), len(pairs), Path(folder))
            tables = _stages(store, folder, pairs, spec, None, _ignore, {})
    return {**tables, "statuses": counted}


def _ignore(key: str, status: str) -> None:
    """The report of a read-only pass over the store: nothing runs, so nothing to say."""


def in_shard(items: list, keys: list[str], shard: tuple[int, int]) -> list:
    """The items of shard (i, n): every n-th from the (i-1)-th in the order of their `keys`, so the
    n shards cover every item once, in sizes differing by at most one; returned in their own order."""
    index, count = shard
    ordered = sorted(range(len(items)), key=keys.__getitem__)
    chosen = set(ordered[index - 1 :: count])
    return [item for position, item in enumerate(items) if position in chosen]


def _stages(store, folder, pairs, spec, executor, report, labels) -> dict | None:
    """The three stages of the module docstring over `pairs`, computed through `executor`; with
    `executor` None nothing is computed, and None is returned unless every cell is finished."""
    trials = _stage(
        store,
        folder,
        [_tuning_group(task, optimizer, spec) for task, optimizer in pairs],
        executor,
        report,
        labels,
    )
    if trials is None:
        return None
    maximised = {task.name for task, _ in pairs if getattr(task, "direction", "min") == "max"}
    winners = protocol.fastest_per_study(trials, maximised=maximised)
    seed_groups = [
        _group("seeds", task, optimizer, _reruns(winners, task, optimizer, spec["seeds"]), spec)
        for task, optimizer in pairs
    ]
    reruns = _stage(store, folder, seed_groups, executor, report, labels)
    if reruns is None:
        return None
    timing_groups = [
        _group(
            "timing",
            task,
            optimizer,
            lone_winner(reruns, task.name, optimizer.text, AXES, maximised),
            spec,
        )
        for task, optimizer in pairs
    ]
    lone = Local(1) if isinstance(executor, Local) else executor  # no other cell runs beside a timing
    timings = _stage(store, folder, timing_groups, lone, report, labels, BenchJob(timed=True))
    if timings is None:
        return None
    # a timing job that died has failed rows without the timing columns: NaN there
    timings = timings.reindex(columns=list(dict.fromkeys([*timings.columns, *TIMING_COLUMNS])))
    return {"trials": trials, "winners": winners, "seeds": reruns, "timings": timings}


def _tuning_group(task: BenchTask, optimizer: OptimizerSpec, spec: dict) -> Group:
    return _group("trials", task, optimizer, _trials(optimizer, spec), spec)


def _trials(optimizer: OptimizerSpec, spec: dict) -> pd.DataFrame:
    table = protocol.quasi_random_studies(
        optimizer, studies=spec["studies"], trials=spec["trials_per_study"], seed=spec["seed"]
    )
    return table.assign(seed=0)


def _reruns(
    winners: pd.DataFrame, task: BenchTask | NetworkTask, optimizer: OptimizerSpec, seeds: int
) -> pd.DataFrame:
    mine = winners[(winners["task"] == task.name) & (winners["optimizer"] == optimizer.text)]
    columns = ["study", "trial", *[a for a in AXES if a in mine.columns and mine[a].notna().any()]]
    rows = mine[columns]
    return pd.concat([rows.assign(seed=s) for s in range(seeds)], ignore_index=True).sort_values(
        ["study", "seed"], ignore_index=True
    )


def _group(
    stage: str, task: BenchTask | NetworkTask, optimizer: OptimizerSpec, rows: pd.DataFrame, spec: dict
) -> Group:
    origin = optimizer.origin.cache_key() if optimizer.origin is not None else None
    settings = {
        "stage": stage,
        "version": VERSION,
        "task": {k: v for k, v in task.as_dict().items() if k != "reason"},
        "optimizer": optimizer.to_text(),
        "use_torch": optimizer.use_torch,
        "origin": origin,
        "rows": rows.to_dict("records"),
        "noise_seed": spec["seed"],
    }
    key = content_key(settings)
    cell = Cell(key, f"{optimizer.text} on {task.name} ({stage})")
    return Group(
        key,
        (cell,),
        {
            "stage": stage,
            "task": task.as_dict(),
            "optimizer": optimizer,
            "rows": rows,
            "noise_seed": spec["seed"],
        },
    )


def _stage(store, folder, groups, executor, report, labels, job=None) -> pd.DataFrame | None:
    """The rows of `groups`: finished ones read, the others computed through `executor` (None:
    nothing computed, and None returned if any group is unfinished)."""
    for group in groups:
        labels[group.key] = group.cells[0].label
    read: dict[str, pd.DataFrame] = {}  # the finished cells' rows, each read once
    todo = []
    for group in groups:
        finished = store.finished(group.key)
        stored = _stored_rows(store, group) if finished else None
        if stored is not None:
            read[group.key] = stored
            report(group.key, SKIPPED)
        else:
            if finished:
                store.discard(group.key)  # a damaged or foreign table under its key: computed again
            todo.append(group)
    if todo and executor is None:
        return None
    failures: dict[str, str] = {}

    def seen(key, status):
        if status.startswith("failed"):
            failures[key] = status
        report(key, status)

    if todo:
        schedule(folder, todo, job or BenchJob(), executor, seen)
    tables = []
    for group in groups:
        stored = read[group.key] if group.key in read else _stored_rows(store, group)
        if stored is not None:
            tables.append(stored)
        else:  # the job itself broke (a worker died): its rows are kept as failed
            message = failures.get(group.key, "failed: not computed")
            tables.append(_failed_rows(group.context, message.removeprefix("failed: ")))
    return pd.concat(tables, ignore_index=True)


def _stored_rows(store, group) -> pd.DataFrame | None:
    """The rows of finished cell `group`, labelled with this run's optimizer and task names (a label is
    no part of a cell's content: 'Adam' run after 'adam' with --force reads the same cell); None when the
    cell is unfinished or its table is not this cell's rows: unreadable, lacking a column, cut, holding
    other trials, or written under another key (a damaged file, another cell's table copied over it:
    two cells may hold the same trials, e.g. one optimizer's tuning on two tasks)."""
    rows = group.context["rows"]
    schema = TableSchema(
        "rows",
        {
            **dict.fromkeys(rows.columns, KEY),
            **dict.fromkeys(("optimizer", "task", "status", "mode", "cell"), TEXT),
            **dict.fromkeys(("steps", "final_metric"), MEASURE),
        },
        rows=len(rows),
    )
    path = store.table_path(group.key, "rows")
    try:
        stored = (store.read(group.key) or {}).get("rows")
        if stored is None or not set(schema.columns) <= set(stored.columns):
            return None
        check_table(path, stored, schema)
    except OptbenchError:
        return None
    same_trials = all(
        np.array_equal(stored[c].to_numpy(dtype=float), rows[c].to_numpy(dtype=float)) for c in rows.columns
    )
    if not same_trials or not stored["status"].map(lambda value: isinstance(value, str)).all():
        return None
    if not (stored["cell"] == group.key).all():  # another cell's rows, even over the same trials
        return None
    return stored.drop(columns="cell").assign(
        optimizer=group.context["optimizer"].text, task=group.context["task"]["name"]
    )


@dataclass(frozen=True)
class BenchJob:
    """Computes one bench cell (a batch of trials, or of seeded reruns; `timed`: one trial rerun
    alone and timed, `timing.timed_rows`) on one intra-op thread, and writes its rows.

    One thread for every cell, whatever --jobs and the caller's setting: a float32 network's numbers
    depend on the thread count (the language model's losses moved by 0.12 nats between 1 and 2 threads,
    benchmarks/README.md), and a cell's numbers must not depend on --jobs; the benchmark's parallelism
    is across cells (--jobs N on N cores). It is also the fastest way to share the cores: two LeNet cells
    at 2 threads each on 2 cores took 2.7x longer than at 1 thread each; a surface cell's tensors are
    tiny (logistic's [trials, 569]), so a second thread only adds a hand-off per matmul, and a lone
    timing on 2 threads measured the machine's load (a LeNet step 4 ms to 140 ms in one run)."""

    timed: bool = False

    def __call__(self, store, group, missing):
        with torch_threads(1):
            rows = timed_rows(group.context, run_rows) if self.timed else run_rows(group.context)
        store.write(group.key, {"rows": rows.assign(cell=group.key)})  # `_stored_rows` checks whose rows
        yield group.key, DONE


def run_rows(context: dict) -> pd.DataFrame:
    """The rows of one cell: its trials run as one batch under the protocol's schedule; an exception of
    the optimizer becomes status 'failed: TYPE: message' on every row (steps NaN)."""
    task = task_from_dict(context["task"])
    optimizer, rows = context["optimizer"], context["rows"]
    axes = [a for a in AXES if a in rows.columns]
    try:
        if isinstance(task, NetworkTask):
            outcome = run_network(task, optimizer, rows, axes, protocol.schedule(task.steps))
        else:
            outcome = _run_surface_task(task, optimizer, rows, axes, context["noise_seed"])
    # A user's optimizer failing is a result, never a crash, whatever it raises: SystemExit, and
    # KeyboardInterrupt too, since a real Ctrl-C never arrives here as one (the cell engine turns SIGINT
    # into cells.Interrupted in the study's process, and its worker processes ignore SIGINT).
    except (Exception, SystemExit, KeyboardInterrupt) as error:  # noqa: BLE001
        return _failed_rows(context, failure(error))
    steps, diverged = outcome["steps"], outcome["diverged"]
    status = np.where(diverged, "diverged", np.where(np.isnan(steps), "not reached", "reached"))
    return _frame(context, steps, outcome["final_metric"], status, outcome["mode"])


def _run_surface_task(task: BenchTask, optimizer: OptimizerSpec, rows, axes, noise_seed) -> dict:
    """Surface trials as one `[trials, dim]` batch; one trial at a time where the optimizer cannot take
    a searched hyperparameter as a per-trial tensor (torch.optim's classes take none; RAdam's
    rectification reads β2 as a number). The outcome as `networks.run_network` returns it, steps being
    gradient evaluations to the target and the final metric f - f* at the last step."""
    from ..runners.surface import run_surface, set_hyperparameters, takes_grid

    starts = task.starts(rows["seed"])
    # a trial's noise keyed by its seed alone: the same whichever trials run beside it, so a winner's seed
    # rerun and its timing rerun see the noise its tuning trial saw (and trials of one seed share theirs)
    keys = [[noise_seed, int(s)] for s in rows["seed"]]
    common = dict(
        noise=task.noise,
        relative_tolerance=task.tolerance,
        make_scheduler=protocol.schedule(task.steps),
    )
    if not takes_grid(optimizer, axes):
        runs = [
            run_surface(
                optimizer,
                task.surface,
                starts[i : i + 1],
                task.steps,
                noise_keys=keys[i : i + 1],
                defaults=set_hyperparameters({}, {a: float(rows[a].iloc[i]) for a in axes}),
                **common,
            )
            for i in range(len(rows))
        ]
        metrics, mode = pd.concat([r.metrics for r in runs], ignore_index=True), "per_trial"
    else:
        grid = {a: rows[a].to_numpy(dtype=float, copy=True) for a in axes}
        run = run_surface(
            optimizer, task.surface, starts, task.steps, grid=grid, defaults={}, noise_keys=keys, **common
        )
        metrics, mode = run.metrics, "per_trial" if run.per_trial else "batched"
    # gradient evaluations, the profiles' unit: a step that calls its closure again (a line search in a
    # user's class) counts each call, and a target reached after the budget's evaluations is not reached
    evaluations = metrics["evaluations_to_tolerance"].to_numpy(dtype=float)
    return {
        "steps": np.where(evaluations <= task.steps, evaluations, np.nan),
        "final_metric": metrics["final_loss"].to_numpy(dtype=float) - task.surface.minimum_value,
        "diverged": metrics["diverged"].to_numpy(dtype=bool),
        "mode": mode,
    }


def _failed_rows(context: dict, message: str) -> pd.DataFrame:
    n = len(context["rows"])
    return _frame(context, np.full(n, np.nan), np.full(n, np.nan), np.full(n, f"failed: {message}"), "")


def _frame(context, steps, final_metric, status, mode) -> pd.DataFrame:
    """final_gap: f - f* at the end on a surface task; final_metric: the target's metric at the end
    (f - f* on a surface, validation accuracy or loss on a network); mode: 'batched' (one optimizer
    over every trial) or 'per_trial' (one trial at a time: reducing or torch.optim optimizers)."""
    rows = context["rows"].reset_index(drop=True)
    surface = context["task"].get("kind", "surface") == "surface"
    return pd.DataFrame(
        {
            "optimizer": context["optimizer"].text,
            "task": context["task"]["name"],
            **{c: rows[c] for c in rows.columns},
            "steps": steps,
            "final_gap": final_metric if surface else np.full(len(rows), np.nan),
            "final_metric": final_metric,
            "status": status,
            "mode": mode,
        }
    )
