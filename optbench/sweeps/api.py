"""`sweep(spec, folder)`: the batch-size and lr-scaling study as a Python call.

    from optbench.sweeps import SweepSpec, sweep
    result = sweep(SweepSpec(task="surface:elliptic", batch_sizes=(1, 4, 16), steps=50), "runs/s1")
    result.summary            # one row per cell; result.table: one row per step; result.critical
    result.save()             # the merged tables, into the folder (saving never draws)
    figures = result.plot()   # {name: matplotlib Figure}; optbench.load("runs/s1") reads it back

Everything is checked before anything is written (`SweepPlan.prepare`); then every cell is saved
the moment it finishes (`SweepPlan.run`), so a rerun of the same call skips finished cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..cells import DONE, SHARED, SKIPPED, CellStore, Interrupted, Local, schedule
from ..cells.schedule import Executor
from ..errors import OptbenchError
from ..experiments.result import FLAG, KEY, MEASURE, TEXT, Result, TableSchema, check_table, read_tables
from ..progress import Progress
from ..results import (
    claim_folder,
    output_folder,
    read_metadata,
    remove_outputs,
    write_metadata,
    write_table,
)
from .adapters import check_runnable
from .analysis import critical_batch_sizes, summarize
from .cells import Cell, expand, shard_cells
from .run import TABLE, SweepJob, plan_groups
from .spec import SweepSpec

TABLES = ("sweep", "summary", "critical")
_CELL = {"cell": TEXT, "optimizer": TEXT, "batch_size": KEY, "seed": KEY}
SCHEMAS = [  # the order of TABLES; the merged tables a sweep folder without cells holds
    TableSchema(TABLE, {**_CELL, "step": KEY, "loss": MEASURE, "diverged": FLAG}),
    TableSchema("summary", {**_CELL, "final_loss": MEASURE, "diverged": FLAG}),
    TableSchema("critical", {}, required=False),
]


@dataclass(repr=False)
class SweepResult(Result):
    """The tidy tables of a sweep (every finished cell of the whole grid, all shards) and what this
    run did: keys computed (here, or copied from an identical cell: `shared`), skipped (finished
    before, or by another process meanwhile), and failed (key -> message; no file written)."""

    kind = "sweep"

    spec: SweepSpec
    folder: Path
    cells: list[Cell]  # this run's cells (after sharding)
    table: pd.DataFrame  # one row per optimizer step of every finished cell
    summary: pd.DataFrame  # one row per finished cell
    critical: pd.DataFrame  # the critical batch size per optimizer setting and rule
    computed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    shared: list = field(default_factory=list)

    def plot(self) -> dict:
        """{file stem: matplotlib Figure} for every figure of the sweep (none for an empty table)."""
        # imported when drawing, so that running a sweep never imports matplotlib
        from ..plots.sweeps import figures

        return figures(self.table, self.summary, self.critical)

    @property
    def meta(self) -> dict:
        return self.spec.to_dict()

    @property
    def seed(self) -> int:
        return self.spec.seed

    def tables(self) -> dict[str, pd.DataFrame]:
        return dict(zip(TABLES, (self.table, self.summary, self.critical), strict=True))

    def save(self, folder=None, force: bool = False) -> Path:
        """Write sweep/summary/critical.parquet into the sweep's folder, or into `folder` with a
        meta.json (refused if it holds another run, unless `force`); returns the folder. Earlier
        tables and figures there are removed first (an earlier, larger spec's must not stay behind);
        nothing is written for an empty table. Draws nothing."""
        target = Path(folder) if folder is not None else self.folder
        if self.table.empty:
            return target
        with CellStore(target).folder_lock():
            if target != self.folder:
                claim_folder(target, self.kind, self.meta, self.seed, force)
                write_metadata(target, self.kind, self.meta, self.seed)
            remove_outputs(target)
            for name, table in self.tables().items():
                write_table(table, target / f"{name}.parquet")
        return target

    @classmethod
    def load(cls, folder) -> SweepResult:
        """The tables of a sweep folder, merged in memory from its finished cells (every shard), or
        read from its merged tables when it has no cells; writes nothing. OptbenchError for a folder
        that holds no sweep, or no finished cell yet."""
        folder = Path(folder)
        meta = read_metadata(folder)
        if meta["kind"] != "sweep":
            raise OptbenchError(f"{folder} holds '{meta['kind']}' results, not a sweep")
        if not isinstance(meta.get("spec"), dict):
            raise OptbenchError(f"corrupt {folder / 'meta.json'}: no sweep spec recorded")
        spec = SweepSpec.from_dict(meta["spec"])
        cells = expand(spec)
        store = CellStore(folder)
        if store.cells.is_dir():
            result = _merged(spec, folder, cells, store)
        else:
            tables = read_tables(folder, meta, SCHEMAS)
            foreign = set(tables[TABLE]["cell"]) - {cell.key for cell in cells}
            if foreign:
                raise OptbenchError(
                    f"{folder / 'sweep.parquet'} holds cell {sorted(foreign)[0]}, which its meta.json "
                    "spec does not make: a table from another sweep"
                )
            made = tables[TABLE]["cell"].nunique()
            if len(tables["summary"]) != made:
                raise OptbenchError(
                    f"{folder / 'summary.parquet'} holds {len(tables['summary']):,} row(s) where "
                    f"sweep.parquet holds {made:,} cell(s): the table is cut or damaged"
                )
            result = cls(
                spec,
                folder,
                cells,
                *(table if table is not None else pd.DataFrame() for table in tables.values()),
            )
        if result.table.empty:
            raise OptbenchError(f"{folder} holds no finished sweep cell yet: nothing to draw")
        return result


@dataclass
class SweepPlan:
    """A checked sweep, ready to run: nothing has been written yet."""

    spec: SweepSpec
    folder: Path | None
    all_cells: list[Cell]
    cells: list[Cell]
    executor: Executor
    force: bool

    @classmethod
    def prepare(
        cls,
        spec: SweepSpec,
        folder=None,
        jobs: int = 1,
        shard: tuple[int, int] = (1, 1),
        force: bool = False,
        executor: Executor | None = None,
    ) -> SweepPlan:
        """Check the spec, the data, every optimizer and the folder; raises OptbenchError naming the
        first problem. Reads only. `executor` (default `Local(jobs)`) runs the cells."""
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise OptbenchError(f"jobs must be a whole number >= 1, got {jobs}")
        all_cells = expand(spec)
        cells = shard_cells(all_cells, shard)
        check_runnable(spec, cells)
        if folder is not None:
            CellStore(folder).check(
                "sweep", spec.to_dict(), spec.seed, force, identity, [c.key for c in cells]
            )
        folder = Path(folder) if folder is not None else None
        return cls(spec, folder, all_cells, cells, executor or Local(jobs), force)

    def run(self, progress: Callable[[Progress], None] | None = None) -> SweepResult:
        """Compute the unfinished cells, then merge every finished cell of the grid.

        `progress` gets a `Progress` on the bar "sweep" once per cell of this run, its status the
        cell's outcome ('skipped', 'done', 'shared' or 'failed') and label; `result.failed` has the
        messages. SIGINT/SIGTERM raise `cells.Interrupted` once the workers are stopped.
        """
        folder = output_folder(self.folder, "sweep")
        by_key = {cell.key: cell for cell in self.cells}
        statuses: dict[str, str] = {}

        def report(key: str, status: str) -> None:
            first = key not in statuses
            statuses[key] = status
            if progress and first:
                outcome = status.split(":")[0]
                progress(Progress("sweep", len(statuses), len(by_key), f"{outcome}: {by_key[key].label}"))

        with CellStore(folder) as store:
            store.open("sweep", self.spec.to_dict(), self.spec.seed, self.force, identity)
            todo = []
            for cell in self.cells:
                if store.finished(cell.key):
                    report(cell.key, SKIPPED)
                else:
                    todo.append(cell)
            groups = plan_groups(todo, self.all_cells)
            try:
                schedule(
                    folder, groups, SweepJob(self.spec.threads, self.spec.data_dir), self.executor, report
                )
            except Interrupted as stop:
                stop.finished = sum(store.finished(c.key) for c in self.cells)
                stop.total = len(self.cells)
                raise
        result = _merged(self.spec, folder, self.all_cells, store)
        result.cells = self.cells  # this run's share of the grid, whose table `result` merges
        result.skipped = [k for k, s in statuses.items() if s == SKIPPED]
        result.shared = [k for k, s in statuses.items() if s == SHARED]
        result.failed = {k: s.removeprefix("failed: ") for k, s in statuses.items() if s.startswith("failed")}
        result.computed = [k for k, s in statuses.items() if s in (DONE, SHARED)]
        return result


def sweep(
    spec: SweepSpec | None = None,
    folder=None,
    jobs: int = 1,
    shard: tuple[int, int] = (1, 1),
    force: bool = False,
    progress: Callable[[Progress], None] | None = None,
    executor: Executor | None = None,
    **settings,
) -> SweepResult:
    """Run a sweep into `folder` (default results/sweep-<timestamp>/) and return its tables.

    spec: a `SweepSpec`, or None to build one from `settings`, the CLI's options as keywords in its
    text forms (`SweepSpec.from_settings`): `sweep(task="digits", batch_sizes=[16, 64],
    lr_scales="linear,none", optimizers=["momentum", "adam:lr=0.01"], steps=60, lr="1e-3:1e-1:5")`.
    Unset targets take the task's (digits: validation accuracy 0.9), as the CLI does.
    jobs: worker processes; shard (i, n): run every n-th cell from the i-th, for array jobs writing
    into one shared folder; force: run a changed spec in a folder holding another (shared finished
    cells are kept) and redo corrupt cells. Raises OptbenchError before writing anything if the
    spec, the data, an optimizer or the folder is wrong; `cells.Interrupted` on SIGINT/SIGTERM.
    executor: where cells run (default `cells.Local(jobs)`; `cells.Submitit(...)` for Slurm).
    """
    if spec is None:
        spec = SweepSpec.from_settings(**settings)
    elif settings:
        raise OptbenchError(f"give a SweepSpec or settings, not both (got {', '.join(settings)})")
    return SweepPlan.prepare(spec, folder, jobs, shard, force, executor).run(progress)


def load(folder) -> SweepResult:
    """`SweepResult.load(folder)`."""
    return SweepResult.load(folder)


def identity(spec: dict, seed) -> dict:
    """What makes two sweeps the same in one folder: the settings that decide the cells (not the
    analysis targets, the worker count or the data folder)."""
    return spec.get("grid", {})


def _merged(spec: SweepSpec, folder: Path, cells: list[Cell], store: CellStore) -> SweepResult:
    """Every finished cell of `cells` as one table, in grid order."""
    parts = []
    for cell in cells:
        tables = store.read(cell.key)
        if tables is not None:
            check_table(store.table_path(cell.key, TABLE), tables[TABLE], SCHEMAS[0])
            if set(tables[TABLE]["cell"]) != {cell.key}:
                raise OptbenchError(
                    f"{store.table_path(cell.key, TABLE)} holds the rows of cell(s) "
                    f"{', '.join(sorted(map(str, set(tables[TABLE]['cell']))))}, not {cell.key}: "
                    "a table this sweep did not make"
                )
            parts.append(tables[TABLE])
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    summary = summarize(table, *spec.resolved_targets())
    critical = critical_batch_sizes(summary, spec.kind)
    return SweepResult(spec, folder, cells, table, summary, critical)
