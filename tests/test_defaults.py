"""Built-in defaults do what the README promises: every optimizer in `optbench list` reaches the
tolerance with its defaults on every surface that has a row of defaults and a minimum to reach, or is
listed with the reason it does not (`defaults.UNTUNED`), which compare shows."""

import numpy as np
import pytest

import optbench
from optbench.objectives import get_surface
from optbench.optimizers.registry import ALGORITHMS, PRESETS
from optbench.tasks.defaults import GRID_MISS, SURFACE_LR, UNTUNED

# the saddles have rows too, but no minimum, so no tolerance to reach
SURFACES = tuple(key for key in SURFACE_LR if get_surface(key).minimum_value is not None)
# SparseAdam steps sparse gradients only; every optbench task gives dense ones, so it is refused (one line).
LISTED = [name for name in ALGORITHMS if not ALGORITHMS[name].sparse_grad] + list(PRESETS)


@pytest.mark.parametrize("surface", SURFACES)
def test_every_listed_optimizer_reaches_the_tolerance_with_its_defaults(surface):
    key = surface.partition(":")[0]
    tuned = [name for name in LISTED if (key, name) not in UNTUNED]
    if not tuned:  # rastrigin: every optimizer is listed, with its reason (test below)
        assert all((key, name) in UNTUNED for name in LISTED)
        return
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


def test_the_tables_cover_every_surface_with_a_minimum():
    assert set(SURFACES) == {
        "elliptic",
        "bowl",
        "rosenbrock",
        "beale",
        "himmelblau",
        "rastrigin",
        "quadratic",
    }


def test_an_untuned_optimizer_keeps_its_class_default_and_compare_says_why():
    # the case: RAdam took Adam's lr 3 on elliptic, while the table lists it as untuned
    result = optbench.compare(["radam", "radam:lr=0.01"], "elliptic")
    metrics = result.metrics.set_index("optimizer")
    assert metrics.loc["radam", "lr"] == ALGORITHMS["radam"].defaults()["lr"]
    assert not metrics.loc["radam", "diverged"]
    assert result.meta["untuned_defaults"] == {"radam": UNTUNED["elliptic", "radam"]}  # its own lr: no note


def test_a_run_that_does_not_converge_gets_no_measured_rate():
    # lr 0.3 > 2/λ_max = 0.1 on elliptic: gradient descent diverges, so there is no linear rate to fit
    rates = optbench.compare(["sgd:lr=0.3", "sgd"], "elliptic").rates.set_index("optimizer")
    assert np.isnan(rates.loc["sgd:lr=0.3", "measured_rate"])
    assert rates.loc["sgd:lr=0.3", "verdict"].startswith("not converging")
    assert 0 < rates.loc["sgd", "measured_rate"] < 1  # the converging run keeps its rate
