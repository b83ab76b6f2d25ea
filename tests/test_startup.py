"""Start-up: help pages and mistyped names answer without loading torch, pandas, scipy or matplotlib, with
the registry's own line, and the tables the help pages read without torch agree with the registry.

Checked by what each invocation imported (in a fresh interpreter), never by a clock; the time ratio
against a bare `import torch` is measured by benchmarks/startup.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from optbench.bench.suite import suite_tasks
from optbench.cli import COMMANDS, load_command
from optbench.cli import train as train_cli
from optbench.errors import OptbenchError
from optbench.objectives import SURFACES
from optbench.sweeps import SweepSpec
from optbench.tasks import TASKS, TaskKind, get_compare_task, get_surface_task, get_task, names, registry

HEAVY = ("torch", "pandas", "scipy", "matplotlib", "numpy")

PROBE = (
    "HEAVY = "
    + repr(HEAVY)
    + """
import json, sys
from optbench.cli import main
try:
    main.main(sys.argv[1:], prog_name="optbench")
    code = 0
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "loaded": sorted(m for m in HEAVY if m in sys.modules)}), file=sys.stderr)
"""
)


def run_cli(*args: str) -> tuple[int, list[str], str]:
    """(exit status, heavy modules the invocation imported, its stderr without the probe's line)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, check=False
    )
    *lines, last = done.stderr.strip().splitlines()
    report = json.loads(last)
    return report["code"], report["loaded"], "\n".join(lines)


@pytest.mark.parametrize("args", [["--help"], *([name, "--help"] for name in COMMANDS)])
def test_help_pages_load_nothing_heavy(args):
    code, loaded, _ = run_cli(*args)
    assert code == 0
    assert loaded == []


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "adma"],
        ["compare", "sgd", "torch:adma:lr=0.1"],
        ["grid", "sgdd"],
        ["verify", "adma"],
        ["train", "--optimizer", "adma"],
        ["sweep", "--optimizer", "adma"],
        ["bench", "adma"],
    ],
)
def test_a_mistyped_optimizer_is_refused_before_torch_loads(args):
    code, loaded, stderr = run_cli(*args)
    assert code == 2
    assert "unknown optimizer" in stderr and "did you mean" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert loaded == []


def _registry_error(call, *args) -> str:
    """The line the CLI prints for the OptbenchError the registry raises on `call(*args)`."""
    with pytest.raises(OptbenchError) as error:
        call(*args)
    return f"error: {error.value}"


# (command line, the registry's call that refuses the same name)
MISTYPED_TASKS = [
    (["train", "--task", "digts"], lambda: _registry_error(get_task, "digts")),
    (["train", "--task", "surface:elipic"], lambda: _registry_error(get_task, "surface:elipic")),
    (["sweep", "--task", "digts"], lambda: _registry_error(get_task, "digts")),
    (["sweep", "--task", "Shakespear"], lambda: _registry_error(get_task, "Shakespear")),
    (["sweep", "--task", "surface:rosenbrok"], lambda: _registry_error(get_task, "surface:rosenbrok")),
    (["compare", "sgd", "--surface", "elipic"], lambda: _registry_error(get_compare_task, "elipic")),
    (
        ["compare", "sgd", "--surface", "surface:elipic"],
        lambda: _registry_error(get_compare_task, "surface:elipic"),
    ),
    (
        ["grid", "sgd", "--surface", "quadratc:dim=20"],
        lambda: _registry_error(get_surface_task, "quadratc:dim=20"),
    ),
    (["bench", "sgd", "--suite", "defualt"], lambda: _registry_error(suite_tasks, "defualt")),
    (
        ["bench", "sgd", "--tasks", "elliptic,logistc"],
        lambda: _registry_error(suite_tasks, ["elliptic", "logistc"]),
    ),
]


@pytest.mark.parametrize(("args", "expected"), MISTYPED_TASKS, ids=[" ".join(a) for a, _ in MISTYPED_TASKS])
def test_a_mistyped_task_or_surface_gets_the_registrys_line_before_torch_loads(args, expected):
    code, loaded, stderr = run_cli(*args)
    assert code == 2
    assert loaded == []
    assert stderr.strip() == expected()  # the very line the registry (with torch) gives
    assert "did you mean" in stderr


def test_the_light_name_table_is_the_registrys():
    assert names.SURFACES == tuple(SURFACES)
    assert dict(names.BUILT_IN) == {name: task.kind for name, task in TASKS.items()}
    assert dict(names.ALIASES) == registry.ALIASES


def test_a_task_registered_from_python_passes_the_light_check_once_the_registry_is_loaded():
    import dataclasses

    task = registry.register(dataclasses.replace(TASKS["digits"], name="digits-flipped"))
    try:
        names.check_task_name("digits-flipped")
        with pytest.raises(OptbenchError, match="did you mean 'digits-flipped'"):
            names.check_task_name("digits-fliped")
    finally:
        TASKS.pop(task.name)
    with pytest.raises(OptbenchError, match="unknown task 'digits-flipped'"):
        names.check_task_name("digits-flipped")


def test_trains_help_shows_the_registrys_budgets():
    trained = {name: task for name, task in TASKS.items() if "train" in task.commands}
    assert set(train_cli.BUDGETS) == set(trained)
    for name, (epochs, batch_size, steps) in train_cli.BUDGETS.items():
        budget = trained[name].budget
        if trained[name].kind is TaskKind.LANGUAGE_MODEL:
            assert (epochs, steps) == (None, budget.steps)
        else:  # scalar's budget is its iterations, shown as --epochs
            assert (epochs, steps) == (budget.epochs or budget.steps, None)
        assert batch_size == budget.batch_size


def test_sweeps_help_shows_the_apis_defaults():
    """Each option of `optbench sweep` that is a SweepSpec field defaults to the field's default."""
    api = SweepSpec()
    fields = {"batch_size": "batch_sizes", "lr_scale": "lr_scales", "optimizers": "optimizers"}
    shown = {param.name: param.default for param in load_command("sweep").params}
    checked = 0
    for option, default in shown.items():
        name = fields.get(option, option)
        if not hasattr(api, name) or default is None:
            continue
        value = getattr(api, name)
        expected = ",".join(map(str, value)) if option in ("batch_size", "lr_scale") else value
        assert default == expected, option
        checked += 1
    assert checked == 11  # every option with an API default (the rest default to None or are CLI-only)


def test_each_top_level_name_is_its_homes_export():
    """`optbench._HOMES` restates names its subpackages export (it cannot import them to read them
    without loading torch): each resolves to its home's own object, the whole experiments API is top
    level, and of the sweeps package what a user calls (the engine's Cell and SweepPlan stay there; its
    load is the top-level `load`'s job, which reads every kind)."""
    import importlib

    import optbench

    for name, home in optbench._HOMES.items():
        module = importlib.import_module(f"optbench.{home}")
        assert name in getattr(module, "__all__", [name]), (name, home)
        assert getattr(optbench, name) is getattr(module, name)
    top = set(optbench.__all__)
    assert set(importlib.import_module("optbench.experiments").__all__) <= top
    assert set(importlib.import_module("optbench.sweeps").__all__) - top == {"Cell", "SweepPlan"}
    assert optbench.load is importlib.import_module("optbench.experiments").load
    assert set(dir(optbench)) >= top and callable(optbench.bench)


def test_import_optbench_loads_nothing_heavy():
    probe = f"import sys, optbench; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_listed_summary_is_its_commands_own_first_line(name):
    command = load_command(name)
    assert command.name == name
    assert COMMANDS[name][1] == command.help.strip().splitlines()[0]
