"""One definition of divergence (`runners.divergence`), seen the same way by every runner's table."""

import math

import numpy as np

import optbench
from optbench.runners.divergence import DIVERGENCE_FACTOR, first_divergence, is_diverged
from optbench.runners.regression import scalar_trace


def test_the_definition_counts_non_finite_and_a_thousandfold_growth():
    assert is_diverged(math.nan, 1.0) and is_diverged(math.inf, 1.0)
    assert not is_diverged(DIVERGENCE_FACTOR * 2.0 - 1, 1.0)  # limit: 1e3 (|1 - 0| + 1)
    assert is_diverged(DIVERGENCE_FACTOR * 2.0 + 1, 1.0)
    assert not is_diverged(-1e300, 1.0, reference=None)  # unbounded below: only NaN/inf
    assert first_divergence([10.5, 20.0, 2e4, math.nan]) == 2
    assert first_divergence([10.5, 1.0, 0.5]) is None


def test_a_surface_run_whose_loss_grows_half_a_million_fold_is_diverged():
    # lr 0.6 > 2/λ_max = 0.5 on bowl: |1 - 0.6·4| = 1.4 per step, 10.5 -> 5.6e6 in 20 steps
    metrics = optbench.compare(["sgd:lr=0.6"], "bowl", steps=20).metrics.iloc[0]
    assert metrics["final_loss"] > 1e6
    assert metrics["diverged"]
    # the y term 8·1.4^(2t) first passes 1e3 (10.5 + 1) = 11500 at t = 11
    assert metrics["diverged_at"] == 11


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
