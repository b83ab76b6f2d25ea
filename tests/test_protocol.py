"""The external-tuning protocol: one search space, quasi-random studies, fastest trial, median over studies."""

import math

import numpy as np
import pandas as pd
import pytest

from optbench.bench.protocol import (
    LogUniform,
    fastest_per_study,
    median_over_studies,
    quasi_random_studies,
    searched_axes,
)
from optbench.errors import OptbenchError
from optbench.specs import OptimizerSpec


@pytest.mark.parametrize(
    ("text", "axes"),
    [
        ("adam", ["lr", "beta1", "beta2"]),
        ("adamw", ["lr", "beta1", "beta2"]),
        ("lion", ["lr", "beta1", "beta2"]),
        ("sgd", ["lr"]),  # default momentum 0: plain SGD stays plain
        ("momentum", ["lr"]),  # the preset fixes momentum = 0.9
        ("adam:betas=0.9/0.99", ["lr"]),
        ("muon", ["lr", "momentum"]),
    ],
)
def test_each_optimizer_searches_the_axes_it_has(text, axes):
    assert searched_axes(OptimizerSpec.parse(text)) == axes


def test_log_uniform_maps_quantiles_to_the_range():
    lr = LogUniform(1e-4, 1e-2)
    assert lr.value(0.0) == pytest.approx(1e-4)
    assert lr.value(0.5) == pytest.approx(1e-3)
    assert LogUniform(1e-2, 1e-1, one_minus=True).value(1.0) == pytest.approx(0.9)
    with pytest.raises(OptbenchError, match="0 < low < high"):
        LogUniform(1.0, 0.1)


def test_studies_are_seeded_independent_and_inside_the_space():
    spec = OptimizerSpec.parse("adam")
    table = quasi_random_studies(spec, seed=3)
    assert len(table) == 25 and sorted(table["study"].unique()) == list(range(5))
    pd.testing.assert_frame_equal(table, quasi_random_studies(spec, seed=3))
    assert not table.equals(quasi_random_studies(spec, seed=4))
    first, second = (table[table["study"] == k]["lr"].to_numpy() for k in (0, 1))
    assert not np.allclose(first, second)
    assert table["lr"].between(1e-5, 1.0).all()
    assert table["beta1"].between(0.5, 0.99).all() and table["beta2"].between(0.9, 0.999).all()


def test_every_optimizer_sees_the_same_lr_values_in_each_study():
    adam, lion = (quasi_random_studies(OptimizerSpec.parse(name), seed=0) for name in ("adam", "lion"))
    sgd = quasi_random_studies(OptimizerSpec.parse("sgd"), seed=0)
    np.testing.assert_allclose(adam["lr"], lion["lr"])  # same axes, same points
    assert sgd.columns.tolist() == ["study", "trial", "lr"]
    assert math.log(sgd["lr"].max() / sgd["lr"].min()) > math.log(100)  # spread over decades


def test_studies_need_at_least_one_trial():
    with pytest.raises(OptbenchError, match="at least 1 study of 1 trial, got 0 x 5"):
        quasi_random_studies(OptimizerSpec.parse("adam"), studies=0)


def test_fastest_trial_per_study_and_the_median_over_studies():
    inf = np.inf
    table = pd.DataFrame(
        dict(
            optimizer="adam",
            task="digits",
            study=[0, 0, 0, 1, 1, 1, 2, 2, 2],
            trial=[0, 1, 2] * 3,
            steps=[50, 30, 30, np.nan, inf, 80, np.nan, inf, inf],
        )
    )
    winners = fastest_per_study(table)
    assert winners["trial"].tolist() == [1, 2, 0]  # tie to the lower trial; nothing reached: first
    assert winners["steps"].tolist() == [30, 80, inf]
    assert median_over_studies(winners).loc[("adam", "digits")] == 80
    # nothing reached: the trial that ended closest to the target, never a diverged or failed one
    status = ["reached", "reached", "reached", "diverged", "not reached", "reached"]
    table = table.assign(
        status=status + ["diverged", "not reached", "not reached"],
        final_metric=[0.1, 0.2, 0.3, np.nan, 0.5, 0.05, 1e-9, 0.4, 0.2],
    )
    assert fastest_per_study(table)["trial"].tolist() == [1, 2, 2]
    tied = table.assign(steps=[30, 30, 30, 80, 80, 80, inf, inf, inf])
    assert fastest_per_study(tied)["trial"].tolist() == [0, 2, 2]  # on steps, the better final metric
    # an accuracy is better higher: 0.3 wins the tie at 30 steps, 0.4 beats 0.2 when nothing reached
    assert fastest_per_study(table, maximised={"digits"})["trial"].tolist() == [2, 2, 1]
    with pytest.raises(OptbenchError, match="lacks the columns steps"):
        fastest_per_study(table.drop(columns="steps"))


def test_the_task_winner_among_studies_that_reach_nothing_is_the_closest():
    from optbench.bench.timing import lone_winner

    seeds = pd.DataFrame(
        dict(
            optimizer="sgd",
            task="t",
            study=[0, 0, 1, 1, 2, 2],
            trial=[3, 3, 1, 1, 4, 4],
            lr=[0.1, 0.1, 0.2, 0.2, 0.3, 0.3],
            seed=[0, 1] * 3,
            steps=np.nan,
            status=["not reached", "not reached", "not reached", "not reached", "diverged", "not reached"],
            final_metric=[5.8, 5.7, 5.2, 5.3, np.nan, 0.1],
        )
    )
    # study 1 ends closest (mean 5.25 < 5.75); study 2 has a diverged seed, whatever its other seed did
    assert lone_winner(seeds, "t", "sgd", ["lr"]).to_dict("records") == [
        {"study": 1, "trial": 1, "lr": 0.2, "seed": 0}
    ]
    # an accuracy is better higher: study 0
    assert lone_winner(seeds, "t", "sgd", ["lr"], maximised={"t"})["study"].tolist() == [0]
    # steps decide first: study 2 reached with both seeds
    reached = seeds.assign(steps=[np.nan, np.nan, np.nan, np.nan, 30, 40], status="reached")
    assert lone_winner(reached, "t", "sgd", ["lr"])["study"].tolist() == [2]
