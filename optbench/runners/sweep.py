"""Batch-size and learning-rate-scaling sweeps that never lose work.

A `SweepSpec` is crossed as a grid: optimizers x extra hyperparameter lists x lr-scaling rules x
batch sizes x seeds. Each point is a *cell*, fully resolved (every optimizer hyperparameter, the lr
actually used, the budget, the seed) and keyed by a hash of those settings, so the key does not
depend on the order in which lists or flags were given. The lr of a cell is scaled from the pair
(base_lr, base_batch_size = B0):

    linear: lr = base_lr * B / B0      sqrt: lr = base_lr * sqrt(B / B0)      none: lr = base_lr

Every finished cell is written at once, atomically, as `OUT/cells/<key>.parquet`; a cell that
crashed leaves no file, so a rerun of the same sweep skips finished cells and redoes only the rest.
Cells that differ only in how they were asked for resolve to the same computation (the base batch
size has the same lr under every rule): each such group is computed once and its table is written,
relabelled, under every cell of the group (`computation` is the hash without the rule, base lr and
base batch size; a finished twin in the folder is copied instead of recomputed).
`meta.json` records the spec; a different spec in the same folder is refused unless `force`.
`jobs` runs cells in spawned processes; `shard=(i, n)` runs every n-th cell starting at the i-th
(1-based), so an array job can spread a sweep over machines writing into one shared folder.

Tasks: image classification through the training runner (digits, mnist, fashion-mnist, cifar10),
`regression` (stochastic linear regression) and `surface:NAME` (an analytic surface whose gradient
gets N(0, noise²/B) per coordinate: batch size B divides the noise variance by B).

Tables (tidy, long):
- the cell table / `sweep.parquet`: one row per optimizer step of every cell: settings, `step`
  (updates done), `samples` (step x B), `loss` (the mini-batch loss of that step), `step_lr`, and
  `eval_loss` / `eval_accuracy` where the task evaluated after that step (training: the validation
  split about `evaluations` times per cell, evenly spaced, and after every epoch; regression: the
  full-data loss after every step; surface: the exact loss), cell wall time, samples/s, `diverged`,
  the gradient noise scale at the start and the end;
- `summary.parquet`: one row per cell, with steps and samples to reach the target;
- `critical.parquet`: the critical batch size per optimizer and rule (see `critical_batch_sizes`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..errors import OptbenchError, did_you_mean
from ..results import read_metadata, read_table, write_metadata, write_table
from ..specs import parse_optimizer
from . import noise_scale

RULES = ("linear", "sqrt", "none")
REGRESSION_TASKS = ("regression", "linreg")
CELLS = "cells"
CRASH_AFTER_ENV = "OPTBENCH_SWEEP_CRASH_AFTER"   # testing hook: SIGKILL this process after N cells
CRITICAL_METHOD = ("least-squares fit in log space of steps-to-target = S_min (1 + B_crit / B) "
                   "(McCandlish et al. 2018, eq. 2.11) over the batch sizes that reached the target")
NOISE_METHOD = {
    "training": "B_simple = tr(Σ)/|G|² from squared gradient norms of 16 random batches of 32 samples "
                "and of the whole training split (up to 2048 samples), at the initial and the final weights",
    "regression": "B_simple = tr(Σ)/|G|² from squared gradient norms of 64 batches of 10 samples and of "
                  "all samples, at the initial and the final weights",
    "surface": "B_simple = dim·noise²/|∇f|² exactly (the injected per-sample noise has covariance noise²·I), "
               "at the start and the end point",
}


DEFAULT_TRAINING_STEPS = 400
# Validation evaluations per training cell, evenly spaced (every step when the budget is shorter).
# Steps-to-target is read off these; one evaluation of the digits split costs about one small-batch
# step, so 400 keep the 400-step cells resolved to the step.
DEFAULT_EVALUATIONS = 400


@dataclass
class SweepSpec:
    """Everything that decides a sweep; lists are crossed as a grid."""
    batch_sizes: tuple = (16, 64, 256)
    lr_scales: tuple = ("linear",)
    optimizers: tuple = ("momentum",)
    hparams: dict = field(default_factory=dict)   # extra axes: name -> list of values (lr too)
    task: str = "digits"
    model: str = "lenet"
    base_lr: float | None = None          # default: the optimizer spec's lr, else the task's default
    base_batch_size: int | None = None    # default: the smallest batch size
    warmup_epochs: int = 0
    epochs: int | None = None             # budget per cell in epochs
    steps: int | None = None              # budget per cell in optimizer steps (caps epochs);
                                          # training default: 400 steps for every batch size
    seeds: int = 1
    seed: int = 0                         # seeds are seed, seed+1, ..., seed+seeds-1
    noise: float = 1.0                    # surface tasks: per-sample gradient noise std
    device: str = "auto"
    data_dir: str | None = None
    evaluations: int | None = None        # training: validation evaluations per cell (default 400)
    target_accuracy: float | None = None  # analysis only: changing it never reruns a cell
    target_loss: float | None = None

    def grid(self) -> dict:
        """The settings that decide the cells, in canonical order (for the changed-spec check)."""
        kind = task_kind(self.task)
        return {
            "task": self.task, "model": self.model if kind == "training" else None,
            "optimizers": sorted(self.optimizers), "batch_sizes": sorted(self.batch_sizes),
            "lr_scales": [r for r in RULES if r in self.lr_scales],
            "hparams": {k: sorted(map(_jsonable, v), key=repr) for k, v in sorted(self.hparams.items())},
            "base_lr": self.base_lr, "base_batch_size": self.resolved_base_batch_size(),
            "warmup_epochs": self.warmup_epochs, "epochs": self.resolved_epochs(),
            "steps": self.resolved_steps(),
            "seeds": list(range(self.seed, self.seed + self.seeds)),
            "noise": self.noise if kind == "surface" else None,
            "device": self.device if kind == "training" else None,
            "evaluations": self.resolved_evaluations(),
        }

    def to_dict(self) -> dict:
        return {"grid": self.grid(), "analysis": {"target_accuracy": self.target_accuracy,
                                                  "target_loss": self.target_loss},
                "spec": _jsonable(asdict(self))}

    @classmethod
    def from_dict(cls, saved: dict) -> "SweepSpec":
        values = dict(saved["spec"])
        for name in ("batch_sizes", "lr_scales", "optimizers"):
            values[name] = tuple(values[name])
        return cls(**values)

    def resolved_base_batch_size(self) -> int:
        return self.base_batch_size or min(self.batch_sizes)

    def resolved_evaluations(self) -> int | None:
        if task_kind(self.task) != "training":
            return None      # regression and surfaces evaluate after every step
        return self.evaluations or DEFAULT_EVALUATIONS

    def resolved_epochs(self) -> int | None:
        return self.epochs

    def resolved_steps(self) -> int | None:
        """A batch-size study compares equal numbers of steps: with an epoch budget instead, the
        largest batches would get only a handful of steps. So training defaults to 400 steps."""
        if task_kind(self.task) == "training" and self.epochs is None and self.steps is None:
            return DEFAULT_TRAINING_STEPS
        return self.steps


def task_kind(task: str) -> str:
    if task.lower() in REGRESSION_TASKS:
        return "regression"
    if task.lower().startswith("surface:"):
        return "surface"
    return "training"


# --- checking and expanding the spec -----------------------------------------------------------

def validate(spec: SweepSpec) -> None:
    """Every user mistake in the spec, as one OptbenchError, before any work."""
    from ..data import IMAGE_TASKS

    if not spec.batch_sizes:
        raise OptbenchError("give at least one batch size")
    for b in spec.batch_sizes:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise OptbenchError(f"batch size must be a whole number >= 1, got {b}")
    if not spec.lr_scales:
        raise OptbenchError("give at least one lr-scale rule")
    for rule in spec.lr_scales:
        if rule not in RULES:
            raise did_you_mean("lr-scale rule", str(rule), RULES)
    if not spec.optimizers:
        raise OptbenchError("give at least one optimizer")
    _positive("seeds", spec.seeds, whole=True)
    for name in ("base_batch_size", "epochs", "steps", "evaluations"):
        if getattr(spec, name) is not None:
            _positive(name.replace("_", "-"), getattr(spec, name), whole=True)
    if spec.base_lr is not None:
        _positive("base-lr", spec.base_lr)
    if not (isinstance(spec.warmup_epochs, int) and spec.warmup_epochs >= 0):
        raise OptbenchError(f"warmup-epochs must be a whole number >= 0, got {spec.warmup_epochs}")
    if spec.target_accuracy is not None and not 0 < spec.target_accuracy <= 1:
        raise OptbenchError(f"target-accuracy must be in (0, 1], got {spec.target_accuracy}")
    if spec.target_loss is not None and not math.isfinite(spec.target_loss):
        raise OptbenchError(f"target-loss must be finite, got {spec.target_loss}")
    kind = task_kind(spec.task)
    if kind == "training":
        key = spec.task.lower().replace("_", "-")
        if key not in IMAGE_TASKS:
            raise did_you_mean("task", spec.task, list(IMAGE_TASKS) + ["regression", "surface:NAME"])
    else:
        if spec.warmup_epochs:
            raise OptbenchError(f"--warmup-epochs needs a training task, not '{spec.task}'")
        if spec.evaluations is not None:
            raise OptbenchError(f"--evaluations needs a training task ('{spec.task}' is evaluated at every step)")
        if spec.target_accuracy is not None:
            raise OptbenchError(f"task '{spec.task}' has no accuracy; use --target-loss")
    if kind == "surface":
        from ..objectives import get_surface
        get_surface(spec.task.partition(":")[2])
        if spec.epochs is not None:
            raise OptbenchError("a surface has no epochs; give --steps")
        if not spec.noise >= 0:
            raise OptbenchError(f"noise must be >= 0, got {spec.noise}")
    for name, values in spec.hparams.items():
        if not values:
            raise OptbenchError(f"--{name.replace('_', '-')} needs at least one value")
    seen = {}
    for text in spec.optimizers:
        optimizer = parse_optimizer(text)
        same = (optimizer.family, optimizer.use_torch, repr(sorted(optimizer.resolved().items())))
        if same in seen:
            raise OptbenchError(f"optimizers '{seen[same]}' and '{text}' are the same setting; give it once")
        seen[same] = text
        for name, values in spec.hparams.items():   # names and values the optimizer accepts
            for value in values:
                parse_optimizer(f"{optimizer.family}:{name}={_format_value(value)}")


def _positive(name, value, whole=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok or (whole and int(value) != value):
        raise OptbenchError(f"{name} must be a {'whole ' if whole else ''}number > 0, got {value}")


def scaled_lr(rule: str, base_lr: float, batch_size: int, base_batch_size: int) -> float:
    ratio = batch_size / base_batch_size
    return {"linear": base_lr * ratio, "sqrt": base_lr * math.sqrt(ratio), "none": base_lr}[rule]


def default_lr(spec: SweepSpec, optimizer) -> float:
    """The lr a sweep starts from when neither --base-lr nor the optimizer spec gives one."""
    kind = task_kind(spec.task)
    if kind == "training":
        from .training import training_defaults
        defaults = training_defaults(optimizer)
    elif kind == "regression":
        defaults = {"lr": 0.03}     # linear_regression's default
    else:
        from ..objectives import get_surface
        from .surface import default_hparams
        defaults = default_hparams(get_surface(spec.task.partition(":")[2]), optimizer.family)
        momentum = optimizer.hparams.get("momentum", 0) or 0
        if optimizer.family == "sgd" and momentum > 0 and "lr" in defaults:
            # the surface defaults are tuned for plain SGD: keep the effective step lr/(1 - μ)
            defaults = {**defaults, "lr": defaults["lr"] * (1 - momentum)}
    return float(optimizer.resolved(defaults)["lr"])


def expand(spec: SweepSpec) -> list[dict]:
    """Every cell of the grid, fully resolved, each with its `key`; in a fixed order."""
    validate(spec)
    kind = task_kind(spec.task)
    b0 = spec.resolved_base_batch_size()
    names = sorted(spec.hparams)
    cells = []
    for text in spec.optimizers:
        optimizer = parse_optimizer(text)
        for values in itertools.product(*(spec.hparams[n] for n in names)):
            combo = dict(zip(names, values))
            base_lr = float(combo.get("lr", spec.base_lr if spec.base_lr is not None else
                                      optimizer.hparams.get("lr", default_lr(spec, optimizer))))
            for rule in (r for r in RULES if r in spec.lr_scales):
                for batch_size in sorted(set(spec.batch_sizes)):
                    lr = scaled_lr(rule, base_lr, batch_size, b0)
                    hparams = {**optimizer.hparams, **{k: v for k, v in combo.items() if k != "lr"}, "lr": lr}
                    resolved = {**optimizer.algorithm.defaults(), **hparams}
                    for seed in range(spec.seed, spec.seed + spec.seeds):
                        settings = {
                            "task": spec.task, "model": spec.model if kind == "training" else None,
                            "optimizer": optimizer.name, "family": optimizer.family,
                            "implementation": "torch" if optimizer.use_torch else "optbench",
                            "optimizer_spec": optimizer_text(optimizer, hparams),
                            "optimizer_hparams": _jsonable(resolved),
                            "grid_hparams": _jsonable({k: v for k, v in combo.items()}),
                            "lr_scale": rule, "batch_size": batch_size, "base_batch_size": b0,
                            "base_lr": base_lr, "lr": lr, "warmup_epochs": spec.warmup_epochs,
                            "epochs": spec.resolved_epochs(), "steps": spec.resolved_steps(), "seed": seed,
                            "noise": spec.noise if kind == "surface" else None,
                            "device": spec.device if kind == "training" else None,
                            "evaluations": spec.resolved_evaluations()}
                        cells.append({**settings, "key": cell_key(settings),
                                      "computation": cell_key(settings, NOT_COMPUTED)})
    return cells


# Labels and the spec text are how a cell was asked for, not what it is: they stay out of the key.
NOT_HASHED = ("optimizer", "optimizer_spec", "grid_hparams", "key", "computation")
# ...and the rule with its base pair only decide the lr, which is hashed itself: cells equal but for
# these (the base batch size under linear, sqrt and none) are one computation, listed under each rule.
NOT_COMPUTED = NOT_HASHED + ("lr_scale", "base_lr", "base_batch_size")


def cell_key(settings: dict, leave_out: tuple = NOT_HASHED) -> str:
    """A hash of the fully resolved settings: the same cell has the same key however it was asked
    for (flag order, list order, `momentum=0` or `momentum=0.0`, a preset or its expansion)."""
    hashed = _canonical({k: v for k, v in settings.items() if k not in leave_out})
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(value):
    """Containers as sorted-key dicts and lists, every number (but booleans) as a float."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_canonical(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def optimizer_text(optimizer, hparams: dict) -> str:
    """An optimizer spec that `parse_optimizer` reads back to exactly these hyperparameters."""
    head = optimizer.text.split(":")
    name = ":".join(head[:2]) if optimizer.use_torch else head[0]
    return f"{name}:" + ",".join(f"{k}={_format_value(v)}" for k, v in sorted(hparams.items()))


def _format_value(value) -> str:
    if isinstance(value, (tuple, list)):
        return "/".join(_format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def shard_cells(cells: list[dict], shard: tuple[int, int]) -> list[dict]:
    """Shard i of n (1-based): cells i-1, i-1+n, ...; the n shards cover every cell exactly once."""
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and 1 <= index <= count):
        raise OptbenchError(f"shard must be i/n with 1 <= i <= n, got {index}/{count}")
    return cells[index - 1::count]


# --- the folder: spec check, finished cells ------------------------------------------------------

def cell_path(folder: Path, key: str) -> Path:
    return Path(folder) / CELLS / f"{key}.parquet"


def check_folder(folder: Path, spec: SweepSpec, force: bool) -> None:
    """Refuse a folder holding a different sweep (unless force); then record this spec in it."""
    folder = Path(folder)
    if (folder / "meta.json").exists():
        meta = read_metadata(folder)
        if meta["kind"] != "sweep":
            raise OptbenchError(f"{folder} holds '{meta['kind']}' results, not a sweep; choose another --out")
        old = (meta.get("spec") or {}).get("grid", {})
        new = _jsonable(spec.grid())
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if changed and not force:
            first = changed[0]
            raise OptbenchError(
                f"{folder} holds a different sweep ({first}: {old.get(first)} -> {new.get(first)}"
                f"{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}); "
                "use a new --out, or --force to run this spec there (finished cells it shares are kept)")
    write_metadata(folder, "sweep", spec.to_dict(), spec.seed)


def finished_keys(folder: Path, cells: list[dict], force: bool) -> set[str]:
    """Keys of cells already on disk; a corrupt one is an error naming it (or, with force, deleted)."""
    done = set()
    for cell in cells:
        path = cell_path(folder, cell["key"])
        if not path.exists():
            continue
        try:
            _check_cell_file(path, cell["key"])
        except OptbenchError as error:
            if not force:
                raise OptbenchError(f"{error}; rerun with --force to redo that cell") from None
            path.unlink()
            continue
        done.add(cell["key"])
    return done


def _check_cell_file(path: Path, key: str) -> None:
    table = read_table(path, ["cell", "step"])
    if table.empty or (table["cell"] != key).any():
        raise OptbenchError(f"corrupt cell file {path}: it does not hold cell {key}")


def _finished_twin(folder: Path, cell: dict, all_cells: list[dict], done: set, todo: set) -> dict | None:
    """A finished cell of the grid with the same computation (in any shard), or None."""
    for other in all_cells:
        if other["computation"] != cell["computation"] or other["key"] in todo:
            continue
        path = cell_path(folder, other["key"])
        if other["key"] in done:
            return other
        if path.exists():   # another shard's cell: checked here, never deleted (that shard owns it)
            try:
                _check_cell_file(path, other["key"])
                return other
            except OptbenchError:
                continue
    return None


# --- running -------------------------------------------------------------------------------------

@dataclass
class SweepOutcome:
    cells: list            # the cells of this run (after sharding)
    computed: list         # keys finished now (computed, or copied from an identical cell)
    skipped: list          # keys already finished
    failed: dict           # key -> error message (no file written)
    table: pd.DataFrame    # every finished cell of the whole grid, merged
    summary: pd.DataFrame
    critical: pd.DataFrame
    shared: list = field(default_factory=list)   # keys of `computed` copied from an identical cell


def run_sweep(spec: SweepSpec, folder: Path, jobs: int = 1, shard: tuple[int, int] = (1, 1),
              force: bool = False, progress: Callable[[dict, str], None] | None = None) -> SweepOutcome:
    """Run the unfinished cells of this shard; then merge every finished cell of the grid.

    `progress(cell, status)` is called once per cell: status 'skipped', 'done' or 'failed: ...'.
    Cells of one computation (see the module docstring) are computed once: the first is run, the
    others are written from its table as soon as it finishes, or from a finished twin in the folder.
    """
    if not (isinstance(jobs, int) and jobs >= 1):
        raise OptbenchError(f"jobs must be a whole number >= 1, got {jobs}")
    folder = Path(folder)
    all_cells = expand(spec)
    cells = shard_cells(all_cells, shard)
    _check_cells_buildable(spec, cells)
    check_folder(folder, spec, force)
    done = finished_keys(folder, cells, force)
    todo = [c for c in cells if c["key"] not in done]
    for cell in cells:
        if cell["key"] in done and progress:
            progress(cell, "skipped")
    computed, failed, shared = [], {}, []

    def finish(cell, error, copied=False):
        if error is None:
            computed.append(cell["key"])
            if copied:
                shared.append(cell["key"])
        else:
            failed[cell["key"]] = error
        if progress:
            progress(cell, "done" if error is None else f"failed: {error}")
        _maybe_simulate_crash(len(computed))

    groups: dict[str, list[dict]] = {}
    for cell in todo:
        groups.setdefault(cell["computation"], []).append(cell)
    runs = []   # (the cell that is computed, the cells that copy its table)
    todo_keys = {c["key"] for c in todo}
    for group in groups.values():
        twin = _finished_twin(folder, group[0], all_cells, done, todo_keys)
        if twin is None:
            runs.append((group[0], group[1:]))
            continue
        for cell in group:
            finish(cell, copy_cell(folder, twin, cell), copied=True)

    def computed_run(first, copies, error):
        finish(first, error)
        for cell in copies:   # a failed computation fails its copies too: none is recorded as finished
            finish(cell, error if error is not None else copy_cell(folder, first, cell), copied=error is None)

    if jobs == 1 or len(runs) <= 1:
        for first, copies in runs:
            computed_run(first, copies, run_cell_to_file(first, str(folder), spec.data_dir))
    else:
        import multiprocessing
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(run_cell_to_file, first, str(folder), spec.data_dir): (first, copies)
                       for first, copies in runs}
            try:
                for future in as_completed(futures):
                    try:
                        error = future.result()
                    except Exception as crash:   # a worker died (killed, out of memory)
                        error = f"{type(crash).__name__}: {crash}"
                    computed_run(*futures[future], error)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    table, summary, critical = merge(folder, all_cells, spec)
    return SweepOutcome(cells, computed, sorted(done), failed, table, summary, critical, shared)


def _check_cells_buildable(spec: SweepSpec, cells: list[dict]) -> None:
    """Bad hyperparameter values (a negative momentum, a batch larger than the data) fail before any work."""
    probe = torch.zeros(2, requires_grad=True)
    for text in sorted({c["optimizer_spec"] for c in cells}):
        parse_optimizer(text).build([probe])
    if task_kind(spec.task) == "training" and cells:
        from .training import check_batch_size
        n_train = len(_dataset(spec.task, spec.data_dir).train[1])
        for b in sorted({c["batch_size"] for c in cells}):
            check_batch_size(b, n_train)
    elif task_kind(spec.task) == "regression":
        for b in sorted({c["batch_size"] for c in cells}):
            if b > 1000:
                raise OptbenchError(f"batch size {b} is larger than the 1000 regression samples")


def _maybe_simulate_crash(computed: int) -> None:
    """Testing hook: die like a power cut (SIGKILL, no cleanup) after N computed cells."""
    limit = os.environ.get(CRASH_AFTER_ENV)
    if limit and computed >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_cell_to_file(cell: dict, folder: str, data_dir: str | None = None) -> str | None:
    """Run one cell and write its table atomically; returns None, or the error message (no file)."""
    try:
        table = run_cell(cell, data_dir)
    except OptbenchError as error:
        return str(error)
    except Exception as error:   # a bug or a broken setting: reported, never recorded as finished
        return f"{type(error).__name__}: {error}"
    write_table(table, cell_path(Path(folder), cell["key"]))
    return None


def copy_cell(folder: Path, source: dict, target: dict) -> str | None:
    """Write `source`'s finished table as `target`'s (the same computation, other labels);
    returns None, or the error message (no file)."""
    try:
        table = read_table(cell_path(folder, source["key"]))
        measured = table.drop(columns=list(_setting_columns(source)))
        write_table(_labelled(measured, target), cell_path(folder, target["key"]))
    except (OptbenchError, KeyError, OSError) as error:
        return f"copying the identical cell {source['key']}: {error}"
    return None


def run_cell(cell: dict, data_dir: str | None = None) -> pd.DataFrame:
    """One cell's table: one row per step, settings and cell-level measurements as columns."""
    kind = task_kind(cell["task"])
    if kind == "training":
        _dataset(cell["task"], data_dir)     # loading the data is not the cell's time
    started = time.perf_counter()
    rows, extra = {"training": _training_cell, "regression": _regression_cell,
                   "surface": _surface_cell}[kind](cell, data_dir)
    wall_time = time.perf_counter() - started
    rows["samples"] = rows["step"] * cell["batch_size"]
    rows["wall_time"] = wall_time
    for name, value in extra.items():
        rows[name] = value
    if "samples_per_s" not in extra:
        rows["samples_per_s"] = rows["samples"].max() / wall_time if wall_time > 0 else math.nan
    return _labelled(rows, cell)


def _setting_columns(cell: dict) -> dict:
    """The columns that say which cell a table belongs to, first in every cell table."""
    return {"cell": cell["key"], "task": cell["task"], "optimizer": cell["optimizer"],
            "family": cell["family"], "optimizer_spec": cell["optimizer_spec"],
            **{name: _column_value(v) for name, v in cell["grid_hparams"].items()},
            "lr_scale": cell["lr_scale"], "batch_size": cell["batch_size"],
            "base_batch_size": cell["base_batch_size"], "base_lr": cell["base_lr"], "lr": cell["lr"],
            "seed": cell["seed"]}


def _labelled(measured: pd.DataFrame, cell: dict) -> pd.DataFrame:
    rows = measured.copy()
    for position, (name, value) in enumerate(_setting_columns(cell).items()):
        rows.insert(position, name, value)
    return rows


def _column_value(value):
    return "/".join(map(str, value)) if isinstance(value, list) else value


@lru_cache(maxsize=4)
def _dataset(task: str, data_dir: str | None):
    from ..data import load
    return load(task, data_dir)


def _training_cell(cell: dict, data_dir):
    from ..models import build_model
    from .training import TrainSpec, resolve_device, train

    dataset = _dataset(cell["task"], data_dir)
    n_train = len(dataset.train[1])
    steps_per_epoch = n_train // cell["batch_size"]
    epochs, max_steps = cell["epochs"], cell["steps"]
    if max_steps is not None:
        needed = math.ceil(max_steps / steps_per_epoch)
        epochs = needed if epochs is None else min(epochs, needed)
    budget = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    spec = TrainSpec(optimizer=cell["optimizer_spec"], task=cell["task"], model=cell["model"],
                     epochs=epochs, batch_size=cell["batch_size"], warmup_epochs=cell["warmup_epochs"],
                     device=cell["device"], seed=cell["seed"], data_dir=data_dir, max_steps=max_steps,
                     eval_every_steps=max(1, round(budget / cell["evaluations"])))
    result = train(spec, dataset)
    steps = result.steps
    rows = pd.DataFrame({"step": steps["step"].to_numpy() + 1, "epoch": steps["epoch"].to_numpy(),
                         "loss": steps["loss"].to_numpy(), "step_lr": steps["lr"].to_numpy()})
    # an evaluation after k updates sits on step k; a diverged run's last one (after the first
    # non-finite loss, where the step table ends) on its last step
    evaluated = result.evaluations.assign(step=result.evaluations["step"].clip(upper=rows["step"].max()))
    evaluated = evaluated.drop_duplicates("step", keep="last").set_index("step")
    rows["eval_loss"] = rows["step"].map(evaluated["val_loss"]).astype(float)
    rows["eval_accuracy"] = rows["step"].map(evaluated["val_accuracy"]).astype(float)
    summary = result.summary.iloc[0]

    # gradient noise scale at the initial and the final weights, on a fixed subset of the training split
    device = resolve_device(cell["device"])
    subset = torch.randperm(n_train, generator=torch.Generator().manual_seed(0))[:2048]
    images, labels = dataset.train[0][subset].to(device), dataset.train[1][subset].to(device)
    torch.manual_seed(cell["seed"])      # the same initial weights `train` started from
    network = build_model(cell["model"], dataset.input_shape, dataset.num_classes).to(device)
    start = noise_scale.for_classifier(network, images, labels, seed=cell["seed"])
    end = math.nan
    if not summary["diverged"]:
        network.load_state_dict(result.state_dict)
        end = noise_scale.for_classifier(network, images, labels, seed=cell["seed"]).b_simple
    return rows, {"diverged": bool(summary["diverged"]), "samples_per_s": float(summary["samples_per_s"]),
                  "train_time": float(summary["train_time"]),
                  "noise_scale_start": start.b_simple, "noise_scale_end": end}


def _regression_cell(cell: dict, data_dir):
    from .regression import linear_regression, make_linear_data

    data = make_linear_data(seed=cell["seed"])
    n = len(data.y)
    steps_per_epoch = math.ceil(n / cell["batch_size"])
    epochs = cell["epochs"] or 3
    if cell["steps"] is not None:
        epochs = math.ceil(cell["steps"] / steps_per_epoch)
    table = linear_regression(cell["optimizer_spec"], data, cell["batch_size"], epochs, cell["seed"])
    if cell["steps"] is not None:
        table = table.iloc[:cell["steps"]]
    rows = pd.DataFrame({"step": table["step"].to_numpy() + 1, "epoch": table["epoch"].to_numpy() + 1,
                         "loss": table["loss"].to_numpy(), "step_lr": table["lr"].to_numpy(),
                         "eval_loss": table["full_loss"].to_numpy(), "eval_accuracy": math.nan})
    design = torch.cat([data.X, torch.ones(n, 1, dtype=data.X.dtype)], dim=1)

    def measure(weights):
        residual_weights = torch.tensor(weights, dtype=torch.float64)

        def batch_gradient(batch, generator):
            chosen = torch.randperm(n, generator=generator)[:batch]
            residual = design[chosen] @ residual_weights - data.y[chosen]
            return 2 * (residual[:, None] * design[chosen]).mean(dim=0)
        return noise_scale.estimate(batch_gradient, 10, n, 64, cell["seed"], population=n, big_repeats=1).b_simple

    diverged = bool(table["diverged"].any())
    last = table.iloc[-1]
    weights = [last[f"w{i}"] for i in range(data.X.shape[1])] + [last["b"]]
    return rows, {"diverged": diverged, "noise_scale_start": measure([0.0] * (data.X.shape[1] + 1)),
                  "noise_scale_end": math.nan if diverged else measure(weights)}


def _surface_cell(cell: dict, data_dir):
    from ..objectives import get_surface
    from .surface import default_hparams, run_surface

    surface = get_surface(cell["task"].partition(":")[2])
    optimizer = parse_optimizer(cell["optimizer_spec"])
    steps = cell["steps"] or surface.steps
    sigma = cell["noise"] / math.sqrt(cell["batch_size"])    # batch B: noise variance / B
    run = run_surface(optimizer, surface, torch.tensor([surface.start], dtype=torch.float64), steps,
                      noise=sigma, seed=cell["seed"], defaults=default_hparams(surface, optimizer.family),
                      record_every=1)
    path = run.trajectory
    moved = path[path["step"] >= 1]
    rows = pd.DataFrame({"step": moved["step"].to_numpy(), "epoch": moved["step"].to_numpy(),
                         "loss": moved["loss"].to_numpy(), "step_lr": cell["lr"],
                         "eval_loss": moved["loss"].to_numpy(), "eval_accuracy": math.nan})
    trace = surface.dim * cell["noise"] ** 2

    def exact(grad_norm):
        return trace / grad_norm ** 2 if grad_norm > 0 else math.inf
    diverged = bool(run.metrics["diverged"].iloc[0])
    return rows, {"diverged": diverged, "noise_scale_start": exact(float(path["grad_norm"].iloc[0])),
                  "noise_scale_end": math.nan if diverged else exact(float(path["grad_norm"].iloc[-1]))}


# --- merging and analysis --------------------------------------------------------------------------

def merge(folder: Path, cells: list[dict], spec: SweepSpec):
    """(table, summary, critical) from every finished cell of `cells` in `folder`, written there too."""
    folder = Path(folder)
    parts = [read_table(cell_path(folder, c["key"])) for c in cells if cell_path(folder, c["key"]).exists()]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    summary = summarize(table, spec.target_accuracy, spec.target_loss)
    critical = critical_batch_sizes(summary, task_kind(spec.task))
    if parts:
        write_table(table, folder / "sweep.parquet")
        write_table(summary, folder / "summary.parquet")
        write_table(critical, folder / "critical.parquet")
    return table, summary, critical


SETTING_COLUMNS = ["cell", "task", "optimizer", "family", "optimizer_spec", "lr_scale", "batch_size",
                   "base_batch_size", "base_lr", "lr", "seed"]


def summarize(table: pd.DataFrame, target_accuracy=None, target_loss=None) -> pd.DataFrame:
    """One row per cell: final and best metrics, time, throughput, steps and samples to the target."""
    if table.empty:
        return pd.DataFrame()
    rows = []
    for key, cell in table.groupby("cell", sort=False):
        first = cell.iloc[0]
        evaluated = cell[cell["eval_loss"].notna() | cell["eval_accuracy"].notna()]
        steps = steps_to_target(evaluated, target_accuracy, target_loss)
        setting = {c: first[c] for c in cell.columns
                   if c in SETTING_COLUMNS or c not in _PER_STEP and c not in _PER_CELL}
        rows.append({**setting,
                     "steps": int(cell["step"].max()), "samples": int(cell["samples"].max()),
                     "final_loss": evaluated["eval_loss"].iloc[-1] if len(evaluated) else math.nan,
                     "final_accuracy": evaluated["eval_accuracy"].iloc[-1] if len(evaluated) else math.nan,
                     "best_accuracy": evaluated["eval_accuracy"].max(),
                     "steps_to_target": steps, "samples_to_target": steps * first["batch_size"],
                     "target_accuracy": target_accuracy, "target_loss": target_loss,
                     **{c: first[c] for c in _PER_CELL if c in cell.columns}})
    return pd.DataFrame(rows)


_PER_STEP = {"step", "epoch", "loss", "step_lr", "eval_loss", "eval_accuracy", "samples"}
_PER_CELL = ["wall_time", "train_time", "samples_per_s", "diverged", "noise_scale_start", "noise_scale_end"]


def steps_to_target(evaluated: pd.DataFrame, target_accuracy=None, target_loss=None) -> float:
    """Steps until every given target holds, interpolated linearly between evaluations; NaN if never.

    Training tasks evaluate about `SweepSpec.evaluations` times per cell (every step for the default
    400-step budget), so the crossing is resolved to a step or a few.
    """
    if target_accuracy is None and target_loss is None:
        return math.nan
    crossings = []
    for column, target, sign in (("eval_accuracy", target_accuracy, 1), ("eval_loss", target_loss, -1)):
        if target is None:
            continue
        values = sign * evaluated[column].to_numpy(dtype=float)
        steps = evaluated["step"].to_numpy(dtype=float)
        hit = np.flatnonzero(np.nan_to_num(values, nan=-np.inf) >= sign * target)
        if not len(hit):
            return math.nan
        i = hit[0]
        if i == 0 or not np.isfinite(values[i - 1]):
            crossings.append(steps[i])
        else:
            fraction = (sign * target - values[i - 1]) / (values[i] - values[i - 1])
            crossings.append(steps[i - 1] + fraction * (steps[i] - steps[i - 1]))
    return float(max(crossings))


def fit_critical_batch(batch_sizes, steps) -> tuple[float, float, bool]:
    """(S_min, B_crit, at_edge) for steps = S_min (1 + B_crit / B), least squares on log(steps).

    For each B_crit on a fine log grid, log S_min has a closed form (the mean residual); the best
    B_crit wins. `at_edge` says it hit the grid's end (the data do not bracket it).
    """
    b = np.asarray(batch_sizes, dtype=float)
    log_steps = np.log(np.asarray(steps, dtype=float))
    grid = np.logspace(np.log10(b.min()) - 2, np.log10(b.max()) + 2, 2001)
    shapes = np.log1p(grid[:, None] / b[None, :])              # [grid, points]
    log_s_min = (log_steps[None, :] - shapes).mean(axis=1)
    errors = ((log_steps[None, :] - shapes - log_s_min[:, None]) ** 2).sum(axis=1)
    best = int(np.argmin(errors))
    return float(np.exp(log_s_min[best])), float(grid[best]), best in (0, len(grid) - 1)


def critical_batch_sizes(summary: pd.DataFrame, kind: str = "training") -> pd.DataFrame:
    """Per optimizer (and extra hyperparameters): the critical batch size from the steps-to-target
    curve, per rule and for the best rule at each batch size, next to the measured noise scale."""
    if summary.empty or summary["steps_to_target"].isna().all():
        return pd.DataFrame()
    fixed = set(SETTING_COLUMNS) | set(_PER_CELL) | {"steps", "samples", "final_loss", "final_accuracy",
                                                     "best_accuracy", "steps_to_target", "samples_to_target",
                                                     "target_accuracy", "target_loss"}
    extra = [c for c in summary.columns if c not in fixed]
    rows = []
    for group_key, group in summary.groupby(["optimizer", *extra], sort=False, dropna=False):
        per_rule = _median_steps(group, ["lr_scale", "batch_size"])
        curves = {rule: part.set_index("batch_size")["steps_to_target"]
                  for rule, part in per_rule.groupby("lr_scale", sort=False)}
        curves["best rule"] = per_rule.groupby("batch_size")["steps_to_target"].min()
        b0 = group["base_batch_size"].iloc[0]
        at_b0 = group[group["batch_size"] == b0] if (group["batch_size"] == b0).any() \
            else group[group["batch_size"] == group["batch_size"].min()]
        for rule, curve in curves.items():
            curve = curve.dropna()
            s_min = b_crit = math.nan
            edge = False
            if len(curve) >= 3:
                s_min, b_crit, edge = fit_critical_batch(curve.index, curve.values)
            names = ["optimizer", *extra]
            keys = group_key if isinstance(group_key, tuple) else (group_key,)
            rows.append({**dict(zip(names, keys)), "lr_scale": rule, "points": len(curve),
                         "s_min": s_min, "e_min": s_min * b_crit, "critical_batch_size": b_crit,
                         "at_edge": edge, "method": CRITICAL_METHOD,
                         "noise_scale_start": float(at_b0["noise_scale_start"].median()),
                         "noise_scale_end": float(at_b0["noise_scale_end"].median()),
                         "noise_method": NOISE_METHOD[kind]})
    return pd.DataFrame(rows)


def _median_steps(group: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Median over seeds; a setting where any seed missed the target counts as missed."""
    def median(values):
        return math.nan if values.isna().any() else float(values.median())
    return group.groupby(by, sort=False)["steps_to_target"].agg(median).reset_index()


def load_folder(folder: Path) -> tuple[SweepSpec, list[dict]]:
    """The spec and the cells of a sweep folder (for `optbench plot`)."""
    meta = read_metadata(folder)
    if meta["kind"] != "sweep":
        raise OptbenchError(f"{folder} holds '{meta['kind']}' results, not a sweep")
    spec = SweepSpec.from_dict(meta["spec"])
    return spec, expand(spec)
