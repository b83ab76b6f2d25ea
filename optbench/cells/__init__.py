"""The one cell engine: content keys, the store, the scheduler and its executors.

A study (a sweep, a resumable train, the benchmark) is a set of cells, each keyed by a hash of its
fully resolved settings (`keys.content_key`: ints stay ints, `1 != 1.0`, large ints exact). Finished
cells live in one folder (`store.CellStore`: atomic, resumable, locked). The scheduler
(`schedule.schedule`) computes the unfinished ones, group by group (cells one program computes
together), through an executor: `Local(jobs)` worker processes or `Submitit(...)` cluster jobs.
"""

from .cluster import Submitit
from .keys import canonical, content_key
from .processes import Local
from .schedule import DONE, SHARED, SKIPPED, Group, Interrupted, schedule, work
from .store import CellStore

__all__ = [
    "DONE",
    "SHARED",
    "SKIPPED",
    "CellStore",
    "Group",
    "Interrupted",
    "Local",
    "Submitit",
    "canonical",
    "content_key",
    "schedule",
    "work",
]
