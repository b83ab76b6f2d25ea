"""The multi-task benchmark: the tuning protocol (search spaces, studies), the suite of tasks, the
runs on the cell engine, and the scores across tasks (performance profiles, ranking with bootstrap
intervals).

`optbench.bench(optimizers, suite=...)` calls `run.bench`: this package is callable, since a
subpackage and a function cannot share the name `optbench.bench`. Its submodules load on first use.
"""

import importlib
import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        """`optbench.bench(...)` is `optbench.bench.run.bench(...)`; see its docstring."""
        from .run import bench

        return bench(*args, **kwargs)

    @property
    def __signature__(self):
        """`run.bench`'s, so `inspect.signature(optbench.bench)`, notebooks' call tips and a
        misspelt keyword's TypeError show its parameters (trials_per_study, not trials), not
        (*args, **kwargs)."""
        import inspect

        from .run import bench

        return inspect.signature(bench)


def __getattr__(name):
    if name == "BenchResult":
        return importlib.import_module(".result", __name__).BenchResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _CallablePackage
