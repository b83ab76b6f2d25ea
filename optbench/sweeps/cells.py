"""The grid of a sweep: typed, frozen cells, their content keys, and shards.

A `SweepSpec` is crossed as a grid: optimizers x extra hyperparameter lists x lr-scaling rules x
batch sizes x seeds. Each point is a `Cell`, fully resolved (every optimizer hyperparameter, the
lr actually used, the budget, the seed, the torch threads) and keyed by a hash of those settings,
so the key does not depend on the order in which lists or flags were given.

Cells that differ only in how they were asked for resolve to the same computation (the base batch
size has the same lr under every rule): `Cell.computation` is the hash without the rule, base lr
and base batch size, and each computation runs once; its table is written under every cell of it.

A class from outside optbench is hashed with its `Origin.cache_key()` (class, package version, source
hash): an edited optimizer file or an upgraded package makes new cells, never reuses stale ones.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, fields
from functools import cached_property

import pandas as pd

from ..cells import content_key
from ..errors import OptbenchError
from ..specs import OptimizerSpec, parse_optimizer
from ..tasks import TaskKind
from ..tasks.problem import TRAINED_KINDS
from ..values import format_value
from .adapters import default_lr
from .columns import SETTING_COLUMNS
from .spec import RULES, SweepSpec, rule_lrs, validate


@dataclass(frozen=True)
class Cell:
    """One point of the grid: one setting, one seed, every value resolved."""

    task: str
    model: str | None  # training tasks only
    optimizer: str  # label: the optimizer as the user gave it
    family: str  # the algorithm's registry name
    implementation: str  # 'optbench' or 'torch'
    optimizer_spec: str  # text that parse_optimizer reads back to exactly `optimizer_hparams`
    optimizer_hparams: tuple  # ((name, value), ...) sorted: every hyperparameter the optimizer gets
    grid_hparams: tuple  # ((name, value), ...): the values of the extra grid axes (labels)
    lr_scale: str
    batch_size: int
    base_batch_size: int
    base_lr: float
    lr: float
    warmup_epochs: int
    epochs: int | None
    steps: int | None
    seed: int
    noise: float | None  # surface tasks only
    device: str | None  # training tasks only
    evaluations: int | None  # training tasks only
    threads: int
    origin: tuple | None = None  # ((name, value), ...) of `Origin.cache_key()` for an external class

    @cached_property
    def key(self) -> str:
        """A hash of the resolved settings (`cells.keys.content_key`): the same cell has the same key
        however it was asked for (flag order, list order, a preset or its expansion); values keep
        their type, so `momentum=0` and `momentum=0.0` are two cells and every seed is its own."""
        return _digest(self, NOT_HASHED)

    @cached_property
    def computation(self) -> str:
        return _digest(self, NOT_COMPUTED)

    @property
    def label(self) -> str:
        return f"{self.optimizer} {self.lr_scale} B={self.batch_size} seed={self.seed}"

    def setting_columns(self) -> dict:
        """The columns that say which cell a table belongs to, first in every cell table."""
        labels = {
            "cell": self.key,
            "task": self.task,
            "optimizer": self.optimizer,
            "family": self.family,
            "optimizer_spec": self.optimizer_spec,
            "lr_scale": self.lr_scale,
            "batch_size": self.batch_size,
            "base_batch_size": self.base_batch_size,
            "base_lr": self.base_lr,
            "lr": self.lr,
            "seed": self.seed,
        }
        axes = {name: _column_value(value) for name, value in self.grid_hparams}
        position = SETTING_COLUMNS.index("lr_scale")
        ordered = SETTING_COLUMNS[:position] + list(axes) + SETTING_COLUMNS[position:]
        return {name: labels[name] if name in labels else axes[name] for name in ordered}

    def labelled(self, measured: pd.DataFrame) -> pd.DataFrame:
        """`measured` (per-step rows) with this cell's setting columns in front."""
        rows = measured.copy()
        for position, (name, value) in enumerate(self.setting_columns().items()):
            rows.insert(position, name, value)
        return rows


# Labels and the spec text are how a cell was asked for, not what it is: they stay out of the key.
NOT_HASHED = ("optimizer", "optimizer_spec", "grid_hparams")
# ...and the rule with its base pair only decide the lr, which is hashed itself: cells equal but for
# these (the base batch size under linear, sqrt and none) are one computation, listed under each rule.
NOT_COMPUTED = NOT_HASHED + ("lr_scale", "base_lr", "base_batch_size")


def _digest(cell: Cell, leave_out: tuple) -> str:
    settings = {f.name: getattr(cell, f.name) for f in fields(cell) if f.name not in leave_out}
    settings["optimizer_hparams"] = dict(settings["optimizer_hparams"])
    if settings.get("origin") is None:
        settings.pop("origin", None)
    else:
        settings["origin"] = dict(settings["origin"])
    return content_key(settings)


def _column_value(value):
    return "/".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def expand(spec: SweepSpec) -> list[Cell]:
    """Every cell of the grid, fully resolved, in a fixed order; a bad spec raises OptbenchError."""
    validate(spec)
    kind = spec.kind
    b0 = spec.resolved_base_batch_size()
    names = sorted(spec.hparams)
    cells = []
    for text in spec.optimizers:
        optimizer = parse_optimizer(text)
        origin = tuple(sorted(optimizer.origin.cache_key().items())) if optimizer.origin is not None else None
        for values in itertools.product(*(spec.hparams[n] for n in names)):
            combo = dict(zip(names, values, strict=False))
            base_lr = float(
                combo.get(
                    "lr",
                    spec.base_lr
                    if spec.base_lr is not None
                    else optimizer.hparams.get("lr", default_lr(spec, optimizer)),
                )
            )
            axes = tuple((name, _frozen(value)) for name, value in combo.items())
            for rule in (r for r in RULES if r in spec.lr_scales):
                for batch_size, lr in (
                    (b, lr) for b in sorted(set(spec.batch_sizes)) for lr in rule_lrs(rule, base_lr, b, b0)
                ):
                    hparams = {**optimizer.hparams, **{k: v for k, v in combo.items() if k != "lr"}, "lr": lr}
                    resolved = {**optimizer.algorithm.defaults(), **hparams}
                    for seed in spec.seed_values():
                        cells.append(
                            Cell(
                                task=spec.task,
                                model=spec.model if kind is TaskKind.CLASSIFICATION else None,
                                optimizer=optimizer.name,
                                family=optimizer.family,
                                implementation="torch" if optimizer.use_torch else "optbench",
                                optimizer_spec=optimizer_text(optimizer, hparams),
                                optimizer_hparams=tuple(sorted((k, _frozen(v)) for k, v in resolved.items())),
                                grid_hparams=axes,
                                lr_scale=rule,
                                batch_size=batch_size,
                                base_batch_size=b0,
                                base_lr=base_lr,
                                lr=lr,
                                warmup_epochs=spec.warmup_epochs,
                                epochs=spec.epochs,
                                steps=spec.resolved_steps(),
                                seed=seed,
                                noise=spec.noise if kind is TaskKind.SURFACE else None,
                                device=spec.device if kind in TRAINED_KINDS else None,
                                evaluations=spec.resolved_evaluations(),
                                threads=spec.threads,
                                origin=origin,
                            )
                        )
    return cells


def optimizer_text(optimizer: OptimizerSpec, hparams: dict) -> str:
    """An optimizer spec that `parse_optimizer` reads back to exactly these hyperparameters."""
    if optimizer.origin is not None or optimizer.text.split(":")[0].lower() == "lookahead":
        return dataclasses.replace(optimizer, hparams=hparams).to_text()  # 'module:Class', inner=
    head = optimizer.text.split(":")
    name = ":".join(head[:2]) if optimizer.use_torch else head[0]
    return f"{name}:" + ",".join(f"{k}={format_value(v)}" for k, v in sorted(hparams.items()))


def shard_cells(cells: list[Cell], shard: tuple[int, int]) -> list[Cell]:
    """Shard i of n (1-based): cells i-1, i-1+n, ...; the n shards cover every cell exactly once."""
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and 1 <= index <= count):
        raise OptbenchError(f"shard must be i/n with 1 <= i <= n, got {index}/{count}")
    return cells[index - 1 :: count]
