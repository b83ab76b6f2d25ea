"""`optbench.train(...)`: train with one or more optimizers on one task; tidy tables back.

    result = train(["sgd", "adam:lr=1e-3"], task="digits", model="lenet", epochs=10)
    result.epochs, result.summary     # DataFrames (classification)
    result.save("results/digits")     # tables and meta.json, as `optbench train --out` writes them
    result.plot()                     # {"training": Figure}

Classification tasks train a model (`runners/training.py`, data-parallel with `nproc` > 1 or under
torchrun); `scalar` and `linreg` (alias `regression`) are the hand-checkable regression problems
(`runners/regression.py`). Every check runs before the first run starts. With `out`, each
optimizer's run is stored as a cell as soon as it finishes, and a rerun of the same spec into the
same folder skips the runs already there; another spec is refused unless `force`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..budget import require_rows
from ..errors import OptbenchError
from ..results import read_metadata, read_table, write_metadata, write_table
from ..runners.distributed import launch, process_group, started_by_torchrun
from ..runners.training import TrainResult, TrainSpec, Update, check
from ..runners.training import train as train_one
from ..specs import OptimizerSpec, as_spec
from ..tasks import TaskKind, get_task
from ..tasks import defaults as D
from .inputs import check_seed
from .run_store import RunStore, key_of

CLASSIFICATION_TABLES = ("steps", "epochs", "summary", "evaluations")


@dataclass
class TrainingResult:
    """What `train` returns: the tables (tidy, one row per step/epoch/run), the resolved spec, the seed.

    tables: 'steps', 'epochs', 'summary', 'evaluations' for classification; 'regression' for linreg;
    'trace' for scalar. runs: each classification run computed now (final weights in `state_dict`).
    """

    task: str
    tables: dict[str, pd.DataFrame]
    spec: dict
    seed: int
    runs: dict[str, TrainResult] = field(default_factory=dict, repr=False)
    rank: int = 0  # under torch.distributed, only rank 0 should save

    def __getattr__(self, name):  # result.epochs, result.summary, result.regression, ...
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(f"no table or attribute '{name}' (tables: {', '.join(tables)})")

    def save(self, folder) -> Path:
        """Write every table as FOLDER/NAME.parquet and meta.json; returns the folder."""
        folder = Path(folder)
        write_metadata(folder, "train", self.spec, self.seed)
        for name, table in self.tables.items():
            write_table(table, folder / f"{name}.parquet")
        return folder

    @classmethod
    def load(cls, folder) -> TrainingResult:
        """The result `save` wrote to `folder` (its tables and meta.json), without the per-run weights."""
        folder = Path(folder)
        meta = read_metadata(folder)
        tables = {path.stem: read_table(path) for path in sorted(folder.glob("*.parquet"))}
        return cls(
            task=meta["spec"].get("task", ""), tables=tables, spec=meta["spec"], seed=meta.get("seed", 0)
        )

    def plot(self) -> dict:
        """Figure name -> matplotlib figure (see `plots.training.training_figures`)."""
        from ..plots.training import training_figures  # matplotlib loads only when figures are asked for

        return training_figures(
            self.tables, self.spec.get("least_squares", {}).get("loss"), self.spec.get("data")
        )


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
    channels_last: bool = False,
    fast: bool = False,
    dtype: str = "float32",
    seed: int = 0,
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
    progress: Callable[[Update], None] | None = None,
) -> TrainingResult:
    """Train each optimizer on `task`; see the module docstring.

    optimizers: one spec or several, as text ("adam:lr=1e-3", "momentum", "torch:sgd") or parsed.
    task: a task name `optbench list` shows with `train` (or a registered `tasks.Task`).
    epochs, batch_size: None takes the task's budget (`Task.budget`); for `scalar`, epochs counts
    iterations. A language-model task's budget is in steps: `max_steps` (None: the task's), its epochs
    as many as those steps need, its `eval_every_steps` the task's cadence, and its `recipe` (None)
    'no-decay' for an optimizer with weight decay (`Task.default_recipe`); `context`, `n_layer`,
    `n_head`, `n_embd` set its model's sizes (and apply to it alone). Unset learning rates take the
    task's `default_hparams`. The other settings are those of `runners.training.TrainSpec` and apply
    to the tasks that train a model only. Raises OptbenchError for any bad setting, before any work.
    """
    resolved = get_task(task)
    if resolved.kind is TaskKind.SURFACE:
        raise OptbenchError(f"task '{task}' is an analytic surface: use `optbench compare --surface` for it")
    resolved.require("train")
    specs = _parse_optimizers(optimizers)
    check_seed(seed)
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
        )
        given = [name for name, value in classification_only.items() if value is not None]
        if given:
            name = given[0].replace("_", "-")
            raise OptbenchError(f"--{name} does not apply to task '{task}' (a regression example)")
        return _regression(specs, resolved, epochs, batch_size, seed, out, force)
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
    runs = [replace(base, optimizer=spec) for spec in specs]
    if resolved.kind is TaskKind.LANGUAGE_MODEL:
        runs = [_step_budget(run, resolved, epochs) for run in runs]
    return _classification(runs, nproc, out, force, progress)


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


def _classification(specs: list[TrainSpec], nproc: int, out, force: bool, progress) -> TrainingResult:
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
            f"training {len(specs)} optimizer(s) for {specs[0].epochs:,} epochs of {steps_per_epoch} steps",
            len(specs) * specs[0].epochs * steps_per_epoch,
        )
        spec_record = {"runs": [spec.resolved() for spec in specs], "processes": world}
        data_record = task.record(dataset, specs[0])
        if data_record:
            spec_record["data"] = data_record
        seed = specs[0].seed
        store = RunStore.open(out, "train", spec_record, seed, force, writer=rank == 0) if out else None
        tables, runs = {name: [] for name in CLASSIFICATION_TABLES}, {}
        for spec in specs:
            key = key_of({**spec.resolved(), "processes": world})
            # torchrun's ranks train together, so only a run this process alone computes is claimed
            with store.claim(key) if store and not torchrun else nullcontext():
                reread = store and not (force and rank)
                finished = store.finished(key, CLASSIFICATION_TABLES) if reread else None
                if finished is None:
                    distributed = world > 1 and not torchrun
                    run = launch(spec, world) if distributed else train_one(spec, dataset, progress)
                    finished = {name: getattr(run, name) for name in CLASSIFICATION_TABLES}
                    runs[spec.optimizer.name] = run
                    if store and rank == 0:
                        store.finish(key, finished)
            if progress and (spec.optimizer.name not in runs or (world > 1 and not torchrun)):
                _report_finished(progress, spec, finished["epochs"], n_train)
            for name in CLASSIFICATION_TABLES:
                tables[name].append(finished[name])
    merged = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items()}
    return TrainingResult(specs[0].task, merged, spec_record, seed, runs, rank)


def _report_finished(progress, spec: TrainSpec, epochs: pd.DataFrame, n_train: int) -> None:
    """Runs that did not report step by step (resumed, or in worker processes) report their epochs."""
    steps_per_epoch = n_train // spec.batch_size
    for row in epochs.to_dict("records"):
        progress(
            Update(spec.optimizer.name, int(row["epoch"]), spec.epochs, steps_per_epoch, steps_per_epoch, row)
        )


def _regression(
    specs: list[OptimizerSpec], regression, epochs, batch_size, seed: int, out, force
) -> TrainingResult:
    planned = regression.plan(specs, epochs, batch_size, seed)
    task, table_name, settings, record = regression.name, planned.table, planned.settings, planned.record
    store = RunStore.open(out, "train", record, seed, force) if out else None
    parts = []
    for spec in specs:
        key = key_of(
            {
                "task": task,
                "optimizer": spec.name,
                "hparams": spec.resolved(),
                "use_torch": spec.use_torch,
                **settings,
            }
        )
        with store.claim(key) if store else nullcontext():
            finished = store.finished(key, [table_name]) if store else None
            if finished is None:
                finished = {table_name: planned.run(spec)}
                if store:
                    store.finish(key, finished)
        parts.append(finished[table_name])
    return TrainingResult(task, {table_name: pd.concat(parts, ignore_index=True)}, record, seed)
