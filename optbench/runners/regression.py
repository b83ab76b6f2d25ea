"""Regression by gradient descent, small enough to check by hand.

Two problems:
- the worked example: one parameter `a`, one sample (x=2, y=4), loss (y - a*x)^2, start a=1;
  SGD with lr=0.1 gives a = 1 -> 1.8 -> 1.96 -> 1.992 (`scalar_trace`);
- stochastic linear regression: 1,000 samples of y = X w + b + noise with w = [2, -3.4], b = 4.2,
  noise std 0.01, fitted by mini-batches with any optimizer (`linear_regression`). The closed-form
  least-squares solution (`least_squares`) gives f*, so curves can show f - f*.

Autograd computes every gradient and the optimizer is a real one (ours or torch's), so these
are the same code paths training uses, on problems whose answer is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import OptbenchError
from ..specs import OptimizerSpec, as_spec
from ..tasks.defaults import REGRESSION, SCALAR
from ..tasks.registry import get_task
from .devices import torch_threads
from .divergence import diverged_at, is_diverged

TRUE_W = (2.0, -3.4)
TRUE_B = 4.2


def scalar_trace(
    optimizer: str | OptimizerSpec = "sgd",
    steps: int = SCALAR["iterations"],
    a: float = 1.0,
    x: float = 2.0,
    y: float = 4.0,
    defaults: dict | None = None,
) -> pd.DataFrame:
    """One row per iteration: a, the forward value a*x, the loss (y - a*x)^2, dloss/da, the update, new a,
    and `diverged` (from the first iteration whose new a has a diverged loss, `runners.divergence`; f* = 0).
    `defaults` sits under the spec's settings (None: the `scalar` task's `default_hparams`)."""
    spec = as_spec(optimizer)
    parameter = torch.tensor([a], dtype=torch.float64, requires_grad=True)
    opt = spec.build([parameter], get_task("scalar").default_hparams(spec) if defaults is None else defaults)
    rows, start_loss = [], (y - a * x) ** 2
    for iteration in range(steps):
        a_before = parameter.item()

        def closure():
            opt.zero_grad()
            loss = (y - parameter * x).pow(2).sum()
            loss.backward()
            return loss

        loss = opt.step(closure)  # every optimizer (ours and torch's) accepts a closure
        gradient = parameter.grad.item()
        diverged = bool(rows and rows[-1]["diverged"]) or is_diverged(
            (y - parameter.item() * x) ** 2, start_loss
        )
        rows.append(
            dict(
                optimizer=spec.name,
                family=spec.family,
                iteration=iteration,
                a=a_before,
                prediction=a_before * x,
                loss=loss.item(),
                gradient=gradient,
                update=parameter.item() - a_before,
                a_next=parameter.item(),
                diverged=diverged,
            )
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class LinearData:
    X: torch.Tensor  # [n, d] float64
    y: torch.Tensor  # [n] float64


def make_linear_data(
    n: int = 1000, w=TRUE_W, b: float = TRUE_B, noise: float = 0.01, seed: int = 0
) -> LinearData:
    """Samples of y = X w + b + noise, X ~ N(0, I); the same seed gives the same samples."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.tensor(w, dtype=torch.float64)
    X = torch.randn(n, len(w), generator=generator, dtype=torch.float64)
    y = X @ w + b + noise * torch.randn(n, generator=generator, dtype=torch.float64)
    return LinearData(X, y)


def mse(data: LinearData, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the data set: the f whose minimum is f*."""
    return (data.X @ w + b - data.y).pow(2).mean()


def design_matrix(data: LinearData) -> torch.Tensor:
    """[X, 1]: the parameters θ = (w, b) act on it linearly."""
    return torch.cat([data.X, torch.ones(len(data.y), 1, dtype=data.X.dtype)], dim=1)


def least_squares(data: LinearData) -> dict:
    """The exact minimiser of the mean squared error: {'w': [...], 'b': ..., 'loss': f*}.

    Solved through the QR factorisation [X, 1] = QR as R θ = Qᵀy (as well conditioned as lstsq, and,
    unlike torch.linalg.lstsq on the CPU, the same to the last bit from call to call).
    """
    Q, R = torch.linalg.qr(design_matrix(data))
    solution = torch.linalg.solve_triangular(R, (Q.T @ data.y)[:, None], upper=True)[:, 0]
    w, b = solution[:-1], solution[-1]
    return {"w": w.tolist(), "b": b.item(), "loss": mse(data, w, b).item()}


def linear_regression(
    optimizer: str | OptimizerSpec = "sgd",
    data: LinearData | None = None,
    batch_size: int = REGRESSION["batch_size"],
    epochs: int = REGRESSION["epochs"],
    seed: int = 0,
    defaults: dict | None = None,
) -> pd.DataFrame:
    """Fit w, b from zero by mini-batches (reshuffled each epoch); one row per step.

    Columns: optimizer, family, epoch, step, loss (the mini-batch loss the step used), full_loss
    (f over all samples after the step), suboptimality (full_loss - f*), w0, w1, ..., b, lr, diverged.
    `defaults` sits under the user's settings (None: the `linreg` task's `default_hparams`). A
    diverged full loss (`runners.divergence`, against f* and f at the start) stops the run and is recorded.
    """
    spec = as_spec(optimizer)
    data = data or make_linear_data(seed=seed)
    n, d = data.X.shape
    if not 1 <= batch_size <= n:
        raise OptbenchError(f"batch size {batch_size} must be between 1 and the {n} samples")
    f_star = least_squares(data)["loss"]
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = spec.build([w, b], get_task("linreg").default_hparams(spec) if defaults is None else defaults)
    with torch.no_grad():
        start_loss = mse(data, w, b).item()
    generator = torch.Generator().manual_seed(seed)
    rows, step = [], 0
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]

            def closure():
                opt.zero_grad()
                loss = (data.X[batch] @ w + b - data.y[batch]).pow(2).mean()  # noqa: B023 (stepped at once)
                loss.backward()
                return loss

            loss = opt.step(closure)
            with torch.no_grad():
                full = mse(data, w, b).item()
            diverged = is_diverged(full, start_loss, f_star)
            rows.append(
                dict(
                    optimizer=spec.name,
                    family=spec.family,
                    epoch=epoch,
                    step=step,
                    loss=loss.item(),
                    full_loss=full,
                    suboptimality=full - f_star,
                    **{f"w{i}": value for i, value in enumerate(w.tolist())},
                    b=b.item(),
                    lr=opt.param_groups[0]["lr"],
                    diverged=diverged,
                )
            )
            step += 1
            if diverged:
                return pd.DataFrame(rows)
    return pd.DataFrame(rows)


# --- the noise floor: batched mini-batch runs against the exact optimum --------------------------


def minibatch_runs(
    spec: OptimizerSpec,
    data: LinearData,
    lrs,
    batch_size: int,
    steps: int,
    seeds: int = 1,
    seed: int = 0,
    record_every: int = 1,
    from_optimum: bool = False,
) -> pd.DataFrame:
    """Every lr × seed as one [trials, d+1] parameter stepped by one optimizer (lr a [trials, 1] tensor).

    Mini-batches are drawn with replacement, independently per trial and step (i.i.d. sampling, the
    setting the noise-floor formula assumes); the gradient of the batch's mean squared error is exact.
    One row per (lr, seed, recorded step): suboptimality = f(θ) - f* over all samples. Runs start at
    θ = 0, or with `from_optimum` at θ* itself, so that only the gradient noise moves them (the noise
    floor without the transient). `diverged`: from the recorded step where the trial diverged
    (`runners.divergence.diverged_at` on the recorded f - f*).
    """
    if spec.use_torch:
        raise OptbenchError(f"{spec.name}: the lr grid runs as one tensor, which torch.optim does not accept")
    A, y = design_matrix(data), data.y
    n, p = A.shape
    if not 1 <= batch_size <= n:
        raise OptbenchError(f"batch size {batch_size} must be between 1 and the {n} samples")
    lrs = torch.as_tensor(lrs, dtype=torch.float64)
    lr_per_trial = lrs.repeat_interleave(seeds)
    trials = len(lr_per_trial)
    solution = least_squares(data)
    optimum = torch.tensor(solution["w"] + [solution["b"]], dtype=torch.float64)
    theta = optimum.repeat(trials, 1) if from_optimum else torch.zeros(trials, p, dtype=torch.float64)
    opt = spec.build([theta], {}, lr=lr_per_trial[:, None])
    with torch_threads(1):  # tiny per-step tensors: a second intra-op thread only adds hand-off latency
        recorded, gaps = _minibatch_loop(opt, theta, A, y, optimum, batch_size, steps, seed, record_every)
    gap = torch.stack(gaps)  # [recorded, trials]
    kept = len(recorded)
    at = diverged_at(gap.numpy())  # per trial, in recorded rows
    diverged = np.arange(kept)[:, None] >= at[None, :]
    return pd.DataFrame(
        {
            "optimizer": spec.name,
            "family": spec.family,
            "batch_size": batch_size,
            "lr": lr_per_trial.repeat(kept).numpy(),
            "seed": torch.arange(seeds).repeat(len(lrs)).repeat(kept).numpy(),
            "step": torch.tensor(recorded).repeat_interleave(trials).numpy(),
            "suboptimality": gap.reshape(-1).numpy(),
            "diverged": diverged.reshape(-1),
        }
    )


def _minibatch_loop(opt, theta, A, y, optimum, batch_size, steps, seed, record_every):
    n, trials = A.shape[0], theta.shape[0]
    half_hessian = A.T @ A / n  # f(θ) - f* = (θ - θ*)ᵀ (AᵀA/n) (θ - θ*)
    generator = torch.Generator().manual_seed(seed)
    recorded, gaps = [], []

    def record(t):
        error = theta - optimum
        recorded.append(t)
        gaps.append(((error @ half_hessian) * error).sum(dim=1).clone())

    record(0)
    for t in range(1, steps + 1):
        batch = torch.randint(n, (trials, batch_size), generator=generator)
        rows = A[batch]  # [trials, B, p]
        residual = (rows @ theta[:, :, None])[:, :, 0] - y[batch]  # [trials, B]
        theta.grad = 2.0 / batch_size * (rows * residual[:, :, None]).sum(dim=1)
        opt.step()
        if t % record_every == 0 or t == steps:
            record(t)
    return recorded, gaps


def sgd_noise_floor(data: LinearData, lr: float, batch_size: int) -> float:
    """E[f - f*] where plain SGD with constant lr and i.i.d. batches of `batch_size` settles (inf if unstable).

    With e = θ - θ*, H = 2AᵀA/n and residuals r_i at the optimum, the per-sample gradient is
    g_i = 2a_i(a_iᵀe + r_i), and the second moment P = E[e eᵀ] obeys, exactly,
        P ← (I - lr H) P (I - lr H) + lr²/B · [(4/n) Σ a_i a_iᵀ (a_iᵀ P a_i + r_i²) - H P H].
    Its fixed point gives E[f - f*] = tr(H P)/2. To first order this is lr·σ²·(d+1)/(B(1 - lr·λ)) for
    noise std σ and X ~ N(0, I): proportional to lr, inversely to the batch size.
    """
    A, y = design_matrix(data), data.y
    n, p = A.shape
    solution = least_squares(data)
    r = A @ torch.tensor(solution["w"] + [solution["b"]], dtype=torch.float64) - y
    H = 2.0 * A.T @ A / n
    M = torch.eye(p, dtype=torch.float64) - lr * H
    # vec(P) -> vec of the right-hand side, as a p² x p² matrix (p = 3 here, so 9 x 9)
    outer = torch.einsum("ni,nj->nij", A, A)  # a_i a_iᵀ
    kron = torch.kron(M, M) - lr**2 / batch_size * torch.kron(H, H)
    fourth = 4.0 / n * torch.einsum("nij,nkl->ijkl", outer, outer).reshape(p * p, p * p)
    linear = kron + lr**2 / batch_size * fourth
    constant = lr**2 / batch_size * (4.0 / n * (outer * (r**2)[:, None, None]).sum(dim=0)).reshape(-1)
    if float(torch.linalg.eigvals(linear).abs().max()) >= 1.0:
        return math.inf
    P = torch.linalg.solve(torch.eye(p * p, dtype=torch.float64) - linear, constant).reshape(p, p)
    return float(torch.trace(H @ P) / 2)
