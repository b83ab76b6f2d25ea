"""How a sweep runs on the cell engine: its groups, and the job that computes one.

Cells of one computation (see `cells`: the base batch size under every lr rule) form a `Group`
claimed as one, so processes sharing the folder compute it once. The job computes the group's first
missing cell (or copies a finished twin of the same computation, from any shard) and copies the
result under the others' labels. Each cell table is stored as the cell's table "sweep".
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cells import DONE, SHARED, CellStore, Group
from ..errors import OptbenchError
from ..runners.devices import torch_threads
from .adapters import run_cell
from .cells import Cell

TABLE = "sweep"  # the name of a cell's one table in the store


def plan_groups(todo: list[Cell], all_cells: list[Cell]) -> list[Group]:
    """One group per computation among `todo`; its context: every cell of the whole grid (any
    shard) with that computation, whose finished table can be copied instead of recomputed."""
    groups: dict[str, list[Cell]] = {}
    for cell in todo:
        groups.setdefault(cell.computation, []).append(cell)
    return [
        Group(computation, tuple(cells), tuple(c for c in all_cells if c.computation == computation))
        for computation, cells in groups.items()
    ]


@dataclass(frozen=True)
class SweepJob:
    """Computes a sweep's groups with `threads` torch threads (restored afterwards); picklable."""

    threads: int
    data_dir: str | None

    def __call__(self, store: CellStore, group: Group, missing: list[Cell]):
        with torch_threads(self.threads):
            source = next((t for t in group.context if t not in missing and store.finished(t.key)), None)
            if source is None:
                source, missing = missing[0], missing[1:]
                error = compute(store, source, self.data_dir)
                yield source.key, DONE if error is None else f"failed: {error}"
                if error is not None:  # a failed computation fails its copies too
                    for cell in missing:
                        yield cell.key, f"failed: {error}"
                    return
            for cell in missing:
                try:
                    copy_cell(store, source, cell)
                except (OptbenchError, KeyError, OSError) as error:
                    yield cell.key, f"failed: copying the identical cell {source.key}: {error}"
                    continue
                yield cell.key, SHARED


def compute(store: CellStore, cell: Cell, data_dir) -> str | None:
    """Run one cell and store its table; None, or the error message (and nothing stored)."""
    try:
        table = cell.labelled(run_cell(cell, data_dir))
    except OptbenchError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - a bug or a broken setting: reported, never recorded as finished
        return f"{type(error).__name__}: {error}"
    store.write(cell.key, {TABLE: table})
    return None


def copy_cell(store: CellStore, source: Cell, target: Cell) -> None:
    """Store `source`'s finished table as `target`'s (the same computation, other labels)."""
    table = store.read(source.key)[TABLE]
    measured = table.drop(columns=list(source.setting_columns()))
    store.write(target.key, {TABLE: target.labelled(measured)})
