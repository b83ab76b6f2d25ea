"""Built-in defaults do what the README promises: every optimizer in `optbench list` reaches the
tolerance on elliptic, bowl and quadratic:dim=10,condition=100 with its defaults, or says why not."""

import numpy as np
import pytest

import optbench
from optbench.optimizers.registry import ALGORITHMS, PRESETS
from optbench.tasks.defaults import GRID_MISS, UNTUNED

SURFACES = ("elliptic", "bowl", "quadratic:dim=10,condition=100")
# SparseAdam steps sparse gradients only; every optbench task gives dense ones, so it is refused (one line).
LISTED = [name for name in ALGORITHMS if not ALGORITHMS[name].sparse_grad] + list(PRESETS)


@pytest.mark.parametrize("surface", SURFACES)
def test_every_listed_optimizer_reaches_the_tolerance_with_its_defaults(surface):
    key = surface.partition(":")[0]
    tuned = [name for name in LISTED if (key, name) not in UNTUNED]
    metrics = optbench.compare(tuned, surface).metrics.set_index("optimizer")
    missed = {
        name: metrics.loc[name, "outcome"]
        for name in tuned
        if np.isnan(metrics.loc[name, "steps_to_tolerance"])
    }
    assert not missed


@pytest.mark.parametrize("surface", SURFACES)
def test_an_untuned_optimizer_states_its_reason(surface):
    key = surface.partition(":")[0]
    for name in LISTED:
        if (key, name) in UNTUNED:
            assert len(UNTUNED[key, name]) > 20


@pytest.mark.slow
@pytest.mark.parametrize("surface", SURFACES)
def test_untuned_means_no_lr_of_the_grid_reaches_it(surface):
    key = surface.partition(":")[0]
    lrs = np.logspace(-4, 2, 25)
    for name in LISTED:
        if GRID_MISS in UNTUNED.get((key, name), ""):
            specs = [f"{name}:lr={lr:.6g}" for lr in lrs]
            metrics = optbench.compare(specs, surface).metrics
            assert metrics["steps_to_tolerance"].isna().all(), name


def test_the_grid_best_cell_is_not_on_the_stability_edge():
    lrs, momenta = list(np.logspace(-3, 0, 16)), list(np.linspace(0, 0.99, 12))
    result = optbench.grid("sgd", {"lr": lrs, "momentum": momenta}, "elliptic")
    best = result.best()
    metrics = result.metrics
    assert int(metrics["best"].sum()) == 1 and not best["diverged"]
    # the lowest final loss (an underflowed cell) sits next to a diverged one: not chosen
    lowest = metrics.loc[metrics["final_loss"].idxmin()]
    assert lowest["final_loss"] < 1e-30 and best["lr"] != lowest["lr"]
    next_lr = lrs[lrs.index(best["lr"]) + 1]
    beside = metrics[(metrics["lr"] == next_lr) & (metrics["momentum"] == best["momentum"])]
    assert not beside["diverged"].any()
    assert best["steps_to_tolerance"] <= metrics["steps_to_tolerance"].min() + 2
