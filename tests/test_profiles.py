"""Performance profiles, their score and the bootstrap ranking, against closed forms on small tables."""

import numpy as np
import pandas as pd
import pytest

from optbench.bench.profiles import (
    performance_profile,
    performance_ratios,
    profile_score,
    ranking,
    task_steps,
)
from optbench.errors import OptbenchError

INF = np.inf
# 3 tasks x 3 optimizers (A, B, C): steps to target; C never reaches task 2, nobody reaches task 3
STEPS = np.array([[100.0, 200.0, 400.0], [300.0, 150.0, INF], [INF, INF, np.nan]])


def test_ratios_divide_by_each_tasks_best_and_keep_unreached_infinite():
    expected = np.array([[1.0, 2.0, 4.0], [2.0, 1.0, INF], [INF, INF, INF]])
    np.testing.assert_array_equal(performance_ratios(STEPS), expected)


def test_profile_counts_the_tasks_within_tau():
    profile = performance_profile(performance_ratios(STEPS), [1.0, 1.5, 2.0, 3.9, 4.0])
    # A: ratios 1, 2, inf; B: 2, 1, inf; C: 4, inf, inf (fractions of 3 tasks)
    np.testing.assert_allclose(
        profile,
        np.array([[1, 1, 2, 2, 2], [1, 1, 2, 2, 2], [0, 0, 0, 0, 1]]) / 3,
    )


def test_score_is_the_normalised_area_under_the_profile():
    # closed form: A = (1/3)[(4-1) + (4-2) + 0]/3 = 5/9; B the same; C = (1/3)(4-4)/3 = 0
    np.testing.assert_allclose(profile_score(performance_ratios(STEPS)), [5 / 9, 5 / 9, 0.0])
    # and the same number by integrating the step function numerically on a fine grid
    taus = np.linspace(1, 4, 300_001)
    area = np.trapezoid(performance_profile(performance_ratios(STEPS), taus), taus, axis=1) / 3
    np.testing.assert_allclose(profile_score(performance_ratios(STEPS)), area, atol=1e-4)


def test_score_with_another_tau_max():
    # tau_max 2: A = (1/3)[(2-1)/1 + 0 + 0] = 1/3
    assert profile_score(performance_ratios(STEPS), tau_max=2.0)[0] == pytest.approx(1 / 3)
    with pytest.raises(OptbenchError, match="tau_max must be > 1"):
        profile_score(performance_ratios(STEPS), tau_max=1.0)


def test_nonpositive_steps_are_refused():
    with pytest.raises(OptbenchError, match="steps to target must be > 0, got 0"):
        performance_ratios([[0.0, 1.0]])


def long_table(cube, optimizers=("A", "B", "C")):
    """A [optimizers, tasks, studies, seeds] array as the long results table."""
    rows = [
        dict(optimizer=optimizers[o], task=f"t{p}", study=k, seed=j, steps=cube[o, p, k, j])
        for o, p, k, j in np.ndindex(cube.shape)
    ]
    return pd.DataFrame(rows)


def test_task_steps_is_the_median_over_studies_of_the_median_over_seeds():
    cube = np.array([[[[1.0, 2.0, 9.0], [4.0, 5.0, 6.0], [7.0, INF, INF]]]])  # 1 optimizer, 1 task, 3x3
    t = task_steps(long_table(cube, ("A",)))
    # study medians 2, 5, inf; their median 5
    assert t.loc["t0", "A"] == 5.0


def test_ranking_without_noise_gives_the_score_and_a_point_interval():
    cube = np.broadcast_to(STEPS.T[:, :, None, None], (3, 3, 2, 2)).copy()
    table = ranking(long_table(cube), replicates=50)
    assert list(table["optimizer"]) == ["A", "B", "C"]
    np.testing.assert_allclose(table["score"], [5 / 9, 5 / 9, 0.0])
    np.testing.assert_allclose(table["score_low"], table["score"])
    np.testing.assert_allclose(table["score_high"], table["score"])
    np.testing.assert_allclose(table["rank"], [1.5, 1.5, 3.0])  # A and B tie
    np.testing.assert_allclose(table["p_best"], [1.0, 1.0, 0.0])


def test_one_study_of_one_seed_has_no_interval_and_no_p_best():
    table = ranking(long_table(STEPS.T[:, :, None, None].copy()), replicates=50)
    np.testing.assert_allclose(table["score"], [5 / 9, 5 / 9, 0.0])
    for column in ("score_low", "score_high", "rank_low", "rank_high", "p_best"):
        assert table[column].isna().all(), column


def test_an_optimizer_that_reaches_no_target_is_never_best():
    # alone, or beside another that reaches nothing either: every score 0, rank 1 shared, P(best) 0
    nothing = np.full((2, 2, 2, 2), INF)
    table = ranking(long_table(nothing, ("A", "B")), replicates=50)
    np.testing.assert_allclose(table["score"], [0.0, 0.0])
    np.testing.assert_allclose(table["p_best"], [0.0, 0.0])
    # one reaching a target in some replicates only: best exactly there
    cube = nothing.copy()
    cube[0, 0, 0, :] = 10.0  # A reaches task 0 in study 0 only: a replicate drawing study 0 at least once
    table = ranking(long_table(cube, ("A", "B")), replicates=2000, seed=1).set_index("optimizer")
    assert table.loc["B", "p_best"] == 0.0
    # the median over two drawn studies is finite only when both draws are study 0: probability 1/4
    assert table.loc["A", "p_best"] == pytest.approx(0.25, abs=0.03)


def test_rank_intervals_end_at_ranks_a_replicate_took():
    # A rank (ties averaged) is a multiple of 1/2; an interval end interpolated between two replicates'
    # ranks is not, and read as a rank like 17.025 on the published page.
    # (with these steps, interpolation gave F the interval 5.975-6 and E 4-5.025)
    generator = np.random.default_rng(2)
    cube = np.exp(0.3 * np.arange(6)[:, None, None, None] + 0.3 * generator.normal(size=(6, 4, 3, 3)))
    table = ranking(long_table(cube, tuple("ABCDEF")), replicates=200)
    for column in ("rank_low", "rank_high"):
        assert np.all(table[column] * 2 == np.round(table[column] * 2)), table[column]
    assert np.all(table["rank_low"] <= table["rank_high"])


def test_ranking_refuses_unbalanced_or_incomplete_tables():
    table = long_table(np.ones((2, 2, 2, 2)), ("A", "B"))
    with pytest.raises(OptbenchError, match="unbalanced"):
        ranking(table.iloc[1:])
    with pytest.raises(OptbenchError, match="lacks the columns seed"):
        ranking(table.drop(columns="seed"))
    with pytest.raises(OptbenchError, match="no rows"):
        ranking(table.iloc[:0])


def simulated_coverage(simulations, replicates, seed=0):
    """How often the 95% bootstrap interval holds the true score, over simulated benchmarks.

    Four optimizers on six tasks; log steps = mu[o, p] + a study effect + a seed effect (normal), so
    the true time is exp(mu) (the median of every level) and the true score follows from it.
    """
    generator = np.random.default_rng(seed)
    mu = np.log(1000) + generator.uniform(0.0, 1.2, size=(4, 6))
    mu[:, 5] += np.array([0.0, 0.3, np.log(4.5), 0.6])  # a task where one optimizer is beyond tau_max
    true = profile_score(performance_ratios(np.exp(mu).T))
    covered = np.zeros(4)
    for s in range(simulations):
        study = generator.normal(0, 0.08, size=(4, 6, 5, 1))
        noise = generator.normal(0, 0.08, size=(4, 6, 5, 3))
        cube = np.exp(mu[:, :, None, None] + study + noise)
        table = ranking(long_table(cube, ("A", "B", "C", "D")), replicates=replicates, seed=s)
        table = table.set_index("optimizer").loc[["A", "B", "C", "D"]]
        covered += (table["score_low"].to_numpy() <= true + 1e-12) & (
            true <= table["score_high"].to_numpy() + 1e-12
        )
    return covered / simulations


def test_bootstrap_interval_coverage_small():
    coverage = simulated_coverage(simulations=30, replicates=200)
    assert coverage.mean() >= 0.8, coverage


@pytest.mark.slow
def test_bootstrap_interval_coverage():
    coverage = simulated_coverage(simulations=300, replicates=1000)
    assert coverage.min() >= 0.85 and coverage.mean() >= 0.9, coverage
