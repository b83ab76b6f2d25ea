"""Executable tasks: one default resolution for every command, every listed task accepted by the
commands that say they take it, and a task registered in one place running through them."""

import pytest

import optbench
from optbench.errors import OptbenchError
from optbench.objectives import SURFACES
from optbench.optimizers.registry import ALGORITHMS, PRESETS
from optbench.specs import parse_optimizer
from optbench.sweeps import SweepSpec
from optbench.sweeps.cells import expand
from optbench.sweeps.spec import validate
from optbench.tasks import TASKS, TaskKind
from optbench.tasks import defaults as D


def _runnable_names():
    """Every algorithm and preset a spec can name (SparseAdam steps sparse gradients only: refused)."""
    names = []
    for name in [*ALGORITHMS, *PRESETS]:
        try:
            spec = parse_optimizer(name)
        except OptbenchError:
            continue
        if "lr" in spec.resolved():  # Lookahead's wrapper takes no lr of its own (defaults.UNTUNED)
            names.append(name)
    return names


@pytest.mark.parametrize("surface", list(SURFACES))
def test_compare_and_sweep_take_the_same_default_lr_for_every_optimizer(surface):
    names = _runnable_names()
    assert {"sgd", "adam", "momentum", "nesterov", "rmsprop", "lamb"} <= set(names)
    for name in names:
        compared = optbench.compare([name], surface, steps=1).meta["resolved"][name]["lr"]
        spec = SweepSpec(
            task=f"surface:{surface}", optimizers=(name,), batch_sizes=(1,), lr_scales=("none",), steps=1
        )
        swept = expand(spec)[0].lr
        assert swept == pytest.approx(compared, rel=1e-12), (surface, name)
    # the case that disagreed: momentum on elliptic takes its own row of the table in both
    assert (
        surface != "elliptic"
        or optbench.compare(["momentum"], surface, steps=1).meta["resolved"]["momentum"]["lr"]
        == D.SURFACE_LR_BY_OPTIMIZER["elliptic"]["momentum"]
    )


def test_every_listed_task_is_accepted_by_the_commands_it_lists_and_refused_by_name_elsewhere():
    for task in TASKS.values():
        for command in ("train", "sweep", "compare", "grid"):
            if command in task.commands:
                assert task.require(command) is task
            else:
                with pytest.raises(
                    OptbenchError, match=f"{command} does not run task '{task.name}'.*runs in"
                ):
                    task.require(command)
        if "sweep" in task.commands:
            validate(SweepSpec(task=task.name, steps=5 if task.kind is not TaskKind.CLASSIFICATION else None))
        else:
            with pytest.raises(OptbenchError, match="sweep does not run task"):
                validate(SweepSpec(task=task.name))
        if task.kind is TaskKind.SURFACE:
            assert optbench.compare(["sgd"], task.name, steps=2).metrics.shape[0] == 1


def test_sweep_of_scalar_says_which_commands_run_it():
    from click.testing import CliRunner

    from optbench.cli import main

    result = CliRunner().invoke(main, ["sweep", "--task", "scalar", "--out", "unused"])
    assert result.exit_code == 2
    assert "sweep does not run task 'scalar' (regression); it runs in: train" in result.output
