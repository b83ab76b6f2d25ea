"""One definition of divergence (`runners.divergence`), seen the same way by every runner's table."""

import math

import numpy as np

import optbench
from optbench.runners.divergence import (
    DIVERGENCE_FACTOR,
    GROWTH_FACTOR,
    diverged_at,
    first_divergence,
    growth_limit,
    is_diverged,
)
from optbench.runners.regression import scalar_trace


def test_the_blow_up_limit_counts_non_finite_and_a_thousandfold_growth():
    assert is_diverged(math.nan, 1.0) and is_diverged(math.inf, 1.0)
    assert not is_diverged(DIVERGENCE_FACTOR * 2.0 - 1, 1.0)  # limit: 1e3 (|1 - 0| + 1)
    assert is_diverged(DIVERGENCE_FACTOR * 2.0 + 1, 1.0)
    assert not is_diverged(-1e300, 1.0, reference=None)  # unbounded below: only NaN/inf


def test_a_run_diverged_where_it_left_its_start_for_good():
    # non-finite: diverged from the step after the last one at or below the start
    assert first_divergence([10.5, 20.0, 2e4, math.nan]) == 1
    assert first_divergence([10.5, 5.0, 20.0, 3.0, 1e4, math.nan]) == 4
    # a transient excursion, 10^4-fold, that comes back is not divergence
    assert first_divergence([10.5, 1e5, 1.0, 1e-90]) is None
    # ends an order of magnitude above its start scale: a finite blow-up
    assert first_divergence([10.0, 9.0, 50.0, GROWTH_FACTOR * 11.0 + 1]) == 2
    assert first_divergence([10.0, 9.0, 50.0, GROWTH_FACTOR * 11.0 - 1]) is None
    assert first_divergence([-5.0, -1e300, math.nan], reference=None) == 2
    # columns are runs
    at = diverged_at(np.array([[10.5, 10.5], [1e5, 20.0], [1e-9, 1e4]]))
    assert np.isnan(at[0]) and at[1] == 1


def test_d2l_gradient_descent_with_eta_1_1_is_diverged_not_stalled():
    # d2l 12.3.1: f = x², x_0 = 10, η = 1.1: x_t = 10 (1 - 2η)^t = 10 (-1.2)^t, |x_10| = 61.9
    losses = [(10 * (-1.2) ** t) ** 2 for t in range(11)]
    assert math.isclose(math.sqrt(losses[-1]), 61.917, rel_tol=1e-4)
    assert first_divergence(losses) == 1  # it grows from the first step
    # the same on a surface: bowl's y-axis (2y², λ = 4) at lr 0.55 grows |1 - 4·0.55| = 1.2-fold a step
    # while x shrinks |1 - 0.2·0.55| = 0.89-fold; f_20 = 2.5·0.89^40 + 8·1.2^40 = 11,760 > 10 (10.5 + 1)
    metrics = optbench.compare(["sgd:lr=0.55"], "bowl", steps=20).metrics.iloc[0]
    assert math.isclose(metrics["final_loss"], 2.5 * 0.89**40 + 8 * 1.2**40, rel_tol=1e-9)
    assert metrics["diverged"] and metrics["diverged_at"] == 1
    assert metrics["outcome"] == "diverged at step 1"


def test_a_run_that_spikes_and_then_reaches_the_target_is_not_diverged():
    # RMSprop's first step is lr g / sqrt((1 - α) g²) = 10 lr per coordinate (α = 0.99): at lr 100 it
    # jumps from (40, 20) to (-960, -980), f = 960² + 10·980², past the thousand-fold blow-up limit
    compare = optbench.compare(["rmsprop:lr=100"], "elliptic", steps=100)
    metrics, trajectory = compare.metrics.iloc[0], compare.trajectory
    losses = trajectory.sort_values("step")["loss"].to_numpy()
    assert math.isclose(losses[1], 960.0**2 + 10 * 980.0**2, rel_tol=1e-6)
    assert is_diverged(losses[1], losses[0])  # the excursion
    assert metrics["steps_to_tolerance"] < 10 and not metrics["diverged"]
    assert metrics["outcome"].startswith("reached")
    assert not trajectory["diverged"].any()


def test_a_surface_run_whose_loss_grows_half_a_million_fold_is_diverged():
    # lr 0.6 > 2/λ_max = 0.5 on bowl: |1 - 0.6·4| = 1.4 per step, 10.5 -> 5.6e6 in 20 steps;
    # f_1 = 2.5·0.88² + 8·1.96 = 17.6 > f_0 = 10.5 and it never comes back: diverged at step 1
    compare = optbench.compare(["sgd:lr=0.6"], "bowl", steps=20)
    metrics = compare.metrics.iloc[0]
    assert metrics["final_loss"] > 1e6
    assert metrics["diverged"]
    assert metrics["diverged_at"] == 1
    steps = compare.trajectory.set_index("step")["diverged"]
    assert not steps.loc[0] and steps.loc[1:].all()


def test_the_scalar_example_flags_its_divergence():
    trace = scalar_trace("sgd:lr=5", steps=2000)
    assert trace["a_next"].isna().iloc[-1]
    assert trace["diverged"].iloc[-1] and trace["diverged"].is_monotonic_increasing
    assert not scalar_trace("sgd").diverged.any()


def test_an_unstable_noise_floor_setting_is_not_shown_as_a_settled_floor():
    study = optbench.noise_floor(["sgd"], steps=200, batch_sizes=[1], floor_lrs=[0.01, 0.3])
    floors = study.floors.set_index("lr")
    assert floors.loc[0.3, "theory"] == math.inf
    assert np.isnan(floors.loc[0.3, "measured"]) and floors.loc[0.3, "outcome"] != "settled"
    assert floors.loc[0.01, "outcome"] == "settled" and floors.loc[0.01, "measured"] > 0


def test_a_run_still_coming_back_from_an_excursion_when_its_budget_ends_is_not_diverged():
    # ends 13x above its start but its last quarter stays below its earlier peak: coming back
    losses = [10.0, 1e4, 5e3, 2e3, 1e3, 500.0, 300.0, 200.0, 150.0]
    assert first_divergence(losses) is None
    # the same gaps in the opposite order (still rising at the end) diverged from step 1
    assert first_divergence([10.0] + losses[:0:-1]) == 1
    # torch's first momentum step is undampened: at lr 1.18, dampening 0.9 the run jumps 370-fold at
    # step 1 and is still coming down at step 30 (effective lr 0.118 < the edge 2 (1 + μ) / λ / (1 - d))
    metrics = optbench.compare(["sgd:lr=1.18,momentum=0.9,dampening=0.9"], "elliptic", steps=30).metrics
    assert metrics["final_loss"].iloc[0] > growth_limit(5600.0)
    assert not metrics["diverged"].iloc[0]
