"""Task, surface and benchmark-task names with their kinds, and the check of a name given at the edge,
all without torch.

The registry (`registry.py`) builds its tasks with torch, but the command line must refuse a mistyped
`--task`, `--surface`, `--suite` or `--tasks` before loading it. So the built-in tasks' names and kinds
are listed here once: the registry builds its surface tasks from `SURFACES` and raises its
unknown-name errors through the checks below, so both say the same line, and tests/test_startup.py
checks that the registry holds exactly these names, aliases and kinds.
"""

from __future__ import annotations

import sys
from types import MappingProxyType

from ..errors import OptbenchError, did_you_mean
from .defaults import BENCH_NETWORKS, BENCH_SUITES, BENCH_TASKS
from .problem import TaskKind

SURFACE_PREFIX = "surface:"  # a surface task's name: 'surface:elliptic', 'surface:quadratic:dim=20'
EXPRESSION = "expr"  # `expr:FORMULA`: a surface of the user's formula (objectives.expression_surface)

# the keys of `objectives.SURFACES`, in its order (the order `optbench list` shows them)
SURFACES = (
    "elliptic",
    "bowl",
    "saddle",
    "monkey-saddle",
    "rosenbrock",
    "beale",
    "himmelblau",
    "rastrigin",
    "quadratic",
)

BUILT_IN = MappingProxyType(
    {
        "digits": TaskKind.CLASSIFICATION,
        "mnist": TaskKind.CLASSIFICATION,
        "fashion-mnist": TaskKind.CLASSIFICATION,
        "cifar10": TaskKind.CLASSIFICATION,
        "scalar": TaskKind.REGRESSION,
        "linreg": TaskKind.REGRESSION,
        "shakespeare": TaskKind.LANGUAGE_MODEL,
        "shakespeare-tiny": TaskKind.LANGUAGE_MODEL,
        **{SURFACE_PREFIX + name: TaskKind.SURFACE for name in SURFACES},
    }
)
ALIASES = MappingProxyType({"regression": "linreg", "fashionmnist": "fashion-mnist"})


def normalized(name: str) -> str:
    """The form names are compared in: stripped, lower case, '-' for '_'."""
    return str(name).strip().lower().replace("_", "-")


def known() -> tuple[dict, dict]:
    """(task name -> TaskKind, alias -> task name) of every task `get_task` resolves: the registry's
    once it is loaded (a Python session may register tasks of its own), else the built-in table."""
    registry = sys.modules.get(f"{__package__}.registry")
    if registry is None:
        return dict(BUILT_IN), dict(ALIASES)
    return {name: task.kind for name, task in registry.TASKS.items()}, dict(registry.ALIASES)


def check_task_name(name: str) -> None:
    """Raise OptbenchError ("unknown task 'digts'; did you mean 'digits'? (valid: ...)") unless `name`
    is a task's name or alias, or 'surface:NAME' with NAME a surface (settings after it unchecked)."""
    text = str(name).strip()
    if normalized(text).startswith(SURFACE_PREFIX):
        check_surface_name(text[len(SURFACE_PREFIX) :])
        return
    kinds, aliases = known()
    key = normalized(text)
    if aliases.get(key, key) not in kinds:
        raise did_you_mean("task", name, [*kinds, *aliases])


def check_surface_name(text: str) -> None:
    """Raise OptbenchError ("unknown surface 'elipic'; did you mean 'elliptic'? ...") unless `text`
    ('elliptic', 'quadratic:dim=20', 'expr:x**2', with or without 'surface:') names a surface."""
    text = str(text).strip()
    if normalized(text).startswith(SURFACE_PREFIX):
        text = text[len(SURFACE_PREFIX) :]
    base = text.partition(":")[0].strip()
    surfaces = surface_names()
    if normalized(base) not in surfaces and normalized(base) != EXPRESSION:
        raise did_you_mean("surface", base, [*surfaces, f"{EXPRESSION}:FORMULA"])


def surface_names() -> list[str]:
    """The surfaces' names without 'surface:', as `check_surface_name` accepts them."""
    kinds, _ = known()
    return [name[len(SURFACE_PREFIX) :] for name, kind in kinds.items() if kind is TaskKind.SURFACE]


def check_compare_name(name: str) -> None:
    """What `compare --surface NAME` accepts: a task other than a surface by name or alias ('linreg';
    the registry then checks it runs in compare), else a surface as `check_surface_name` takes it."""
    kinds, aliases = known()
    key = normalized(name)
    kind = kinds.get(aliases.get(key, key))
    if kind is None or kind is TaskKind.SURFACE:
        check_surface_name(name)


def bench_task_names(suite) -> list[str]:
    """The benchmark tasks (keys of `defaults.BENCH_TASKS` and `BENCH_NETWORKS`) of a suite: its name ('quick', 'default')
    or a list of task names. Raises OptbenchError for an unknown suite or task, an empty list, or a task
    listed twice (its rows would count twice in the profiles)."""
    if not isinstance(suite, (str, list, tuple)):
        raise OptbenchError(f"a benchmark suite is a suite's name or a list of task names, got {suite!r}")
    names = BENCH_SUITES.get(suite) if isinstance(suite, str) else suite
    if names is None:
        raise did_you_mean("suite", suite, BENCH_SUITES)
    names = list(names)
    if not names:
        raise OptbenchError("the benchmark suite is empty: give at least one task")
    for position, name in enumerate(names):
        check_bench_task(name)
        if name in names[:position]:
            raise OptbenchError(
                f"benchmark task '{name}' is given twice: each task counts once in the profiles"
            )
    return names


def check_bench_task(name: str) -> None:
    """Raise OptbenchError unless `name` is a benchmark task (a key of `defaults.BENCH_TASKS` or
    `defaults.BENCH_NETWORKS`)."""
    if not isinstance(name, str) or (name not in BENCH_TASKS and name not in BENCH_NETWORKS):
        raise did_you_mean("benchmark task", str(name), {**BENCH_TASKS, **BENCH_NETWORKS})
