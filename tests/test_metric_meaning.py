"""Metrics mean what the README says: tolerance from the run's own start, gradient evaluations counted,
and a "not reached" that says why."""

import math

import pytest
import torch

import optbench
from optbench.errors import OptbenchError
from optbench.objectives import get_surface


def test_steps_to_tol_uses_the_runs_own_start_and_a_settable_tolerance():
    surface = get_surface("elliptic")  # x² + 10y²
    result = optbench.compare(["sgd"], surface, start=[10, 0])
    metrics, loss = result.metrics.iloc[0], result.trajectory["loss"]
    assert metrics["tolerance"] == pytest.approx(1e-6 * 100.0)  # f(10, 0) = 100, not f(default start)
    assert result.meta["tolerance"] == pytest.approx(1e-4) and result.meta["relative_tolerance"] == 1e-6
    reached = int(metrics["steps_to_tolerance"])
    assert loss.iloc[reached] <= 1e-4 < loss.iloc[reached - 1]
    looser = optbench.compare(["sgd"], surface, start=[10, 0], tolerance=1e-2).metrics.iloc[0]
    assert looser["tolerance"] == pytest.approx(1.0)
    assert looser["steps_to_tolerance"] < reached
    with pytest.raises(OptbenchError, match="relative tolerance"):
        optbench.compare(["sgd"], surface, tolerance=0)


def test_lbfgs_counts_every_gradient_evaluation_as_torch_does():
    surface = get_surface("elliptic")
    metrics = optbench.compare(["lbfgs"], surface, steps=30).metrics.iloc[0]
    theta = torch.tensor(surface.start, dtype=torch.float64, requires_grad=True)
    reference = torch.optim.LBFGS([theta])

    def closure():
        reference.zero_grad()
        value, gradient = surface.evaluate(theta.detach()[None])
        theta.grad = gradient[0]
        return float(value[0])

    for _ in range(30):
        reference.step(closure)
    # torch counts closure calls in func_evals; a step that finds the gradient already small calls it once
    assert metrics["gradient_evaluations"] == reference.state[theta]["func_evals"]
    assert metrics["evaluations_to_tolerance"] > metrics["steps_to_tolerance"]
    one_gradient = optbench.compare(["sgd"], surface).metrics.iloc[0]
    assert one_gradient["evaluations_to_tolerance"] == one_gradient["steps_to_tolerance"]


@pytest.mark.parametrize(
    "spec, outcome",
    [
        ("sgd", "reached at step 33"),
        # |1 - 0.5·20| = 9 per step along y: f_1 = 10 (9·20)² > f_0 = 5600 and f never comes back
        ("sgd:lr=0.5", "diverged at step 1"),
        ("sgd:lr=0.001", "budget ran out after 100 steps"),  # slow, but f still falls every step
        ("sgd:lr=0", "stalled (not reached in 100 steps)"),
    ],
)
def test_not_reached_says_why_and_shows_the_budget(spec, outcome):
    assert optbench.compare([spec], "elliptic").metrics.iloc[0]["outcome"] == outcome


def test_a_sweep_cell_that_missed_its_target_says_why():
    import pandas as pd

    from optbench.sweeps.analysis import target_outcome

    cell = pd.DataFrame(
        {
            "step": [0, 10, 20, 30, 40],
            "diverged": False,
            "eval_accuracy": [0.1, 0.3, 0.5, 0.7, 0.8],
            "eval_loss": math.nan,
        }
    )
    assert target_outcome(cell, cell, math.nan, target_accuracy=0.9) == "budget ran out after 40 steps"
    flat = cell.assign(eval_accuracy=[0.1, 0.5, 0.6, 0.6, 0.6])
    assert target_outcome(flat, flat, math.nan, target_accuracy=0.9) == "stalled after 40 steps"
    assert target_outcome(cell.assign(diverged=True), cell, math.nan, 0.9) == "diverged by step 40"
    assert target_outcome(cell, cell, 35.0, target_accuracy=0.8) == "reached"
