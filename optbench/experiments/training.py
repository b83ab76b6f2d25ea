"""`optbench.train(...)`: train with one or more optimizers on one task; tidy tables back.

    result = train(["sgd", "adam:lr=1e-3"], task="digits", model="lenet", epochs=10)
    result.epochs, result.summary     # DataFrames (classification)
    result.save("results/digits")     # tables and meta.json, as `optbench train --out` writes them
    result.plot()                     # {"training": Figure}

Classification tasks train a model (`runners/training.py`, data-parallel with `nproc` > 1 or under
torchrun); `scalar` and `linreg` (alias `regression`) are the hand-checkable regression problems
(`runners/regression.py`). Every check runs before the first run starts. With `out`, each
optimizer's run is stored as a cell as soon as it finishes, and a rerun of the same spec into the
same folder skips the runs already there; another spec is refused unless `force`. With `seeds` K > 1,
each optimizer runs with seeds seed, seed + 1, ..., seed + K - 1 (every table's `seed` column tells
them apart) and the figures draw the mean over seeds with its 95% Student-t band (`optbench.seeds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..budget import check_count, require_rows
from ..cells import CellStore, content_key
from ..errors import OptbenchError, check_some_finished, recorded_failure
from ..progress import Progress
from ..results import output_folder, read_metadata
from ..runners.devices import torch_threads
from ..runners.distributed import launch, process_group, started_by_torchrun
from ..runners.training import TrainResult, TrainSpec, check
from ..runners.training import train as train_one
from ..runners.training_loop import epoch_progress
from ..specs import OptimizerSpec, as_spec
from ..tasks import TaskKind, get_task
from ..tasks import defaults as D
from .inputs import check_seed
from .result import (
    CURVE,
    FLAG,
    KEY,
    MEASURE,
    TEXT,
    Result,
    TableSchema,
    read_tables,
    require_spec,
    require_tables,
)

CLASSIFICATION_TABLES = ("steps", "epochs", "summary", "evaluations")
TABLE_COLUMNS = {  # the tables a training results folder may hold -> their columns `load` checks
    "steps": {"optimizer": TEXT, "epoch": KEY, "step": KEY, "loss": CURVE},
    # + accuracy or bpc: the figures check
    "epochs": {"optimizer": TEXT, "family": TEXT, "epoch": KEY, "val_loss": MEASURE, "diverged": FLAG},
    "summary": {"optimizer": TEXT},
    "evaluations": {"optimizer": TEXT},
    "regression": {
        "optimizer": TEXT,
        "family": TEXT,
        "step": KEY,
        "suboptimality": CURVE,
        "diverged": FLAG,
    },
    "trace": {"optimizer": TEXT, "family": TEXT, "a": MEASURE, "a_next": MEASURE},
}


@dataclass(repr=False)
class TrainingResult(Result):
    """What `train` returns: the tidy tables of every run, the resolved spec (`meta`), the seed.

    Classification fills `steps`, `epochs`, `summary` and `evaluations` (one row per step, epoch, run,
    evaluation); linreg fills `regression`; scalar fills `trace`; the others stay None. runs: each
    classification run computed now (final weights in `state_dict`; not saved), by optimizer name, or
    by 'name seed=S' when several seeds ran. Every table but `trace` has a `seed` column.
    """

    kind = "train"
    task: str
    meta: dict
    seed: int
    steps: pd.DataFrame | None = None
    epochs: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    evaluations: pd.DataFrame | None = None
    regression: pd.DataFrame | None = None
    trace: pd.DataFrame | None = None
    runs: dict[str, TrainResult] = field(default_factory=dict)
    rank: int = 0  # under torch.distributed, only rank 0 should save
    failed: dict[str, str] = field(default_factory=dict)  # run name -> the one line its class raised
    kept: list[str] = field(default_factory=list)  # runs read back as an earlier run in `out` finished them

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {name: getattr(self, name) for name in (*CLASSIFICATION_TABLES, "regression", "trace")}
        return {name: table for name, table in tables.items() if table is not None}

    @classmethod
    def load(cls, folder) -> TrainingResult:
        """The result `save` wrote to `folder` (its tables and meta.json), without the per-run weights."""
        folder = Path(folder)
        meta = read_metadata(folder)
        spec = require_spec(folder, meta)
        require_tables(folder)
        tables = read_tables(folder, meta, cls.schemas(spec, meta))
        present = {name: table for name, table in tables.items() if table is not None}
        return cls(
            task=spec.get("task", ""),
            meta=spec,
            seed=meta.get("seed", 0),
            **present,
            failed=meta.get("failed", {}),
        )

    @staticmethod
    def schemas(spec: dict, meta: dict) -> list[TableSchema]:
        """The tables of a saved training run (`result.TableSchema`): a classification run's steps,
        epochs and summary (one summary row per run that did not fail), a regression's or the scalar
        example's own table."""
        if "runs" in spec:
            runs, failed = spec["runs"], meta.get("failed") or {}
            count = len(runs) - len(failed) if isinstance(runs, list) and isinstance(failed, dict) else None
            required = {"steps": None, "epochs": None, "summary": count}
            return [
                TableSchema(name, columns, required=name in required, rows=required.get(name))
                for name, columns in TABLE_COLUMNS.items()
                if name in (*CLASSIFICATION_TABLES,)
            ]
        table = "trace" if spec.get("task") == "scalar" else "regression"
        return [TableSchema(table, TABLE_COLUMNS[table])]

    def plot(self) -> dict:
        """Figure name -> matplotlib figure (see `plots.training.training_figures`)."""
        from ..plots.training import training_figures  # matplotlib loads only when figures are asked for

        f_star = self.meta.get("least_squares", {}).get("loss") if self.meta.get("seeds", 1) == 1 else None
        return training_figures(self.tables(), f_star, self.meta.get("data"))


def train(
    optimizers: str | OptimizerSpec | Sequence[str | OptimizerSpec] = ("sgd",),
    task: str = "digits",
    *,
    model: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    schedule: str | None = None,
    warmup_epochs: int = 0,
    early_stop: int | None = None,
    device: str = "auto",
    bf16: bool = False,
    compile: bool = False,
    channels_last: bool = False,
    fast: bool = False,
    dtype: str = "float32",
    seed: int = 0,
    seeds: int = 1,
    data_dir: str | None = None,
    eval_every_steps: int | None = None,
    recipe: str | None = None,
    max_steps: int | None = None,
    context: int | None = None,
    n_layer: int | None = None,
    n_head: int | None = None,
    n_embd: int | None = None,
    nproc: int = 1,
    out: str | Path | None = None,
    force: bool = False,
    progress: Callable[[Progress], None] | None = None,
    threads: int | None = None,
) -> TrainingResult:
    """Train each optimizer on `task`; see the module docstring.

    optimizers: one spec or several, as text ("adam:lr=1e-3", "momentum", "torch:sgd") or parsed.
    task: a task name `optbench list` shows with `train` (or a registered `tasks.Task`).
    seed, seeds: each optimizer runs `seeds` times, with seeds seed .. seed + seeds - 1 (initial
    weights, batch order, and linreg's samples); `scalar` draws nothing random and takes one.
    epochs, batch_size: None takes the task's budget (`Task.budget`); for `scalar`, epochs counts
    iterations. A language-model task's budget is in steps: `max_steps` (None: the task's), its epochs
    as many as those steps need, its `eval_every_steps` the task's cadence, and its `recipe` (None)
    'no-decay' for an optimizer with weight decay (`Task.default_recipe`); `context`, `n_layer`,
    `n_head`, `n_embd` set its model's sizes (and apply to it alone). Unset learning rates take the
    task's `default_hparams`. The other settings are those of `runners.training.TrainSpec` and apply
    to the tasks that train a model only. threads: torch threads of this process (None: torch's
    current count), recorded as meta["threads"]; with nproc > 1 each process takes its share of the
    cores. Raises OptbenchError for any bad setting, before any work.
    """
    resolved = get_task(task)
    if resolved.kind is TaskKind.SURFACE:
        raise OptbenchError(f"task '{task}' is an analytic surface: use `optbench compare --surface` for it")
    resolved.require("train")
    specs = _parse_optimizers(optimizers)
    check_seed(seed)
    check_count("seeds", seeds, 1)
    check_seed(seed + seeds - 1)
    for name, value in (("nproc", nproc), ("epochs", epochs), ("batch size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise OptbenchError(f"{name} must be at least 1, got {value!r}")
    if resolved.kind is TaskKind.REGRESSION:
        classification_only = dict(
            model=model,
            schedule=schedule,
            warmup_epochs=warmup_epochs or None,
            early_stop=early_stop,
            bf16=bf16 or None,
            compile=compile or None,
            channels_last=channels_last or None,
            fast=fast or None,
            data_dir=data_dir,
            eval_every_steps=eval_every_steps,
            recipe=recipe,
            max_steps=max_steps,
            context=context,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            nproc=nproc if nproc != 1 else None,
            dtype=None if dtype == "float32" else dtype,
            device=None if device in ("auto", "cpu") else device,
            threads=threads,  # the examples run single-threaded, so their numbers never depend on it
        )
        given = [name for name, value in classification_only.items() if value is not None]
        if given:
            name = given[0].replace("_", "-")
            raise OptbenchError(f"--{name} does not apply to task '{task}' (a regression example)")
        if seeds > 1 and resolved.name == "scalar":
            raise OptbenchError(
                f"--seeds does not apply to task 'scalar': it draws no random numbers, got {seeds}"
            )
        return _regression(specs, resolved, epochs, batch_size, range(seed, seed + seeds), out, force)
    base = TrainSpec(
        task=resolved.name,
        model=model or resolved.model,
        epochs=epochs or resolved.budget.epochs,
        batch_size=batch_size or resolved.budget.batch_size,
        schedule=schedule,
        warmup_epochs=warmup_epochs,
        early_stop=early_stop,
        device=device,
        bf16=bf16,
        compile=compile,
        channels_last=channels_last,
        fast=fast,
        dtype=dtype,
        seed=seed,
        data_dir=data_dir,
        eval_every_steps=eval_every_steps,
        recipe=recipe,
        max_steps=max_steps,
        context=context,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
    )
    with torch_threads(threads) as used:
        runs = [replace(base, optimizer=spec, seed=s) for spec in specs for s in range(seed, seed + seeds)]
        if resolved.kind is TaskKind.LANGUAGE_MODEL:
            runs = [_step_budget(run, resolved, epochs) for run in runs]
        return _classification(runs, seeds, nproc, out, force, progress, used)


def _step_budget(spec: TrainSpec, task, epochs: int | None) -> TrainSpec:
    """A language-model run's budget in steps: the task's steps and evaluation cadence where not given,
    as many epochs as the steps need (unless `epochs` is given), and nanoGPT's per-step linear warm-up
    and cosine decay to lr / 10 (`defaults.LANGUAGE_MODEL`) unless a per-epoch schedule or warm-up is
    given."""
    steps = spec.max_steps or task.budget.steps
    every = spec.eval_every_steps or max(1, task.budget.steps // task.budget.evaluations)
    schedule = {}
    if spec.schedule is None and not spec.warmup_epochs:  # nanoGPT's per-step warm-up and cosine decay
        schedule = dict(
            warmup_steps=D.LANGUAGE_MODEL[task.name]["warmup_steps"],
            decay="cosine",
            min_lr_ratio=D.LANGUAGE_MODEL["min_lr_ratio"],
        )
    spec = replace(spec, max_steps=steps, eval_every_steps=min(every, steps), **schedule)
    if epochs is None:
        per_epoch = task.rows(task.load(spec.data_dir), spec) // spec.batch_size
        spec = replace(spec, epochs=max(1, math.ceil(steps / max(1, per_epoch))))
    return spec


def _parse_optimizers(optimizers) -> list[OptimizerSpec]:
    items = [optimizers] if isinstance(optimizers, (str, OptimizerSpec)) else list(optimizers)
    if not items:
        raise OptbenchError("give at least one optimizer")
    specs = [as_spec(item) for item in items]
    names = [spec.name for spec in specs]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise OptbenchError(f"optimizer '{repeated}' is given twice: its rows could not be told apart")
    seen = {}
    for spec in specs:
        setting = (spec.family, spec.use_torch, repr(sorted(spec.resolved().items())))
        if setting in seen:
            raise OptbenchError(
                f"optimizers '{seen[setting]}' and '{spec.name}' are the same setting; give it once"
            )
        seen[setting] = spec.name
    return specs


def _run_label(name: str, seed: int, seeds: int) -> str:
    """A run's name in progress bars and `TrainingResult.runs`: its optimizer's, with its seed when
    several seeds run."""
    return name if seeds == 1 else f"{name} seed={seed}"


def _with_seed(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """`table` with a `seed` column after its labels (optimizer, family), the run's seed in every row."""
    at = sum(column in table for column in ("optimizer", "family"))
    return (
        table
        if "seed" in table
        else table.assign(seed=seed)[[*table.columns[:at], "seed", *table.columns[at:]]]
    )


def _classification(
    specs: list[TrainSpec], seeds: int, nproc: int, out, force: bool, progress, threads: int
) -> TrainingResult:
    torchrun = started_by_torchrun()
    if torchrun and nproc != 1:
        raise OptbenchError("nproc cannot be combined with torchrun: torchrun already started the processes")
    with process_group(specs[0].device) if torchrun else nullcontext((0, nproc)) as (rank, world):
        dataset = check(specs[0], world=world)
        for spec in specs[1:]:
            check(spec, dataset, world)
        task = specs[0].resolved_task
        n_train = task.rows(dataset, specs[0])
        steps_per_epoch = math.ceil(n_train / specs[0].batch_size)
        require_rows(
            f"training {len(specs) // seeds} optimizer(s){f' x {seeds} seeds' if seeds > 1 else ''} for "
            f"{specs[0].epochs:,} epochs of {steps_per_epoch} steps",
            len(specs) * specs[0].epochs * steps_per_epoch,
        )
        spec_record = {
            "runs": [spec.resolved() for spec in specs],
            "seeds": seeds,
            "processes": world,
            "threads": threads,
        }
        data_record = task.record(dataset, specs[0])
        if data_record:
            spec_record["data"] = data_record
        seed = specs[0].seed
        store = _store(out, spec_record, seed, force, writer=rank == 0)
        tables, runs, failed, kept = {name: [] for name in CLASSIFICATION_TABLES}, {}, {}, []
        for spec in specs:
            label = _run_label(spec.optimizer.name, spec.seed, seeds)
            shown = _relabelled(progress, label) if progress and seeds > 1 else progress
            key = content_key({**spec.resolved(), "processes": world})
            # torchrun's ranks train together, so only a run this process alone computes is claimed
            with store.claim(key, [key]) if store and not torchrun else nullcontext():
                reread = store and not (force and rank)
                finished = store.read(key) if reread else None
                if finished is not None:
                    kept.append(label)
                if finished is None:
                    distributed = world > 1 and not torchrun
                    with recorded_failure(spec.optimizer, failed):
                        run = launch(spec, world) if distributed else train_one(spec, dataset, shown)
                    if spec.optimizer.name in failed:
                        continue
                    finished = {name: getattr(run, name) for name in CLASSIFICATION_TABLES}
                    runs[label] = run
                    if store and rank == 0:
                        store.write(key, finished)
            if progress and (label not in runs or (world > 1 and not torchrun)):
                _report_finished(shown, spec, finished["epochs"], n_train)
            for name in CLASSIFICATION_TABLES:
                tables[name].append(_with_seed(finished[name], spec.seed))
        if store:
            store.close()
    check_some_finished(tables["summary"], failed)
    merged = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items()}
    return TrainingResult(
        specs[0].task, spec_record, seed, **merged, runs=runs, rank=rank, failed=failed, kept=kept
    )


def _relabelled(progress, label: str):
    """`progress` with every event's bar named `label` (one bar per seed of an optimizer)."""
    return lambda event: progress(replace(event, bar=label))


def _store(out, record: dict, seed: int, force: bool, writer: bool = True) -> CellStore | None:
    """The cell store of `out` (None without one), checked against this run; joined as a writer
    (meta.json recorded) by the process that writes. A different run is refused unless `force`."""
    if not out:
        return None
    store = CellStore(out)
    store.check("train", record, seed, force)
    if writer:
        output_folder(out, "train")
        store.open("train", record, seed, force)
    return store


def _report_finished(progress, spec: TrainSpec, epochs: pd.DataFrame, n_train: int) -> None:
    """Runs that did not report step by step (resumed, or in worker processes) report their epochs."""
    steps_per_epoch = n_train // spec.batch_size
    for row in epochs.to_dict("records"):
        progress(epoch_progress(spec, int(row["epoch"]), steps_per_epoch, steps_per_epoch, row))


def _regression(
    specs: list[OptimizerSpec], regression, epochs, batch_size, seeds: range, out, force
) -> TrainingResult:
    """Each optimizer with each of `seeds` (linreg: its own samples and batch order per seed; the
    record's least-squares solution is the first seed's); scalar takes one seed and no seed column."""
    plans = [regression.plan(specs, epochs, batch_size, seed) for seed in seeds]
    task, table_name, record = regression.name, plans[0].table, plans[0].record
    if table_name != "trace":
        record = {**record, "seeds": len(seeds)}
    store = _store(out, record, seeds[0], force)
    parts, failed, kept = [], {}, []
    for spec in specs:
        for planned in plans:
            key = content_key(
                {
                    "task": task,
                    "optimizer": spec.name,
                    "hparams": spec.resolved(),
                    "use_torch": spec.use_torch,
                    **planned.settings,
                }
            )
            with store.claim(key, [key]) if store else nullcontext():
                finished = store.read(key) if store else None
                if finished is not None:
                    kept.append(
                        spec.name if len(seeds) == 1 else f"{spec.name} seed={planned.settings['seed']}"
                    )
                if finished is None:
                    with recorded_failure(spec, failed):
                        finished = {table_name: planned.run(spec)}
                    if spec.name in failed:
                        break
                    if store:
                        store.write(key, finished)
            table = finished[table_name]
            parts.append(_with_seed(table, planned.settings["seed"]) if "seed" in planned.settings else table)
    if store:
        store.close()
    check_some_finished(parts, failed)
    table = pd.concat(parts, ignore_index=True)
    return TrainingResult(task, record, seeds[0], **{table_name: table}, failed=failed, kept=kept)
