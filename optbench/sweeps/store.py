"""The sweep folder: the spec, one file per finished cell, the merged tables; claims and locks.

    OUT/meta.json              the spec (a different spec is refused unless force), threads, versions
    OUT/cells/<key>.parquet    one finished cell, written atomically the moment it finishes
    OUT/.claims                an empty file whose byte ranges are locks (see below)
    OUT/sweep.parquet, summary.parquet, critical.parquet, figures   merged from the cells

A file in `cells/` is a finished cell: an interrupted write leaves only a `.<name>.XXXX.tmp`
file, so a rerun of the same sweep skips finished cells and redoes only the rest.

Locks are POSIX record locks (`fcntl.lockf`) on single bytes of `.claims`: byte 0 guards the
folder's own files (meta.json, the merged tables, the figures); byte 1 + the first 60 bits of a
computation's hash claims that computation. Whoever holds a claim is the only writer of that
computation's cell files, so it may delete their leftover temporary files, and two sweeps on one
folder compute each cell once. The kernel drops a dead process's locks, so a killed sweep never
leaves a stale claim.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..errors import OptbenchError
from ..results import read_metadata, read_table, write_metadata, write_table
from .cells import Cell
from .spec import SweepSpec, jsonable

try:
    import fcntl
except ImportError:  # not POSIX: no locks; one sweep per folder at a time
    fcntl = None

CELLS = "cells"
CLAIMS = ".claims"
FOLDER_LOCK = 0


class SweepStore:
    """One sweep folder. Claims taken through it belong to this process."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.cells = self.folder / CELLS
        self._claims_fd = None

    def cell_path(self, key: str) -> Path:
        return self.cells / f"{key}.parquet"

    # --- before any write ----------------------------------------------------------------------

    def check(self, spec: SweepSpec, cells: list[Cell], force: bool) -> None:
        """Refuse a folder that cannot be written, holds another kind of results or a different sweep
        (unless force), or a corrupt cell file of this sweep (unless force, which recomputes it).
        Reads only."""
        existing = next(p for p in (self.folder, *self.folder.absolute().parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise OptbenchError(
                f"cannot write to output folder {self.folder}: {existing} is not a writable folder"
            )
        self._check_spec(spec, force)
        if force:
            return
        for cell in cells:
            if self.cell_path(cell.key).exists():
                try:
                    self._check_cell_file(cell)
                except OptbenchError as error:
                    raise OptbenchError(f"{error}; rerun with --force to redo that cell") from None

    def _check_spec(self, spec: SweepSpec, force: bool) -> None:
        if not (self.folder / "meta.json").exists():
            return
        meta = read_metadata(self.folder)
        if meta["kind"] != "sweep":
            raise OptbenchError(
                f"{self.folder} holds '{meta['kind']}' results, not a sweep; choose another --out"
            )
        old = (meta.get("spec") or {}).get("grid", {}) if isinstance(meta.get("spec"), dict) else {}
        new = jsonable(spec.grid())
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if changed and not force:
            first = changed[0]
            raise OptbenchError(
                f"{self.folder} holds a different sweep ({first}: {old.get(first)} -> {new.get(first)}"
                f"{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}); "
                "use a new --out, or --force to run this spec there (finished cells it shares are kept)"
            )

    # --- writing -------------------------------------------------------------------------------

    def open(self, spec: SweepSpec, force: bool) -> None:
        """Create the folder and record the spec (and the threads per cell) in meta.json; the spec is
        checked again under the lock, against a sweep started meanwhile."""
        self.cells.mkdir(parents=True, exist_ok=True)
        with self.folder_lock():
            self._check_spec(spec, force)
            write_metadata(self.folder, "sweep", spec.to_dict(), spec.seed)

    def finished(self, cell: Cell) -> bool:
        """A readable file of this cell is in the folder."""
        if not self.cell_path(cell.key).exists():
            return False
        try:
            self._check_cell_file(cell)
        except OptbenchError:
            return False
        return True

    def write_cell(self, cell: Cell, table: pd.DataFrame) -> None:
        write_table(table, self.cell_path(cell.key))

    def copy_cell(self, source: Cell, target: Cell) -> None:
        """Write `source`'s finished table as `target`'s (the same computation, other labels)."""
        table = read_table(self.cell_path(source.key))
        measured = table.drop(columns=list(source.setting_columns()))
        self.write_cell(target, target.labelled(measured))

    # --- reading -------------------------------------------------------------------------------

    def read_cells(self, cells: list[Cell]) -> pd.DataFrame:
        """Every finished cell of `cells` as one table, in grid order (empty if none)."""
        parts = [read_table(self.cell_path(c.key)) for c in cells if self.cell_path(c.key).exists()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def _check_cell_file(self, cell: Cell) -> None:
        path = self.cell_path(cell.key)
        table = read_table(path, ["cell", "step"])
        if table.empty or (table["cell"] != cell.key).any():
            raise OptbenchError(f"corrupt cell file {path}: it does not hold cell {cell.key}")

    # --- locks ---------------------------------------------------------------------------------

    @contextmanager
    def folder_lock(self):
        """Hold byte 0: the folder's own files are written by one process at a time; their leftover
        temporary files (from a killed writer) are deleted first."""
        self._lock(FOLDER_LOCK, wait=True)
        try:
            for leftover in self.folder.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)
            yield
        finally:
            self._unlock(FOLDER_LOCK)

    @contextmanager
    def claim(self, cells: list[Cell], wait: bool):
        """Claim the computation of `cells` (all one computation): yields True once held (after
        deleting the leftover temporary files of those cells), or False at once if another process
        holds it and `wait` is False."""
        offset = 1 + int(cells[0].computation[:15], 16)
        if not self._lock(offset, wait):
            yield False
            return
        try:
            for cell in cells:
                for leftover in self.cells.glob(f".{cell.key}.parquet.*.tmp"):
                    leftover.unlink(missing_ok=True)
            yield True
        finally:
            self._unlock(offset)

    def close(self) -> None:
        """Release every lock of this process on the folder."""
        if self._claims_fd is not None:
            os.close(self._claims_fd)
            self._claims_fd = None

    def _lock(self, offset: int, wait: bool) -> bool:
        if fcntl is None:
            return True
        if self._claims_fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._claims_fd = os.open(self.folder / CLAIMS, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.lockf(self._claims_fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), 1, offset)
        except (BlockingIOError, PermissionError):
            return False
        return True

    def _unlock(self, offset: int) -> None:
        if fcntl is not None and self._claims_fd is not None:
            fcntl.lockf(self._claims_fd, fcntl.LOCK_UN, 1, offset)
