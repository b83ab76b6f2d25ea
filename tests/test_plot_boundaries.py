"""Plots take tables and return figures: they choose no backend, edit no global style, import no runner."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import optbench

PLOTS = Path(optbench.__file__).parent / "plots"

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import matplotlib
matplotlib.use("svg")                       # a user's own choice, e.g. a notebook's backend
before = matplotlib.get_backend(), dict(matplotlib.rcParams)
import optbench
for module in pkgutil.walk_packages(optbench.__path__, "optbench."):
    if not module.name.endswith("__main__"):   # that one runs the command
        importlib.import_module(module.name)
import optbench.cli
optbench.compare("sgd", steps=5).plot()     # drawing applies the style in a context only
after = matplotlib.get_backend(), dict(matplotlib.rcParams)
assert before[0] == after[0], (before[0], after[0])
changed = sorted(k for k in before[1] if before[1][k] != after[1][k])
assert not changed, changed
print("unchanged", after[0])
"""

ENTRY_CHOOSES_AGG = """
import matplotlib
from optbench.cli import entry
try:
    entry(["list"])
except SystemExit as done:
    assert done.code == 0, done.code
print("backend", matplotlib.get_backend())
"""


def run_python(code: str, env_backend: str) -> str:
    env = {**os.environ, "MPLBACKEND": env_backend, "PYTHONPATH": str(PLOTS.parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_importing_optbench_leaves_the_backend_and_rcparams_alone():
    assert "unchanged svg" in run_python(IMPORT_EVERY_MODULE, "pdf")


def test_the_cli_chooses_agg_in_its_entry_function():
    assert run_python(ENTRY_CHOOSES_AGG, "svg").strip().lower().endswith("backend agg")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against optbench.plots."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = {0: "", 1: "optbench.plots.", 2: "optbench."}[node.level] + (node.module or "")
            names |= {base} if node.module else {f"{base}{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", sorted(PLOTS.glob("*.py")), ids=lambda path: path.name)
def test_plots_import_no_runner_and_no_sweep_code(path):
    # the one list of sweep setting columns is a schema, shared with the plots on purpose
    runners = [
        name
        for name in imported_modules(path)
        if name != "optbench.sweeps.columns"
        and name.startswith(("optbench.runners", "optbench.sweeps", "optbench.experiments"))
    ]
    assert not runners, f"{path.name} imports {runners}"


def test_fair_and_surfaces_plots_stay_apart():
    assert not {m for m in imported_modules(PLOTS / "fair.py") if m.startswith("optbench.plots.surfaces")}
    assert not {m for m in imported_modules(PLOTS / "surfaces.py") if m.startswith("optbench.plots.fair")}
