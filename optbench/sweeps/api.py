"""`sweep(spec, folder)`: the batch-size and lr-scaling study as a Python call.

    from optbench.sweeps import SweepSpec, sweep
    result = sweep(SweepSpec(task="surface:elliptic", batch_sizes=(1, 4, 16), steps=50), "runs/s1")
    result.summary            # one row per cell; result.table: one row per step; result.critical
    result.save(formats=("png",))   # the merged tables and the figures, into the folder
    figures = result.plot()   # {name: matplotlib Figure}

Everything is checked before anything is written (`SweepPlan.prepare`); then every cell is saved
the moment it finishes (`SweepPlan.run`), so a rerun of the same call skips finished cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import OptbenchError
from ..results import output_folder, read_metadata, read_table, remove_outputs, write_metadata, write_table
from .adapters import check_runnable
from .analysis import critical_batch_sizes, summarize
from .cells import Cell, expand, shard_cells
from .run import DONE, SHARED, SKIPPED, Outcome, SweepInterrupted, plan_runs, run_cells
from .spec import SweepSpec
from .store import SweepStore

TABLES = ("sweep", "summary", "critical")


@dataclass
class SweepResult:
    """The tidy tables of a sweep (every finished cell of the whole grid, all shards) and what this
    run did: keys computed (here, or copied from an identical cell: `shared`), skipped (finished
    before, or by another process meanwhile), and failed (key -> message; no file written)."""

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

    def save(self, folder=None, formats=()) -> list[Path]:
        """Write sweep/summary/critical.parquet and the figures in `formats` ('png', 'pdf', 'svg')
        into the sweep's folder (or into `folder`, with a meta.json so `optbench plot` redraws it);
        returns the paths written. Nothing is written for an empty table."""
        if self.table.empty:
            return []
        from ..plots.style import save  # see plot()

        target = Path(folder) if folder is not None else self.folder
        store = SweepStore(target)
        try:
            with store.folder_lock():
                if target != self.folder:
                    write_metadata(target, "sweep", self.spec.to_dict(), self.spec.seed)
                remove_outputs(target)  # figures of an earlier (forced, larger) spec must not stay behind
                tables = dict(zip(TABLES, (self.table, self.summary, self.critical), strict=False))
                paths = [write_table(table, target / f"{name}.parquet") for name, table in tables.items()]
                for stem, figure in self.plot().items() if formats else ():
                    paths += save(figure, target / stem, formats)
        finally:
            store.close()
        return paths


@dataclass
class SweepPlan:
    """A checked sweep, ready to run: nothing has been written yet."""

    spec: SweepSpec
    folder: Path | None
    all_cells: list[Cell]
    cells: list[Cell]
    jobs: int
    force: bool

    @classmethod
    def prepare(
        cls, spec: SweepSpec, folder=None, jobs: int = 1, shard: tuple[int, int] = (1, 1), force: bool = False
    ) -> SweepPlan:
        """Check the spec, the data, every optimizer and the folder; raises OptbenchError naming the
        first problem. Reads only."""
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise OptbenchError(f"jobs must be a whole number >= 1, got {jobs}")
        all_cells = expand(spec)
        cells = shard_cells(all_cells, shard)
        check_runnable(spec, cells)
        if folder is not None:
            SweepStore(folder).check(spec, cells, force)
        return cls(spec, Path(folder) if folder is not None else None, all_cells, cells, jobs, force)

    def run(self, progress: Callable[[Cell, str], None] | None = None) -> SweepResult:
        """Compute the unfinished cells, then merge every finished cell of the grid.

        `progress(cell, status)` is called once per cell of this run: 'skipped', 'done', 'shared'
        or 'failed: MESSAGE'. SIGINT/SIGTERM raise SweepInterrupted once the workers are stopped.
        """
        folder = output_folder(self.folder, "sweep")
        store = SweepStore(folder)
        outcome = Outcome()

        def report(cell: Cell, status: str) -> None:
            first = cell.key not in outcome.statuses
            outcome.statuses[cell.key] = status
            if progress and first:
                progress(cell, status)

        try:
            store.open(self.spec, self.force)
            todo = []
            for cell in self.cells:
                if store.finished(cell):
                    report(cell, SKIPPED)
                else:
                    todo.append(cell)
            runs = plan_runs(todo, self.all_cells)
            try:
                run_cells(store, runs, self.jobs, self.spec.threads, self.spec.data_dir, report)
            except SweepInterrupted as stop:
                stop.finished = sum(store.finished(c) for c in self.cells)
                stop.total = len(self.cells)
                raise
        finally:
            store.close()
        result = _merged(self.spec, folder, self.all_cells, store)
        result.cells = self.cells  # this run's share of the grid, whose table `result` merges
        result.skipped = outcome.keys(SKIPPED)
        result.shared = outcome.keys(SHARED)
        result.failed = outcome.failed
        result.computed = [k for k, s in outcome.statuses.items() if s in (DONE, SHARED)]
        return result


def sweep(
    spec: SweepSpec | None = None,
    folder=None,
    jobs: int = 1,
    shard: tuple[int, int] = (1, 1),
    force: bool = False,
    progress: Callable[[Cell, str], None] | None = None,
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
    spec, the data, an optimizer or the folder is wrong; SweepInterrupted on SIGINT/SIGTERM.
    """
    if spec is None:
        spec = SweepSpec.from_settings(**settings)
    elif settings:
        raise OptbenchError(f"give a SweepSpec or settings, not both (got {', '.join(settings)})")
    return SweepPlan.prepare(spec, folder, jobs, shard, force).run(progress)


def load(folder) -> SweepResult:
    """The tables of a sweep folder, merged in memory from its finished cells (every shard), or read
    from its merged tables when it has no cells; writes nothing."""
    folder = Path(folder)
    meta = read_metadata(folder)
    if meta["kind"] != "sweep":
        raise OptbenchError(f"{folder} holds '{meta['kind']}' results, not a sweep")
    if not isinstance(meta.get("spec"), dict):
        raise OptbenchError(f"corrupt {folder / 'meta.json'}: no sweep spec recorded")
    spec = SweepSpec.from_dict(meta["spec"])
    cells = expand(spec)
    store = SweepStore(folder)
    if store.cells.is_dir():
        return _merged(spec, folder, cells, store)
    tables = [
        read_table(folder / f"{name}.parquet") if (folder / f"{name}.parquet").exists() else pd.DataFrame()
        for name in TABLES
    ]
    return SweepResult(spec, folder, cells, *tables)


def redraw(folder, formats=("png", "pdf")) -> list[Path]:
    """`optbench plot DIR` for a sweep: merge its finished cells and write the tables and figures."""
    result = load(folder)
    if result.table.empty:
        raise OptbenchError(f"{folder} holds no finished sweep cell yet: nothing to draw")
    return result.save(formats=formats)


def _merged(spec: SweepSpec, folder: Path, cells: list[Cell], store: SweepStore) -> SweepResult:
    table = store.read_cells(cells)
    summary = summarize(table, *spec.resolved_targets())
    critical = critical_batch_sizes(summary, spec.kind)
    return SweepResult(spec, folder, cells, table, summary, critical)
