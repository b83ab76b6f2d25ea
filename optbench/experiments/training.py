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
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..budget import require_rows
from ..errors import OptbenchError, failure
from ..results import read_metadata, read_table, write_metadata, write_table
from ..runners.distributed import launch, process_group, started_by_torchrun
from ..runners.regression import least_squares, linear_regression, make_linear_data, scalar_trace
from ..runners.training import TrainResult, TrainSpec, Update, check
from ..runners.training import train as train_one
from ..specs import OptimizerSpec, as_spec
from ..tasks import REGRESSION, SCALAR, TRAINING, get_task
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
    failed: dict[str, str] = field(default_factory=dict)  # optimizer -> the line its run failed with

    def __getattr__(self, name):  # result.epochs, result.summary, result.regression, ...
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(f"no table or attribute '{name}' (tables: {', '.join(tables)})")

    def save(self, folder) -> Path:
        """Write every table as FOLDER/NAME.parquet and meta.json; returns the folder."""
        folder = Path(folder)
        write_metadata(folder, "train", self.spec, self.seed, failed=self.failed)
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

        return training_figures(self.tables, self.spec.get("least_squares", {}).get("loss"))


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
    nproc: int = 1,
    out: str | Path | None = None,
    force: bool = False,
    progress: Callable[[Update], None] | None = None,
) -> TrainingResult:
    """Train each optimizer on `task`; see the module docstring.

    epochs, batch_size: None takes the task's defaults (`optbench.tasks.defaults`); for `scalar`,
    epochs counts iterations. The other settings are those of `runners.training.TrainSpec` and apply
    to classification tasks only. Raises OptbenchError for any bad setting, before any work.
    """
    specs = _parse_optimizers(optimizers)
    check_seed(seed)
    kind = get_task(task).kind
    if kind == "surface":
        raise OptbenchError(f"task '{task}' is an analytic surface: use `optbench compare --surface` for it")
    for name, value in (("nproc", nproc), ("epochs", epochs), ("batch size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise OptbenchError(f"{name} must be at least 1, got {value!r}")
    if kind == "regression":
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
            nproc=nproc if nproc != 1 else None,
            dtype=None if dtype == "float32" else dtype,
            device=None if device in ("auto", "cpu") else device,
        )
        given = [name for name, value in classification_only.items() if value is not None]
        if given:
            raise OptbenchError(f"{given[0]} does not apply to task '{task}' (a regression example)")
        return _regression(specs, get_task(task).name, epochs, batch_size, seed, out, force)
    base = TrainSpec(
        task=task,
        model=model or "lenet",
        epochs=epochs or TRAINING["epochs"],
        batch_size=batch_size or TRAINING["batch_size"],
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
    )
    return _classification([replace(base, optimizer=spec) for spec in specs], nproc, out, force, progress)


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
        steps_per_epoch = math.ceil(len(dataset.train[1]) / specs[0].batch_size)
        require_rows(
            f"training {len(specs)} optimizer(s) for {specs[0].epochs:,} epochs of {steps_per_epoch} steps",
            len(specs) * specs[0].epochs * steps_per_epoch,
        )
        spec_record = {"runs": [spec.resolved() for spec in specs], "processes": world}
        seed = specs[0].seed
        store = RunStore.open(out, "train", spec_record, seed, force, writer=rank == 0) if out else None
        tables, runs, failed = {name: [] for name in CLASSIFICATION_TABLES}, {}, {}
        for spec in specs:
            key = key_of({**spec.resolved(), "processes": world})
            # torchrun's ranks train together, so only a run this process alone computes is claimed
            with store.claim(key) if store and not torchrun else nullcontext():
                reread = store and not (force and rank)
                finished = store.finished(key, CLASSIFICATION_TABLES) if reread else None
                if finished is None:
                    distributed = world > 1 and not torchrun
                    with recorded_failure(spec.optimizer, failed):
                        run = launch(spec, world) if distributed else train_one(spec, dataset, progress)
                    if spec.optimizer.name in failed:
                        continue
                    finished = {name: getattr(run, name) for name in CLASSIFICATION_TABLES}
                    runs[spec.optimizer.name] = run
                    if store and rank == 0:
                        store.finish(key, finished)
            if progress and (spec.optimizer.name not in runs or (world > 1 and not torchrun)):
                _report_finished(progress, spec, finished["epochs"], len(dataset.train[1]))
            for name in CLASSIFICATION_TABLES:
                tables[name].append(finished[name])
    check_some_finished(tables["summary"], failed)
    merged = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items()}
    return TrainingResult(specs[0].task, merged, spec_record, seed, runs, rank, failed)


@contextmanager
def recorded_failure(spec: OptimizerSpec, failed: dict):
    """Record in `failed` (name -> one line) the exception of a user's class that fails its run, so the
    other runs keep going; optbench's own algorithms raising is a bug, and propagates."""
    try:
        yield
    except Exception as error:  # noqa: BLE001
        if spec.origin is None:
            raise
        failed[spec.name] = failure(error)


def check_some_finished(parts: list, failed: dict) -> None:
    """OptbenchError naming each failure when no run finished: there is no table to save."""
    if not parts:
        raise OptbenchError(
            "every run failed: " + "; ".join(f"{name}: {message}" for name, message in failed.items())
        )


def _report_finished(progress, spec: TrainSpec, epochs: pd.DataFrame, n_train: int) -> None:
    """Runs that did not report step by step (resumed, or in worker processes) report their epochs."""
    steps_per_epoch = n_train // spec.batch_size
    for row in epochs.to_dict("records"):
        progress(
            Update(spec.optimizer.name, int(row["epoch"]), spec.epochs, steps_per_epoch, steps_per_epoch, row)
        )


def _regression(
    specs: list[OptimizerSpec], task: str, epochs, batch_size, seed: int, out, force
) -> TrainingResult:
    names = [spec.name for spec in specs]
    if task == "scalar":
        if batch_size is not None:
            raise OptbenchError("batch size does not apply to task 'scalar' (one sample)")
        iterations = epochs or SCALAR["iterations"]
        require_rows(f"{len(specs)} scalar trace(s) of {iterations:,} iterations", len(specs) * iterations)
        record = {"task": task, "optimizers": names, "iterations": iterations}
        table_name, settings = "trace", {"iterations": iterations}

        def run(spec):
            return scalar_trace(spec, steps=iterations)
    else:
        data = make_linear_data(seed=seed)
        batch_size, epochs = batch_size or REGRESSION["batch_size"], epochs or REGRESSION["epochs"]
        if batch_size > len(data.y):
            raise OptbenchError(
                f"batch size {batch_size} is larger than the {len(data.y)} regression samples"
            )
        steps = epochs * math.ceil(len(data.y) / batch_size)
        require_rows(f"{len(specs)} regression run(s) of {epochs:,} epochs", len(specs) * steps)
        record = {
            "task": task,
            "optimizers": names,
            "least_squares": least_squares(data),
            "batch_size": batch_size,
            "epochs": epochs,
        }
        table_name, settings = "regression", {"batch_size": batch_size, "epochs": epochs, "seed": seed}

        def run(spec):
            return linear_regression(spec, data, batch_size=batch_size, epochs=epochs, seed=seed)

    store = RunStore.open(out, "train", record, seed, force) if out else None
    parts, failed = [], {}
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
                with recorded_failure(spec, failed):
                    finished = {table_name: run(spec)}
                if spec.name in failed:
                    continue
                if store:
                    store.finish(key, finished)
        parts.append(finished[table_name])
    check_some_finished(parts, failed)
    table = pd.concat(parts, ignore_index=True)
    return TrainingResult(task, {table_name: table}, record, seed, failed=failed)
