"""The batched surface runner: closed forms, batched == separate, ours == torch.optim, seeds."""

import math

import pandas as pd
import pytest
import torch

from optbench.errors import OptbenchError
from optbench.objectives import get_surface
from optbench.runners import recorder
from optbench.runners import surface as runner
from optbench.runners.surface import random_starts, run_surface
from optbench.specs import parse_optimizer
from optbench.tasks import surface_task


def test_gradient_descent_on_quadratic_matches_closed_form():
    # f = x² + 10y²: plain GD multiplies each coordinate by (1 - lr·λ_i) per step, λ = (2, 20)
    surface, lr, steps = get_surface("elliptic"), 0.05, 30
    run = run_surface(parse_optimizer(f"sgd:lr={lr}"), surface, torch.tensor([[40.0, 20.0]]), steps)
    table = run.trajectory
    t = torch.tensor(table["step"].to_numpy(), dtype=torch.float64)
    expected_x = 40.0 * (1 - lr * 2) ** t
    expected_y = 20.0 * (1 - lr * 20) ** t
    torch.testing.assert_close(torch.tensor(table["x"].to_numpy()), expected_x)
    torch.testing.assert_close(torch.tensor(table["y"].to_numpy()), expected_y)
    torch.testing.assert_close(torch.tensor(table["loss"].to_numpy()), expected_x**2 + 10 * expected_y**2)
    metrics = run.metrics.iloc[0]
    # steps to tolerance: first t with f_t <= 1e-6 f_0 (y vanishes after one step at lr=0.05)
    f = expected_x**2 + 10 * expected_y**2
    assert (
        metrics["steps_to_tolerance"] == int(torch.nonzero(f <= 1e-6 * f[0])[0])
        if (f <= 1e-6 * f[0]).any()
        else math.isnan(metrics["steps_to_tolerance"])
    )
    path = (torch.diff(expected_x) ** 2 + torch.diff(expected_y) ** 2).sqrt().sum()
    assert metrics["path_length"] == pytest.approx(float(path))


def test_quadratic_n_dim_gradient_descent_closed_form():
    surface = get_surface("quadratic:dim=8,condition=100")
    lr, steps = 0.015, 20
    run = run_surface(parse_optimizer(f"sgd:lr={lr}"), surface, torch.ones(1, 8, dtype=torch.float64), steps)
    eigenvalues = torch.tensor(surface.hessian_eigenvalues, dtype=torch.float64)
    final = run.metrics[[f"final_x{i}" for i in range(8)]].to_numpy()[0]
    torch.testing.assert_close(torch.tensor(final), (1 - lr * eigenvalues) ** steps)
    assert {"x0", "x7"} <= set(run.trajectory.columns) and "y" not in run.trajectory.columns


SPECS = [
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "adam:amsgrad=true",
    "adamw",
    "rmsprop:centered=true,momentum=0.5",
    "adagrad",
]


@pytest.mark.parametrize("text", SPECS)
def test_batched_equals_separate_single_trial_runs(text):
    surface = get_surface("rosenbrock")
    starts = random_starts(surface, 5, seed=1)
    batched = run_surface(parse_optimizer(text), surface, starts, 40).trajectory
    for trial in range(5):
        alone = run_surface(parse_optimizer(text), surface, starts[trial : trial + 1], 40).trajectory
        mine = batched[batched["trial"] == trial]
        torch.testing.assert_close(
            torch.tensor(mine[["x", "y", "loss"]].to_numpy()),
            torch.tensor(alone[["x", "y", "loss"]].to_numpy()),
            rtol=1e-12,
            atol=1e-12,
            equal_nan=True,
        )


def test_grid_equals_separate_runs_at_each_cell():
    surface = get_surface("elliptic")
    lrs, momenta = torch.tensor([0.01, 0.05, 0.09]), torch.tensor([0.0, 0.5, 0.9])
    start = torch.tensor([surface.start] * 3, dtype=torch.float64)
    grid = run_surface(
        parse_optimizer("sgd"), surface, start, 25, grid={"lr": lrs, "momentum": momenta}
    ).metrics
    for i in range(3):
        alone = run_surface(
            parse_optimizer(f"sgd:lr={lrs[i]:.17g},momentum={momenta[i]:.17g}"), surface, start[:1], 25
        ).metrics
        assert grid["final_loss"][i] == pytest.approx(alone["final_loss"][0], rel=1e-12)
    assert list(grid["lr"]) == pytest.approx(lrs.tolist()) and list(grid["momentum"]) == pytest.approx(
        momenta.tolist()
    )


def test_grid_over_betas_equals_separate_runs():
    surface = get_surface("bowl")
    beta1 = torch.tensor([0.0, 0.5, 0.9])
    start = torch.tensor([surface.start] * 3, dtype=torch.float64)
    grid = run_surface(parse_optimizer("adam"), surface, start, 20, grid={"beta1": beta1}).metrics
    for i in range(3):
        alone = run_surface(
            parse_optimizer(f"adam:betas={beta1[i]:.17g}/0.999"), surface, start[:1], 20
        ).metrics
        assert grid["final_loss"][i] == pytest.approx(alone["final_loss"][0], rel=1e-12)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad"])
@pytest.mark.parametrize("surface_name", ["elliptic", "rosenbrock", "himmelblau"])
def test_ours_equals_torch_optim_on_surfaces(name, surface_name):
    surface = get_surface(surface_name)
    starts = random_starts(surface, 4, seed=2)
    ours = run_surface(parse_optimizer(name), surface, starts, 60).trajectory
    theirs = run_surface(parse_optimizer(f"torch:{name}"), surface, starts, 60).trajectory
    torch.testing.assert_close(
        torch.tensor(ours[["x", "y", "loss"]].to_numpy()),
        torch.tensor(theirs[["x", "y", "loss"]].to_numpy()),
        rtol=1e-9,
        atol=1e-9,
        equal_nan=True,
    )


def test_same_seed_identical_tables_with_noise():
    surface = get_surface("bowl")
    starts = random_starts(surface, 6, seed=4)
    first = run_surface(parse_optimizer("adam"), surface, starts, 30, noise=0.5, seed=4)
    again = run_surface(
        parse_optimizer("adam"), surface, random_starts(surface, 6, seed=4), 30, noise=0.5, seed=4
    )
    other = run_surface(parse_optimizer("adam"), surface, starts, 30, noise=0.5, seed=5)
    pd.testing.assert_frame_equal(first.trajectory, again.trajectory)
    pd.testing.assert_frame_equal(first.metrics, again.metrics)
    assert not first.trajectory["x"].equals(other.trajectory["x"])


@pytest.mark.parametrize("text", ["adam:lr=0.05", "lbfgs:lr=0.5", "lamb:lr=0.05"])
def test_a_noisy_trial_sees_the_same_noise_alone_as_in_its_batch(text):
    """Batched (Adam), one at a time with line-search re-evaluations (L-BFGS) and reducing (LAMB): each
    trial's noise comes from its own key, so running it alone changes no number."""
    surface = get_surface("rosenbrock")
    starts = random_starts(surface, 3, seed=2)
    batch = run_surface(parse_optimizer(text), surface, starts, 25, noise=0.3, seed=9).trajectory
    for trial in range(3):
        alone = run_surface(
            parse_optimizer(text), surface, starts[trial : trial + 1], 25, noise=0.3, noise_keys=[[9, trial]]
        ).trajectory
        mine = batch[batch["trial"] == trial].drop(columns="trial").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone.drop(columns="trial"))


def test_divergence_is_recorded_not_raised():
    surface = get_surface("elliptic")
    # SGD on x² + 10y² is unstable for lr > 2/20: y is multiplied by (1 - 20 lr) = -9 each step
    run = run_surface(parse_optimizer("sgd:lr=0.5"), surface, torch.tensor([surface.start]), 1000)
    metrics = run.metrics.iloc[0]
    t = torch.arange(1001, dtype=torch.float64)
    f = (40.0 * 0.0**t) ** 2 + 10 * (20.0 * (-9.0) ** t) ** 2
    expected = int(torch.nonzero(f <= f[0])[-1]) + 1  # runners.divergence: after the last f <= f(start)
    assert metrics["diverged"] and metrics["diverged_at"] == expected
    assert run.trajectory["diverged"].iloc[-1] and not run.trajectory["diverged"].iloc[0]
    assert math.isnan(metrics["path_length"])
    assert (
        run.trajectory["loss"].isna().any() or not torch.isfinite(torch.tensor(run.trajectory["loss"])).all()
    )


def test_unbounded_surface_diverges_only_on_overflow():
    surface = get_surface("saddle")
    run = run_surface(parse_optimizer("sgd:lr=0.5"), surface, torch.tensor([surface.start]), 2000)
    metrics = run.metrics.iloc[0]
    # y doubles every step: y_t = 0.01·2^t, and -y² overflows float64 near 2^512
    assert metrics["diverged"] and 500 < metrics["diverged_at"] < 520
    assert math.isnan(metrics["distance_to_minimum"])


def test_recording_strides_when_large(monkeypatch):
    monkeypatch.setattr(runner, "MAX_RECORDED_POINTS", 1000)
    surface = get_surface("elliptic")
    starts = random_starts(surface, 20, seed=0)
    strided = run_surface(parse_optimizer("adam"), surface, starts, 99)
    assert strided.record_every == 2
    steps = sorted(strided.trajectory["step"].unique())
    assert steps[:3] == [0, 2, 4] and steps[-1] == 99
    monkeypatch.setattr(runner, "MAX_RECORDED_POINTS", 10**6)
    full = run_surface(parse_optimizer("adam"), surface, starts, 99)
    # metrics use every step, whatever is kept in the table
    pd.testing.assert_frame_equal(strided.metrics, full.metrics)


def test_metric_chunks_do_not_change_metrics(monkeypatch):
    surface = get_surface("rosenbrock")
    starts = random_starts(surface, 3, seed=0)
    whole = run_surface(parse_optimizer("adam"), surface, starts, 50).metrics
    monkeypatch.setattr(recorder, "BUFFER_ELEMENTS", 20)  # fold every few steps
    chunked = run_surface(parse_optimizer("adam"), surface, starts, 50).metrics
    pd.testing.assert_frame_equal(whole, chunked)


def test_per_trial_algorithms_get_their_own_parameter():
    surface = get_surface("rosenbrock")
    starts = random_starts(surface, 3, seed=0)
    batched = run_surface(parse_optimizer("torch:lbfgs:lr=0.5"), surface, starts, 5)
    assert batched.per_trial
    for trial in range(3):
        alone = run_surface(parse_optimizer("torch:lbfgs:lr=0.5"), surface, starts[trial : trial + 1], 5)
        mine = batched.trajectory[batched.trajectory["trial"] == trial]
        torch.testing.assert_close(
            torch.tensor(mine[["x", "y"]].to_numpy()), torch.tensor(alone.trajectory[["x", "y"]].to_numpy())
        )
    assert batched.metrics["final_loss"].max() < 1e-6  # LBFGS solves Rosenbrock in a few steps


def test_bad_grid_and_steps_are_user_errors():
    surface = get_surface("elliptic")
    start = torch.tensor([surface.start])
    with pytest.raises(OptbenchError, match="cannot vary 'alpha'"):
        run_surface(parse_optimizer("sgd"), surface, start, 5, grid={"alpha": [0.5]})
    with pytest.raises(OptbenchError, match="torch.optim does not"):
        run_surface(parse_optimizer("torch:sgd"), surface, start, 5, grid={"lr": [0.5]})
    with pytest.raises(OptbenchError, match="steps"):
        run_surface(parse_optimizer("sgd"), surface, start, -1)


def test_default_hparams_documented_and_overridable():
    surface = get_surface("elliptic")
    assert surface_task(surface).default_hparams(parse_optimizer("sgd")) == {"lr": 0.09}
    run = run_surface(parse_optimizer("sgd:lr=0.01"), surface, torch.tensor([surface.start]), 3)
    assert run.metrics["lr"][0] == 0.01 and run.metrics["settings"][0] == "lr=0.01"
    quadratic = get_surface("quadratic:dim=4,condition=10")
    assert surface_task(quadratic).default_hparams(parse_optimizer("sgd"))["lr"] == pytest.approx(2 / 11)
