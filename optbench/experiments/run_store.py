"""A results folder whose runs are cells: a rerun of the same spec skips the runs already finished.

    store = RunStore.open(folder, "train", spec, seed, force=False)
    if (tables := store.finished(key)) is None:
        tables = compute()
        store.finish(key, tables)

`meta.json` records the resolved spec; opening the folder with another spec is refused unless
`force`, which first removes what an earlier run wrote there. A run's tables are written to
`cells/KEY.NAME.parquet` (each atomically) and then `cells/KEY.done`, so a run interrupted while
writing is computed again, never read half-written. The folder's merged tables are the caller's.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..errors import OptbenchError
from ..results import (
    CELLS,
    META_FILE,
    atomic_write_bytes,
    canonical_json,
    clean,
    output_folder,
    read_metadata,
    read_table,
    write_metadata,
    write_table,
)

try:
    import fcntl
except ImportError:  # not POSIX: runs are not claimed; one train per folder at a time
    fcntl = None


def key_of(settings: dict) -> str:
    """A short hash of a run's resolved settings, independent of key order."""
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()[:16]


class RunStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @classmethod
    def open(
        cls, folder, kind: str, spec: dict, seed: int, force: bool = False, writer: bool = True
    ) -> RunStore:
        """Check `folder` against `spec`, clean it first with `force`, record the spec (if `writer`)."""
        folder = Path(folder)
        if (folder / META_FILE).exists() and not force:
            meta = read_metadata(folder)
            if (
                meta.get("kind") != kind
                or canonical_json(meta.get("spec")) != canonical_json(spec)
                or meta.get("seed") != seed
            ):
                raise OptbenchError(
                    f"{folder} holds results of a different {kind} run; use another --out, "
                    "or --force to replace them"
                )
        if writer:
            output_folder(folder, kind)
            if force:
                clean(folder)
            write_metadata(folder, kind, spec, seed)
        return cls(folder)

    def finished(self, key: str, names) -> dict[str, pd.DataFrame] | None:
        """The tables of a finished run, or None when it has not finished."""
        if not (self.folder / CELLS / f"{key}.done").exists():
            return None
        return {name: read_table(self.folder / CELLS / f"{key}.{name}.parquet") for name in names}

    def finish(self, key: str, tables: dict[str, pd.DataFrame]) -> None:
        for name, table in tables.items():
            write_table(table, self.folder / CELLS / f"{key}.{name}.parquet")
        atomic_write_bytes(self.folder / CELLS / f"{key}.done", b"")

    @contextmanager
    def claim(self, key: str):
        """Hold run `key` while computing it: a second process on the same folder waits here, then finds
        it finished (check `finished` inside). The lock is the kernel's (flock), so a killed process
        releases it and the waiter computes the run instead; without flock (not POSIX) nothing is held."""
        if fcntl is None:
            yield
            return
        path = self.folder / CELLS / f"{key}.claim"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if (self.folder / CELLS / f"{key}.done").exists():
                    path.unlink(missing_ok=True)  # a waiter on this file finds the run done all the same
                fcntl.flock(handle, fcntl.LOCK_UN)
