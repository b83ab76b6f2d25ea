"""Logistic regression on breast cancer: the optimum in float64, checked against scikit-learn."""

import numpy as np
import pytest
import torch

from optbench.errors import OptbenchError
from optbench.tasks.logistic import logistic_regression


@pytest.mark.parametrize("C", [1.0, 0.05])
def test_optimum_has_zero_gradient_and_matches_sklearn(C):
    from sklearn.linear_model import LogisticRegression

    task = logistic_regression(C)
    _, gradient = task.evaluate(task.theta_star[None])
    assert gradient.norm() < 1e-12
    reference = LogisticRegression(C=C, tol=1e-14, max_iter=100_000).fit(task.x.numpy(), task.y.numpy())
    theta = torch.from_numpy(np.concatenate([reference.coef_[0], reference.intercept_]))[None]
    f_sklearn = task.evaluate(theta)[0].item()
    assert f_sklearn >= task.f_star
    assert abs(f_sklearn - task.f_star) <= 1e-8 * abs(task.f_star)
    torch.testing.assert_close(theta[0], task.theta_star, rtol=1e-4, atol=1e-4)
    # the objective is sklearn's divided by C n: C Σ log-loss + ½‖w‖² at sklearn's optimum
    z = task.x @ theta[0, :-1] + theta[0, -1]
    sklearn_objective = C * torch.nn.functional.binary_cross_entropy_with_logits(z, task.y, reduction="sum")
    sklearn_objective += 0.5 * (theta[0, :-1] ** 2).sum()
    assert f_sklearn == pytest.approx(sklearn_objective.item() / (C * len(task.y)), rel=1e-12)


def test_gradient_is_autograds_for_many_trials_and_mini_batches():
    task = logistic_regression(1.0)
    theta = torch.randn(5, task.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rows = torch.arange(0, 569, 7)
    for batch in (None, rows):
        leaf = theta.clone().requires_grad_()
        value, gradient = task.evaluate(leaf, batch)
        (expected,) = torch.autograd.grad(value.sum(), leaf)
        torch.testing.assert_close(gradient, expected)
    assert (task.gap(theta) > 0).all()
    assert task.gap(task.theta_star[None]).abs().item() < 1e-15


def test_features_are_standardised():
    task = logistic_regression(1.0)
    assert task.x.shape == (569, 30) and set(task.y.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(task.x.mean(0), torch.zeros(30, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(task.x.std(0, correction=0), torch.ones(30, dtype=torch.float64))


@pytest.mark.parametrize("C", [0, -1.0, float("inf"), float("nan"), True])
def test_bad_C_is_refused(C):
    with pytest.raises(OptbenchError, match="C must be a finite number > 0"):
        logistic_regression(C)
