"""Scheduling: the unfinished cells of a sweep, computed once each, in this process or in workers.

Cells of one computation (see `cells`) form a `Run`. Whoever computes a run first claims it in the
folder (`SweepStore.claim`), so worker processes of one sweep, several shards, and two identical
sweeps started together on one folder all share the work: a claimed run is passed over and looked
at again at the end, by which time its cells are usually finished. A run's first missing cell is
computed (or copied from a finished cell of the same computation) and the others are copied.

`jobs > 1` starts that many spawned worker processes. They die with the sweep: each asks the
kernel for SIGKILL when its parent dies (Linux `prctl(PR_SET_PDEATHSIG)`; elsewhere a thread
watches the parent's pid), ignores SIGINT, and is terminated when the sweep stops. A killed worker
leaves no half-written cell: files are renamed into place whole, and the next claimant of that run
deletes the leftover temporary file.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..errors import OptbenchError
from .adapters import run_cell
from .cells import Cell
from .store import SweepStore

SKIPPED, DONE, SHARED = "skipped", "done", "shared"  # any other status starts with "failed: "
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class SweepInterrupted(BaseException):
    """SIGINT or SIGTERM stopped a sweep; finished cells are kept and a rerun resumes.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` mistakes it for a cell
    that failed."""

    def __init__(self, signum: int, finished: int = 0, total: int = 0):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.finished, self.total = signum, finished, total

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@dataclass(frozen=True)
class Run:
    cells: tuple[Cell, ...]  # this shard's unfinished cells of one computation, in grid order
    twins: tuple[Cell, ...]  # every cell of the whole grid with that computation (any shard)


@dataclass
class Outcome:
    statuses: dict = field(default_factory=dict)  # key -> status

    def keys(self, status: str) -> list[str]:
        return [k for k, s in self.statuses.items() if s == status]

    @property
    def failed(self) -> dict[str, str]:
        return {k: s.removeprefix("failed: ") for k, s in self.statuses.items() if s.startswith("failed")}


def plan_runs(todo: list[Cell], all_cells: list[Cell]) -> list[Run]:
    groups: dict[str, list[Cell]] = {}
    for cell in todo:
        groups.setdefault(cell.computation, []).append(cell)
    return [
        Run(tuple(group), tuple(c for c in all_cells if c.computation == computation))
        for computation, group in groups.items()
    ]


def run_cells(
    store: SweepStore,
    runs: list[Run],
    jobs: int,
    threads: int,
    data_dir: str | None,
    report: Callable[[Cell, str], None],
) -> None:
    """Compute every run, here (jobs 1) or in `jobs` worker processes; `report(cell, status)` at least
    once per cell (a later report of the same cell replaces 'skipped' with what its computer did).
    SIGINT and SIGTERM raise SweepInterrupted after the workers are gone."""
    with _signals_interrupt():
        if jobs == 1 or len(runs) <= 1:
            work(store, runs, threads, data_dir, report)
        else:
            _run_in_workers(store, runs, jobs, threads, data_dir, report)


def work(
    store: SweepStore,
    runs: list[Run],
    threads: int,
    data_dir: str | None,
    report: Callable[[Cell, str], None],
) -> None:
    """Claim and finish each run in turn; runs claimed elsewhere are waited for at the end."""
    with torch_threads(threads):
        waiting = []
        for run in runs:
            with store.claim(list(run.cells), wait=False) as held:
                if held:
                    _finish(store, run, data_dir, report)
                else:
                    waiting.append(run)
        for run in waiting:
            with store.claim(list(run.cells), wait=True):
                _finish(store, run, data_dir, report)


def _finish(store: SweepStore, run: Run, data_dir, report) -> None:
    """With the run claimed: compute its first missing cell (or copy a finished twin), copy the rest."""
    missing = []
    for cell in run.cells:
        if store.finished(cell):
            report(cell, SKIPPED)  # finished by another process while this one waited
        else:
            missing.append(cell)
    if not missing:
        return
    source = next((t for t in run.twins if t not in missing and store.finished(t)), None)
    if source is None:
        source, missing = missing[0], missing[1:]
        error = compute(store, source, data_dir)
        report(source, DONE if error is None else f"failed: {error}")
        if error is not None:  # a failed computation fails its copies too
            for cell in missing:
                report(cell, f"failed: {error}")
            return
    for cell in missing:
        try:
            store.copy_cell(source, cell)
        except (OptbenchError, KeyError, OSError) as error:
            report(cell, f"failed: copying the identical cell {source.key}: {error}")
            continue
        report(cell, SHARED)


def compute(store: SweepStore, cell: Cell, data_dir) -> str | None:
    """Run one cell and write its table; None, or the error message (and no file)."""
    try:
        table = cell.labelled(run_cell(cell, data_dir))
    except OptbenchError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - a bug or a broken setting: reported, never recorded as finished
        return f"{type(error).__name__}: {error}"
    store.write_cell(cell, table)
    return None


@contextmanager
def torch_threads(threads: int):
    """torch's intra-op thread count for the cells, restored afterwards (a notebook keeps its own)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _signals_interrupt():
    """In the main thread, SIGINT and SIGTERM raise SweepInterrupted (restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SweepInterrupted(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# --- worker processes ------------------------------------------------------------------------------


def _run_in_workers(store, runs, jobs, threads, data_dir, report) -> None:
    context = multiprocessing.get_context("spawn")
    by_key = {cell.key: cell for run in runs for cell in run.cells}
    workers = {}
    # Started with SIGINT ignored, which they inherit: a Ctrl-C in the terminal reaches the whole
    # process group, and only the parent should act on it.
    ignoring = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for index in range(min(jobs, len(runs))):
            start = index * len(runs) // jobs  # each worker starts on its own stretch of the runs
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker,
                daemon=True,
                name=f"optbench-sweep-{index + 1}",
                args=(os.getpid(), str(store.folder), runs[start:] + runs[:start], threads, data_dir, sender),
            )
            process.start()
            sender.close()
            workers[receiver] = process
    finally:
        signal.signal(signal.SIGINT, ignoring)
    reported = set()
    try:
        while workers:
            for receiver in multiprocessing.connection.wait(list(workers)):
                try:
                    key, status = receiver.recv()
                except EOFError:
                    workers.pop(receiver).join()
                    continue
                if key in reported and status == SKIPPED:
                    continue  # a sibling looked at a run after the worker that computed it
                reported.add(key)
                report(by_key[key], status)
    finally:
        _stop(workers.values())
    for key, cell in by_key.items():
        if key not in reported:
            report(cell, "failed: its worker process died before finishing it (out of memory?)")


def _stop(processes) -> None:
    processes = [p for p in processes if p.is_alive()]
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + 5
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _worker(parent: int, folder: str, runs: list[Run], threads: int, data_dir, sender) -> None:
    _die_with(parent)
    store = SweepStore(folder)
    try:
        work(store, runs, threads, data_dir, lambda cell, status: sender.send((cell.key, status)))
    finally:
        store.close()
        sender.close()


def _die_with(parent: int) -> None:
    """Get SIGKILL when `parent` dies, however it dies (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
