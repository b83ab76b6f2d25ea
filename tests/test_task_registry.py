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
from optbench.tasks import TASKS, TaskKind, get_task
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


@pytest.mark.slow
def test_a_python_sweep_on_digits_fits_the_same_finite_critical_batch_size_as_the_cli(tmp_path):
    import math

    import pandas as pd
    from click.testing import CliRunner

    from optbench.cli import main

    folder = tmp_path / "digits"
    python = optbench.sweep(
        task="digits",
        batch_sizes=[16, 32, 64, 128],
        lr_scales="linear",
        steps=160,
        evaluations=32,
        folder=folder,
    )
    fitted = python.critical.set_index("lr_scale").loc["linear", "critical_batch_size"]
    assert math.isfinite(fitted) and 16 <= fitted <= 128
    # the same settings from the command line, into the same folder: every cell is reused (the specs
    # are equal) and the analysis, with the target the task gives, is the CLI's own
    args = ["sweep", "--batch-size", "16,32,64,128", "--lr-scale", "linear", "--steps", "160"]
    cli = CliRunner().invoke(main, [*args, "--evaluations", "32", "--out", str(folder), "--format", "png"])
    assert cli.exit_code == 0, cli.output
    critical = pd.read_parquet(folder / "critical.parquet").set_index("lr_scale")
    assert critical.loc["linear", "critical_batch_size"] == fitted


def test_tuning_takes_a_task_and_a_search_space():
    from optbench.runners.surface import fixed_starts
    from optbench.runners.tuning import tune, tuning_axes

    task, sgd = get_task("surface:elliptic"), parse_optimizer("sgd")
    axes = tuning_axes(["lr"], {"lr": "0.01:0.1:3:log"})
    metrics = tune(sgd, task, fixed_starts(task.surface), 20, axes)
    assert sorted(metrics["lr"]) == pytest.approx([0.01, 0.1**1.5, 0.1])
    by_name = tune(sgd, "elliptic", fixed_starts(task.surface), 20, axes)
    assert by_name["final_loss"].tolist() == metrics["final_loss"].tolist()
    with pytest.raises(OptbenchError, match="task 'digits' \\(classification\\) is tuned by a sweep"):
        tune(sgd, get_task("digits"), fixed_starts(task.surface), 20, axes)
