r"""L2-regularised logistic regression on scikit-learn's breast cancer data, with its optimum f* known.

A convex task whose curves can show f - f*: the optimum is computed once, in float64, by Newton's
method to a gradient norm below NEWTON_TOLERANCE, so the gap is exact down to rounding.

Data: the 569 samples of `sklearn.datasets.load_breast_cancer` (30 features, labels y ∈ {0, 1}),
each feature standardised to mean 0 and standard deviation 1 (population, as sklearn's StandardScaler).
Parameters θ = (w, b), w ∈ R^30 and the intercept b, as one vector of 31 numbers (b last).
Objective, the mean log-loss plus a ridge on w only (not b), with λ = 1 / (C n):

    f(θ) = (1/n) Σ_i [log(1 + exp(z_i)) - y_i z_i] + (λ/2) ‖w‖²,   z_i = x_iᵀ w + b
    ∇f(θ) = (1/n) Σ_i (σ(z_i) - y_i) (x_i, 1) + λ (w, 0)

which is scikit-learn's `LogisticRegression(C=C)` objective (C Σ_i log-loss_i + ½‖w‖², intercept not
penalised) divided by C n: the same minimiser, and f* = sklearn's objective at its optimum / (C n).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import OptbenchError

NEWTON_TOLERANCE = 1e-12  # ‖∇f(θ*)‖ at the computed optimum
NEWTON_MAX_STEPS = 100  # quadratic convergence reaches the tolerance in about 10 from θ = 0


@dataclass(frozen=True)
class LogisticRegressionTask:
    """The problem for one C: features `x` `[n, d]` (float64, standardised), labels `y` `[n]` (0./1.),
    `l2` = λ = 1/(C n), and the optimum `theta_star` `[d + 1]` with `f_star` = f(θ*)."""

    C: float
    x: torch.Tensor
    y: torch.Tensor
    l2: float
    theta_star: torch.Tensor
    f_star: float

    @property
    def dim(self) -> int:
        return self.x.shape[1] + 1

    def evaluate(self, theta: torch.Tensor, rows: torch.Tensor | None = None):
        """f and ∇f for every trial: `theta` `[trials, d + 1]` -> (value `[trials]`, gradient `[trials, d + 1]`),
        in theta's dtype. rows: indices of a mini-batch (the log-loss then averages over those only)."""
        return objective(theta, self.x, self.y, self.l2, rows)

    def gap(self, theta: torch.Tensor) -> torch.Tensor:
        """f(θ) - f* per trial `[trials]`."""
        return self.evaluate(theta)[0] - self.f_star


def objective(theta, x, y, l2: float, rows=None):
    """f and ∇f of the module docstring for `theta` `[trials, d + 1]` (the formulas' source)."""
    x, y = x.to(theta), y.to(theta)
    if rows is not None:
        x, y = x[rows], y[rows]
    w, b = theta[:, :-1], theta[:, -1:]
    z = w @ x.T + b  # [trials, n]
    value = (F.softplus(z) - y * z).mean(1) + 0.5 * l2 * (w * w).sum(1)
    residual = (torch.sigmoid(z) - y) / x.shape[0]  # [trials, n]
    gradient = torch.cat([residual @ x + l2 * w, residual.sum(1, keepdim=True)], dim=1)
    return value, gradient


def breast_cancer() -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised features `[569, 30]` and labels `[569]` (float64)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    features = np.asarray(data.data, dtype=np.float64)
    features = (features - features.mean(0)) / features.std(0)
    return torch.from_numpy(features), torch.from_numpy(np.asarray(data.target, dtype=np.float64))


def logistic_regression(C: float = 1.0) -> LogisticRegressionTask:
    """The task for inverse regularisation strength C (sklearn's), with θ* found by Newton's method
    (once per C in a process). Raises OptbenchError unless C is a finite number > 0."""
    if not (isinstance(C, (int, float)) and not isinstance(C, bool) and 0 < C < float("inf")):
        raise OptbenchError(f"logistic regression: C must be a finite number > 0, got {C}")
    return _solved(float(C))


@lru_cache(maxsize=8)
def _solved(C: float) -> LogisticRegressionTask:
    x, y = breast_cancer()
    n, d = x.shape
    l2 = 1.0 / (C * n)
    theta = torch.zeros(1, d + 1, dtype=torch.float64)
    design = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    ridge = torch.diag(torch.tensor([l2] * d + [0.0], dtype=torch.float64))
    for _ in range(NEWTON_MAX_STEPS):
        _, gradient = objective(theta, x, y, l2)
        if gradient.norm() < NEWTON_TOLERANCE:
            break
        p = torch.sigmoid(design @ theta[0])
        hessian = design.T @ (design * (p * (1 - p))[:, None]) / n + ridge
        theta = theta - torch.linalg.solve(hessian, gradient[0])[None]
    else:
        raise RuntimeError(
            f"Newton's method did not reach ‖∇f‖ < {NEWTON_TOLERANCE} in {NEWTON_MAX_STEPS} steps"
        )
    value, _ = objective(theta, x, y, l2)
    return LogisticRegressionTask(C=C, x=x, y=y, l2=l2, theta_star=theta[0], f_star=float(value[0]))
