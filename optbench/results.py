"""The one place that writes and reads result tables and the metadata beside them.

A results folder holds tidy tables as parquet files and `meta.json`: what made them (command
line, resolved spec, seed, optbench/torch versions, device), so `optbench plot DIR` can redraw
every figure without re-running. Every write is atomic (a temporary file renamed over the
target), so an interrupted run never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd

from .errors import OptbenchError

META_FILE = "meta.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
        raise OptbenchError(f"results file {path} lacks column(s) {', '.join(missing)}; "
                            "was it written by optbench?")
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


def write_metadata(folder: Path, kind: str, spec: dict, seed: int | None) -> dict:
    """Record what made this folder: the command kind, resolved spec, seed, command line, versions."""
    meta = {
        "kind": kind,
        "spec": spec,
        "seed": seed,
        "command_line": " ".join(["optbench", *sys.argv[1:]]) if sys.argv else "",
        "created": datetime.now().isoformat(timespec="seconds"),
        **environment(),
    }
    atomic_write_json(Path(folder) / META_FILE, meta)
    return meta


def read_metadata(folder: Path) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise OptbenchError(f"results folder not found: {folder}")
    path = folder / META_FILE
    if not path.exists():
        raise OptbenchError(f"{folder} has no {META_FILE}: not an optbench results folder")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise OptbenchError(f"corrupt {path}: {error}") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise OptbenchError(f"corrupt {path}: no 'kind' recorded")
    return meta


def default_folder(command: str) -> Path:
    """Where a command writes when no --out is given: `results/<command>-<timestamp>/`."""
    return Path("results") / f"{command}-{datetime.now():%Y%m%d-%H%M%S}"


def output_folder(out: str | Path | None, command: str) -> Path:
    """`--out` or `default_folder(command)`, created and proven writable before any work."""
    folder = Path(out) if out else default_folder(command)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".optbench-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OptbenchError(f"cannot write to output folder {folder}: {error.strerror or error}") from None
    return folder
