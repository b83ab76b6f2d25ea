"""The scheduler: the unfinished cells of a study, each computed once, by an executor.

A `Group` is the unit of scheduling: the cells one program computes together (one computation
listed under several labels, or a batch of trials one tensor program runs at once), claimed as one.
A `Job` is a picklable callable `job(store, group, missing)` that computes the group's `missing`
cells, writes them through the store and yields `(key, status)` for each: `DONE`, `SHARED` (copied
from an identical computation) or `"failed: MESSAGE"` (nothing written). An exception escaping a job
fails its unreported cells; it never stops the other groups.

`schedule(folder, groups, job, executor, report)` runs the groups where the executor says (this
process and local worker processes: `processes.Local`; a Slurm cluster: `cluster.Submitit`), and
calls `report(key, status)` once per cell, in this process. SIGINT and SIGTERM raise `Interrupted`
once the executor has stopped its workers; finished cells are kept and a rerun resumes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from .store import CellStore

SKIPPED, DONE, SHARED = "skipped", "done", "shared"  # any other status starts with "failed: "


@dataclass(frozen=True)
class Group:
    """Cells computed together. key: the claim (one computation); cells: objects with a `.key`, in
    the order they are reported; context: whatever else the job needs (picklable)."""

    key: str
    cells: tuple
    context: Any = None


class Job(Protocol):
    def __call__(self, store: CellStore, group: Group, missing: list) -> Iterable[tuple[str, str]]: ...


class Executor(Protocol):
    def run(self, folder, groups: list[Group], job: Job, report: Callable[[str, str], None]) -> None:
        """Run `work` over `groups` somewhere; call `report(key, status)` here for each cell."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM stopped a study; finished cells are kept and a rerun resumes.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` mistakes it for a cell
    that failed."""

    def __init__(self, signum: int, finished: int = 0, total: int = 0):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.finished, self.total = signum, finished, total

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def schedule(
    folder, groups: list[Group], job: Job, executor: Executor, report: Callable[[str, str], None]
) -> None:
    """Compute every group's unfinished cells through `executor`; see the module docstring."""
    with _signals_interrupt():
        executor.run(folder, groups, job, report)


def work(store: CellStore, groups: list[Group], job: Job, report: Callable[[str, str], None]) -> None:
    """Claim and finish each group in turn, in this process; groups claimed elsewhere are waited
    for at the end (by then usually finished by their claimant, so they are only skipped)."""
    waiting = []
    for group in groups:
        with store.claim(group.key, [c.key for c in group.cells], wait=False) as held:
            if held:
                _finish(store, group, job, report)
            else:
                waiting.append(group)
    for group in waiting:
        with store.claim(group.key, [c.key for c in group.cells], wait=True):
            _finish(store, group, job, report)


def _finish(store: CellStore, group: Group, job: Job, report) -> None:
    missing = []
    for cell in group.cells:
        if store.finished(cell.key):
            report(cell.key, SKIPPED)  # finished before, or by another process while this one waited
        else:
            missing.append(cell)
    if not missing:
        return
    reported = set()
    try:
        for key, status in job(store, group, missing):
            reported.add(key)
            report(key, status)
    except Exception as error:  # noqa: BLE001 - a bug in one group: reported, never recorded as finished
        for cell in missing:
            if cell.key not in reported:
                report(cell.key, f"failed: {type(error).__name__}: {error}")


def work_in(folder: str, groups: list[Group], job: Job) -> list[tuple[str, str]]:
    """`work` in a process of its own (a worker, a cluster job): opens the folder as a writer that
    leaves meta.json to the study's process; returns every (key, status)."""
    statuses = []
    with CellStore(folder) as store:
        store.join()
        work(store, groups, job, lambda key, status: statuses.append((key, status)))
    return statuses


@contextmanager
def _signals_interrupt():
    """In the main thread, SIGINT and SIGTERM raise Interrupted (restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Interrupted(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
