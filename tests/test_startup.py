"""Start-up: help pages and mistyped names answer without loading torch, pandas, scipy or matplotlib.

Checked by what each invocation imported (in a fresh interpreter), never by a clock; the time ratio
against a bare `import torch` is measured by benchmarks/startup.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from optbench.cli import COMMANDS, load_command

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


# train and sweep show defaults read from the task registry and SweepSpec in their help, which load torch
# today (a torch-free defaults table is the next step); every other help page must stay light.
LIGHT_HELP = [name for name in COMMANDS if name not in ("train", "sweep")]


@pytest.mark.parametrize("args", [["--help"], *([name, "--help"] for name in LIGHT_HELP)])
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
    ],
)
def test_a_mistyped_optimizer_is_refused_before_torch_loads(args):
    code, loaded, stderr = run_cli(*args)
    assert code == 2
    assert "unknown optimizer" in stderr and "did you mean" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert loaded == []


def test_import_optbench_loads_nothing_heavy():
    probe = f"import sys, optbench; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_listed_summary_is_its_commands_own_first_line(name):
    command = load_command(name)
    assert command.name == name
    assert COMMANDS[name][1] == command.help.strip().splitlines()[0]
