"""The one place that writes and reads result tables and the metadata beside them.

A results folder holds tidy tables as parquet files and `meta.json`: what made them (command
line, resolved spec, seed, optbench/torch versions, device), so `optbench plot DIR` can redraw
every figure without re-running. Every write is atomic (a temporary file renamed over the
target), so an interrupted run never leaves half a file behind, and every file gets the permissions
the user's umask gives a new file (0644 under umask 022), so shared folders stay readable.

A folder holds one run (`claim_folder`): saving the same run again replaces its outputs, a different
run is refused unless `force`, which first removes what the earlier run wrote.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd

from .bounded import check_folder_path, load_json
from .errors import OptbenchError

META_FILE = "meta.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(
            fd, 0o666 & ~current_umask()
        )  # mkstemp creates 0600; a plain open() would respect the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """Write a tidy table as zstd parquet, atomically."""
    import io

    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False, compression="zstd")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def read_table(path: Path, required_columns=()) -> pd.DataFrame:
    """Read a table written by `write_table`; a missing, corrupt or foreign file is a user error."""
    path = Path(path)
    if not path.exists():
        raise OptbenchError(f"results file not found: {path}")
    try:
        table = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise OptbenchError(f"corrupt results file {path}: {type(error).__name__}: {error}") from None
    missing = [c for c in required_columns if c not in table.columns]
    if missing:
        raise OptbenchError(
            f"results file {path} lacks column(s) {', '.join(missing)}; was it written by optbench?"
        )
    return table


def environment() -> dict:
    """Versions and machine, recorded in every results folder."""
    import torch

    from . import __version__

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    return {
        "optbench": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "cpu_count": os.cpu_count(),
    }


def write_metadata(folder: Path, kind: str, spec: dict, seed: int | None, failed: dict | None = None) -> dict:
    """Record what made this folder: the command kind, resolved spec, seed, command line, versions,
    and (`failed`, run name -> message) the runs that failed, which the spec alone does not say."""
    meta = {
        "kind": kind,
        "spec": spec,
        "seed": seed,
        **({"failed": failed} if failed else {}),
        "command_line": " ".join(["optbench", *sys.argv[1:]]) if sys.argv else "",
        "created": datetime.now().isoformat(timespec="seconds"),
        **environment(),
    }
    atomic_write_json(Path(folder) / META_FILE, meta)
    return meta


def read_metadata(folder: Path) -> dict:
    """meta.json of `folder`, read with limits (`bounded.load_json`); OptbenchError when the folder or
    the file is missing, the file is not a regular file or not JSON, or records no kind."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OptbenchError(f"results folder not found: {folder}")
    path = folder / META_FILE
    if not path.exists() and not path.is_symlink():
        raise OptbenchError(f"{folder} has no {META_FILE}: not an optbench results folder")
    meta = load_json(path, META_FILE)
    if not isinstance(meta, dict) or "kind" not in meta:
        raise OptbenchError(f"corrupt {path}: no 'kind' recorded")
    return meta


def default_folder(command: str) -> Path:
    """Where a command writes when no --out is given: `results/<command>-<timestamp>/`."""
    return Path("results") / f"{command}-{datetime.now():%Y%m%d-%H%M%S}"


def output_folder(out: str | Path | None, command: str) -> Path:
    """`--out` or `default_folder(command)`, created and proven writable before any work."""
    folder = check_folder_path(out) if out else default_folder(command)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".optbench-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OptbenchError(f"cannot write to output folder {folder}: {error.strerror or error}") from None
    return folder


CELLS = "cells"
OUTPUT_SUFFIXES = (".parquet", ".png", ".pdf", ".svg", ".gif")


def same_run(meta: dict, kind: str, spec: dict, seed) -> bool:
    """Whether a folder's meta.json records this run: the same kind, resolved spec and seed."""
    return (
        meta.get("kind") == kind
        and canonical_json(meta.get("spec")) == canonical_json(spec)
        and meta.get("seed") == seed
    )


def claim_folder(folder, kind: str, spec: dict, seed, force: bool = False) -> None:
    """Make `folder` ready to hold this run's outputs, before any is written.

    Temporary files a killed writer left (`remove_leftovers`) are removed first. A folder without
    meta.json is used as it is. One recording this run (`same_run`) has its earlier
    tables and figures removed (so a figure format dropped since leaves nothing behind; resumable cells
    are kept). Another run is refused with OptbenchError unless `force`, which first removes what the
    earlier run wrote (`clean`); files optbench did not write are never touched.
    """
    folder = Path(folder)
    remove_leftovers(folder)
    if not (folder / META_FILE).exists():
        return
    if same_run(read_metadata(folder), kind, spec, seed):
        clean(folder, keep_cells=True)
    elif force:
        clean(folder)
    else:
        raise OptbenchError(
            f"{folder} holds the results of a different run; use another --out, or --force to replace them"
        )


def remove_leftovers(folder) -> None:
    """Remove the temporary files (`.NAME.*.tmp`) that `atomic_write_bytes` leaves when its process is
    killed mid-write. Not in a folder of cells: its store removes them once no other writer is alive."""
    folder = Path(folder)
    if folder.is_dir() and not (folder / CELLS).exists():
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)


def clean(folder, keep_cells: bool = False) -> None:
    """Remove what optbench wrote into `folder` (meta.json, cells, tables, figures); nothing else."""
    folder = Path(folder)
    if not (folder / META_FILE).exists() and not (folder / CELLS).exists():
        return
    if not keep_cells:
        shutil.rmtree(folder / CELLS, ignore_errors=True)
    remove_outputs(folder)
    (folder / META_FILE).unlink(missing_ok=True)


def remove_outputs(folder) -> None:
    """Remove the tables and figures at the top of a results folder (not meta.json, not its cells)."""
    for path in Path(folder).iterdir():
        if path.is_file() and path.suffix in OUTPUT_SUFFIXES:
            path.unlink()


def canonical_json(value) -> str:
    """JSON as meta.json stores it, so a spec compares equal to its saved copy."""
    return json.dumps(json.loads(json.dumps(value, default=str)), sort_keys=True)
