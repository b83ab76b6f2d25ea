"""The one store of content-keyed cells: atomic, resumable, locked.

    OUT/meta.json                 what made the folder (kind, resolved spec, seed, versions)
    OUT/cells/KEY.NAME.parquet    table NAME of finished cell KEY, each written atomically
    OUT/cells/KEY.done            written last: the cell's table names; a cell without it is unfinished
    OUT/cells/GROUP.claim         flock'ed while a process computes the cells of GROUP
    OUT/cells/.writers            flock'ed shared by every process writing into the folder
    OUT/.lock                     flock'ed while the folder's own files (meta.json, merged tables) change

What it guarantees:
- A finished cell is whole: tables are renamed into place complete, then the `.done` marker, so a
  writer killed at any moment leaves the cell unfinished (a rerun computes it), never half-written.
- Resumable: a rerun of the same spec finds finished cells by key and skips them. `force` only lets
  a different spec use the folder; finished cells stay, since a content key names what was computed.
- Each cell is computed once by the processes (and threads) sharing the folder: whoever claims a group
  first computes it; the others wait for it or pass it over (`claim`). Claims are kernel locks
  (`fcntl.flock`), so a killed process never leaves a stale claim. Without `fcntl` (not POSIX) nothing
  is locked: one process per folder at a time.
- Temporary files of a killed writer are deleted on the next run: by the next claimant of their cell,
  and all of them when a store opens with no other writer alive (`.writers` taken exclusively).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..bounded import check_folder_path
from ..errors import OptbenchError
from ..results import (
    CELLS,
    META_FILE,
    atomic_write_json,
    read_metadata,
    read_table,
    write_metadata,
    write_table,
)
from .keys import canonical

try:
    import fcntl
except ImportError:  # not POSIX: no locks
    fcntl = None

WRITERS, FOLDER_LOCK = ".writers", ".lock"


def whole_spec(spec: dict, seed) -> dict:
    """The default identity of a run: its resolved spec and seed (see `CellStore.check`)."""
    return {**spec, "seed": seed}


class CellStore:
    """One folder of cells. Locks taken through it belong to it; `close` releases them all."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.cells = self.folder / CELLS
        self._writers = None  # the open .writers file while this store writes

    # --- paths and reads ---------------------------------------------------------------------------

    def table_path(self, key: str, name: str) -> Path:
        return self.cells / f"{key}.{name}.parquet"

    def _done_path(self, key: str) -> Path:
        return self.cells / f"{key}.done"

    def table_names(self, key: str) -> list[str] | None:
        """The names of cell `key`'s tables, or None when it is unfinished (no marker, or a table
        file missing); raises OptbenchError on a damaged marker."""
        path = self._done_path(key)
        if not path.exists():
            return None
        try:
            names = json.loads(path.read_text())["tables"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise OptbenchError(f"corrupt cell marker {path}: {error}") from None
        if not all(self.table_path(key, name).exists() for name in names):
            return None
        return names

    def finished(self, key: str) -> bool:
        """Cell `key` has its marker and every table it lists, each with a readable parquet footer
        (a damaged cell counts as unfinished, so it is computed again; `read` names it)."""
        import pyarrow.parquet

        try:
            names = self.table_names(key)
            for name in names or ():
                pyarrow.parquet.read_metadata(self.table_path(key, name))
        except (OptbenchError, OSError, pyarrow.ArrowException):
            return False
        return names is not None

    def read(self, key: str) -> dict[str, pd.DataFrame] | None:
        """The tables of finished cell `key` (None if unfinished); OptbenchError names a corrupt file."""
        names = self.table_names(key)
        if names is None:
            return None
        return {name: read_table(self.table_path(key, name)) for name in names}

    # --- before any write ----------------------------------------------------------------------------

    def check(
        self,
        kind: str,
        spec: dict,
        seed,
        force: bool,
        identity: Callable[[dict, object], dict] = whole_spec,
        keys=(),
    ) -> None:
        """Refuse (OptbenchError) a folder that cannot be written, holds another kind of results, a run
        whose `identity(spec, seed)` differs (unless `force`), or a corrupt finished cell among `keys`
        (unless `force`, which recomputes it). Reads only."""
        check_folder_path(self.folder)
        existing = next(p for p in (self.folder, *self.folder.absolute().parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise OptbenchError(
                f"cannot write to output folder {self.folder}: {existing} is not a writable folder"
            )
        self._check_spec(kind, spec, seed, force, identity)
        if force:
            return
        for key in keys:
            try:
                self.read(key)
            except OptbenchError as error:
                raise OptbenchError(f"{error}; rerun with --force to redo that cell") from None

    def _check_spec(self, kind, spec, seed, force, identity) -> None:
        if not (self.folder / META_FILE).exists():
            return
        meta = read_metadata(self.folder)
        if meta["kind"] != kind:
            raise OptbenchError(
                f"{self.folder} holds '{meta['kind']}' results, not a {kind}; choose another --out"
            )
        old_spec = meta.get("spec") if isinstance(meta.get("spec"), dict) else {}
        old, new = (
            canonical(_plain(identity(old_spec, meta.get("seed")))),
            canonical(_plain(identity(spec, seed))),
        )
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if changed and not force:
            first = changed[0]
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            raise OptbenchError(
                f"{self.folder} holds a different {kind} ({first}: {old.get(first)} -> {new.get(first)}{more}); "
                "use another --out, or --force to run this one there (finished cells it shares are kept)"
            )

    # --- writing -------------------------------------------------------------------------------------

    def open(self, kind: str, spec: dict, seed, force: bool, identity=whole_spec) -> None:
        """Start a run: `join` the folder's writers, check the spec again under the folder lock
        (against a run started meanwhile) and record it in meta.json."""
        self.join()
        with self.folder_lock():
            self._check_spec(kind, spec, seed, force, identity)
            write_metadata(self.folder, kind, spec, seed)

    def join(self) -> None:
        """Start writing cells (a worker does only this: the run's process opened the folder). The
        first writer alive deletes every leftover temporary file of dead ones."""
        self.cells.mkdir(parents=True, exist_ok=True)
        if fcntl is None or self._writers is not None:
            return
        handle = _locked(self.cells / WRITERS, wait=False)
        if handle:  # no other writer alive: every temporary file here is a dead writer's
            for leftover in [*self.cells.glob(".*.tmp"), *self.folder.glob(".*.tmp")]:
                leftover.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_SH)  # downgrade: other writers may join now
        else:
            handle = open(self.cells / WRITERS, "a")  # noqa: SIM115 - held until close()
            fcntl.flock(handle, fcntl.LOCK_SH)
        self._writers = handle

    def write(self, key: str, tables: dict[str, pd.DataFrame]) -> None:
        """Record cell `key` as finished with these tables (names: letters, digits, '_')."""
        for name, table in tables.items():
            if not name.replace("_", "").isalnum():
                raise ValueError(f"a cell table needs a plain name, got {name!r}")
            write_table(table, self.table_path(key, name))
        atomic_write_json(self._done_path(key), {"tables": list(tables)})

    def discard(self, key: str) -> None:
        """Count cell `key` as unfinished again (its caller found its tables damaged or foreign), so that
        it is computed again: its marker goes; its tables are replaced when it is written."""
        self._done_path(key).unlink(missing_ok=True)

    # --- locks ---------------------------------------------------------------------------------------

    @contextmanager
    def folder_lock(self):
        """Hold the folder: its own files are written by one process at a time; their leftover
        temporary files (from a killed writer) are deleted first."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = _locked(self.folder / FOLDER_LOCK, wait=True)
        try:
            for leftover in self.folder.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)
            yield
        finally:
            _release(handle)

    @contextmanager
    def claim(self, group: str, keys, wait: bool = True):
        """Claim the computation `group` of cells `keys`: yields True once held (their leftover
        temporary files deleted), or False at once when another holds it and `wait` is False. Check
        `finished` inside: the previous holder may have finished them."""
        self.cells.mkdir(parents=True, exist_ok=True)
        path = self.cells / f"{group}.claim"
        handle = _locked(path, wait)
        if handle is False:
            yield False
            return
        try:
            for key in keys:
                for leftover in self.cells.glob(f".{key}.*.tmp"):
                    leftover.unlink(missing_ok=True)
            yield True
        finally:
            if all(self.finished(key) for key in keys):
                path.unlink(missing_ok=True)  # a waiter on this file finds the cells finished all the same
            _release(handle)

    def close(self) -> None:
        """Stop writing: leave the folder's writers."""
        if self._writers is not None:
            _release(self._writers)
            self._writers = None

    def __enter__(self) -> CellStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _plain(identity) -> dict:
    return identity if isinstance(identity, dict) else {"spec": identity}


def _locked(path: Path, wait: bool):
    """An open file flock'ed exclusively, None without fcntl, or False when held elsewhere and not `wait`."""
    if fcntl is None:
        return None
    handle = open(path, "a")  # noqa: SIM115 - closed by _release
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.close()
        return False
    return handle


def _release(handle) -> None:
    if handle:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
