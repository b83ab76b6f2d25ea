"""Memory estimates made from a spec before any work, checked against what this machine has free.

A request that cannot fit is refused with its estimate (an `OptbenchError`), so that a runaway size
(`--trials 1000000000`, a 100000 x 100000 grid, `quadratic:dim=100000000`) never reaches the allocator.
Work is estimated the same way (`require_work`): a request that fits in memory but would run for hours
(`--steps 10000000000000`, `--trials 1000000`, a 2000 x 2000 grid) is refused with its estimate unless
the caller accepts it explicitly (`allow_long`, the CLI's `--allow-long`).
The estimates are upper bounds to within a small factor, not measurements: float64 tensors of
8 bytes, the optimizer's state (at most a few tensors the size of the parameter), the recorder's
buffers, and the tables built from them.
"""

from __future__ import annotations

import math
import os

from .errors import OptbenchError

FLOAT = 8  # bytes of a float64
STATE_COPIES = 12  # parameter, gradient, optimizer state, step buffers: copies per coordinate
TABLE_COPIES = 3  # a recorded value lives in a tensor, a DataFrame column and a parquet buffer
PYTHON_ROW = 1000  # a row held as a dict of ~10 Python numbers and strings, then a DataFrame row
ROW_COLUMNS = 12  # non-coordinate columns of a trajectory row (optimizer, step, loss, ...)
WORKER_BYTES = 3 * 10**8  # a spawned worker process once it has imported torch (measured: ~290 MB)
MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit seed; seeds + trial numbers must stay below


def available_bytes() -> int | None:
    """Memory this machine can give a new allocation now (Linux: MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(count: float) -> str:
    """1.5e9 -> '1.5 GB' (decimal units)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count:.0f} B"


def require_memory(what: str, needed: float) -> None:
    """Raise OptbenchError when `what` needs more memory (bytes) than this machine has available."""
    available = available_bytes()
    if available is not None and needed > available:
        raise OptbenchError(
            f"{what} needs about {format_bytes(needed)} of memory; this machine has "
            f"{format_bytes(available)} available"
        )


def surface_run_bytes(trials: int, dim: int, recorded: int) -> float:
    """One `runners.surface.run_surface` call of `trials` x `dim` coordinates keeping `recorded`
    trial-steps in its trajectory: state per coordinate plus the recorded rows."""
    return FLOAT * (trials * dim * STATE_COPIES + TABLE_COPIES * recorded * (dim + ROW_COLUMNS))


def require_rows(what: str, rows: float) -> None:
    """Refuse a table built one Python dict per row (traces, per-step training rows) that cannot fit."""
    require_memory(f"{what} ({rows:,.0f} table rows)", rows * PYTHON_ROW)


def check_count(name: str, value: int, minimum: int = 0) -> int:
    """A whole-number setting from Python or a file: an int (not a bool) >= `minimum`, as int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptbenchError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def finite(name: str, value: float, minimum: float | None = None, strict: bool = False) -> float:
    """A real setting: a finite number (not a bool), above `minimum` (strictly if asked)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or (minimum is not None and (value <= minimum if strict else value < minimum))
    ):
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise OptbenchError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


# Work in coordinate-steps: one optimizer step on one coordinate of one trial. Measured on a 2-core
# machine: ~10 us per coordinate-step on a batched surface run (100,000 trials of 2 coordinates, 100
# steps: 190 s), and ~250 us of fixed cost per step (1,000,000 steps of one trial: 257 s), counted
# as STEP_COORDINATES coordinates. WORK_LIMIT is then of the order of a quarter of an hour.
STEP_COORDINATES = 25
WORK_LIMIT = 10**8


def work(steps: int, coordinates: int, runs: int = 1) -> int:
    """The work of `runs` runs of `steps` steps over `coordinates` coordinates (trials x dimensions), in
    coordinate-steps: each step also costs STEP_COORDINATES."""
    return runs * steps * (coordinates + STEP_COORDINATES)


def require_work(what: str, steps: int, coordinates: int, runs: int = 1, allow_long: bool = False) -> None:
    """Refuse `runs` runs of `steps` steps over `coordinates` coordinates (trials x dimensions) whose
    work exceeds WORK_LIMIT coordinate-steps, naming the estimate, unless `allow_long`."""
    require_total_work(what, work(steps, coordinates, runs), allow_long)


def require_total_work(what: str, total: float, allow_long: bool = False) -> None:
    """Refuse work of `total` coordinate-steps (a sum of `work` estimates) over WORK_LIMIT, naming the
    estimate, unless `allow_long`."""
    if total > WORK_LIMIT and not allow_long:
        raise OptbenchError(
            f"{what} is about {total:,.0f} coordinate-steps of work (steps x trials x coordinates), "
            f"over the limit of {WORK_LIMIT:,} (about a quarter hour); --allow-long runs it anyway"
        )
