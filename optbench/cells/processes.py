"""The local executor: groups computed in this process (`jobs=1`) or in spawned worker processes.

What it guarantees:
- The numbers do not depend on `jobs`: a cell's computation is the same in any process, and the
  store makes each group computed once, so `jobs=1` and `jobs=2` write the same files.
- Workers die with the study: each asks the kernel for SIGKILL when its parent dies (Linux
  `prctl(PR_SET_PDEATHSIG)`; elsewhere a thread watches the parent's pid), ignores SIGINT (a Ctrl-C
  reaches the whole process group; only the parent acts on it), and is terminated when the study
  stops. A killed worker leaves no half-written cell (see `store`); a cell whose worker died is
  reported failed.
- Reports arrive as cells finish (each worker streams `(key, status)` through a pipe).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

from .schedule import SKIPPED, CellStore, work

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class Local:
    """`jobs` worker processes on this machine (1: this process itself)."""

    jobs: int = 1

    def run(self, folder, groups, job, report) -> None:
        if self.jobs == 1 or len(groups) <= 1:
            with CellStore(folder) as store:
                store.join()
                work(store, groups, job, report)
        else:
            _run_in_workers(str(folder), groups, job, self.jobs, report)


def _run_in_workers(folder: str, groups, job, jobs: int, report) -> None:
    context = multiprocessing.get_context("spawn")
    keys = [cell.key for group in groups for cell in group.cells]
    workers = {}
    # Started with SIGINT ignored, which they inherit (see the module docstring).
    ignoring = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for index in range(min(jobs, len(groups))):
            start = index * len(groups) // jobs  # each worker starts on its own stretch of the groups
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker,
                daemon=True,
                name=f"optbench-cells-{index + 1}",
                args=(os.getpid(), folder, groups[start:] + groups[:start], job, sender),
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
                    continue  # a sibling looked at a group after the worker that computed it
                reported.add(key)
                report(key, status)
    finally:
        _stop(workers.values())
    for key in keys:
        if key not in reported:
            report(key, "failed: its worker process died before finishing it (out of memory?)")


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


def _worker(parent: int, folder: str, groups, job, sender) -> None:
    _die_with(parent)
    try:
        with CellStore(folder) as store:
            store.join()
            work(store, groups, job, lambda key, status: sender.send((key, status)))
    finally:
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
