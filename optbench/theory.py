"""Convergence theory for quadratics, to draw next to what the optimizers actually do.

On f(θ) = ½ θᵀ H θ with Hessian eigenvalues λ_i (condition number k = λ_max / λ_min):

- gradient descent θ ← θ - lr·∇f contracts eigen-direction i by (1 - lr·λ_i) per step, so its
  linear rate is max_i |1 - lr·λ_i|; it diverges for lr > 2/λ_max; the best lr is 2/(λ_min + λ_max),
  with rate (k - 1)/(k + 1).
- torch's SGD with momentum, b ← μ·b + g, θ ← θ - lr·b, is Polyak's heavy ball with step lr:
  since lr·b_t = θ_{t-1} - θ_t, the update is θ_{t+1} = θ_t - lr·g_t + μ(θ_t - θ_{t-1}). Per eigenvalue
  the error obeys e_{t+1} = (1 + μ - lr·λ) e_t - μ e_{t-1}, whose roots z solve z² - (1 + μ - lr·λ) z + μ = 0;
  the rate is the largest |z| over all λ_i. Both roots lie inside the unit circle iff 0 < lr·λ < 2(1 + μ)
  (for 0 <= μ < 1), hence the stability limit lr < 2(1 + μ)/λ_max. The best choice,
  lr = 4/(√λ_max + √λ_min)², μ = ((√k - 1)/(√k + 1))², gives rate (√k - 1)/(√k + 1).

A "rate" here is the per-step contraction of the distance to the minimum, ‖θ_t - θ*‖ ≈ C ρ^t; the loss gap
f - f* shrinks by ρ² per step. `measured_rate` fits ρ to a recorded run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import t as student_t


def gradient_descent_rate(lr: float, eigenvalues) -> float:
    """max_i |1 - lr·λ_i|: the per-step contraction of plain gradient descent."""
    return float(np.max(np.abs(1.0 - lr * np.asarray(eigenvalues, dtype=float))))


def heavy_ball_rate(lr: float, momentum: float, eigenvalues) -> float:
    """Spectral radius of torch's SGD-with-momentum iteration on the quadratic (μ = 0: gradient descent)."""
    if momentum == 0:
        return gradient_descent_rate(lr, eigenvalues)
    worst = 0.0
    for lam in np.asarray(eigenvalues, dtype=float):
        trace = 1.0 + momentum - lr * lam  # z² - trace·z + μ = 0
        roots = np.roots([1.0, -trace, momentum])
        worst = max(worst, float(np.max(np.abs(roots))))
    return worst


def condition_number(eigenvalues) -> float:
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    return float(eigenvalues.max() / eigenvalues.min())


def _positive_spectrum(eigenvalues) -> tuple[float, float]:
    """(λ_min, λ_max); ValueError where λ_min <= 0 (no minimum: the optimal-lr formulas do not apply)."""
    low, high = float(np.min(eigenvalues)), float(np.max(eigenvalues))
    if not low > 0:
        raise ValueError(f"the optimal lr needs a positive definite Hessian; λ_min = {low:g}")
    return low, high


def optimal_gradient_descent(eigenvalues) -> dict:
    """{'lr': 2/(λ_min + λ_max), 'rate': (k - 1)/(k + 1)}; ValueError unless every λ > 0."""
    low, high = _positive_spectrum(eigenvalues)
    k = high / low
    return {"lr": 2.0 / (low + high), "rate": (k - 1) / (k + 1)}


def optimal_heavy_ball(eigenvalues) -> dict:
    """{'lr': 4/(√λ_max + √λ_min)², 'momentum': ((√k - 1)/(√k + 1))², 'rate': (√k - 1)/(√k + 1)};
    ValueError unless every λ > 0."""
    low, high = _positive_spectrum(eigenvalues)
    root_k = math.sqrt(high / low)
    rate = (root_k - 1) / (root_k + 1)
    return {"lr": 4.0 / (math.sqrt(high) + math.sqrt(low)) ** 2, "momentum": rate**2, "rate": rate}


def stability_limit(
    eigenvalues,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> float:
    """The largest stable lr of torch's SGD on the quadratic (inf where no lr diverges).

    Heavy ball: lr·(1 - d)·λ_max < 2(1 + μ), since with dampening d the buffer b ← μ·b + (1 - d)·g is
    heavy ball with step lr·(1 - d) after the first step. Nesterov (torch: θ ← θ - lr·(g + μ·b), d = 0):
    per eigenvalue the iteration matrix [[1 - h(1 + μ), -μ²], [h, μ]] with h = lr·λ has both eigenvalues
    inside the unit circle iff 0 < h < 2(1 + μ)/(1 + 2μ) (Jury's test on z² - (1+μ)(1-h)z + μ(1-h)).
    Weight decay wd adds wd to every eigenvalue.
    """
    curvature = (1.0 - dampening) * (float(np.max(eigenvalues)) + weight_decay)
    if curvature <= 0:
        return math.inf
    if nesterov:
        return 2.0 * (1.0 + momentum) / ((1.0 + 2.0 * momentum) * curvature)
    return 2.0 * (1.0 + momentum) / curvature


def nesterov_rate(lr: float, momentum: float, eigenvalues) -> float:
    """Spectral radius of torch's Nesterov SGD on the quadratic: max over λ of the eigenvalues of
    [[1 - h(1 + μ), -μ²], [h, μ]], h = lr·λ (state: θ_t and lr·b_{t-1})."""
    worst = 0.0
    for lam in np.asarray(eigenvalues, dtype=float):
        h = lr * lam
        matrix = np.array([[1.0 - h * (1.0 + momentum), -(momentum**2)], [h, momentum]])
        worst = max(worst, float(np.max(np.abs(np.linalg.eigvals(matrix)))))
    return worst


def analytic_rate(family: str, hparams: dict, eigenvalues) -> float | None:
    """The theoretical rate for a resolved optimizer on a quadratic, or None where no formula applies.

    Covers torch's SGD: heavy ball with any momentum and dampening d (step lr·(1 - d), exact after the
    first step) and Nesterov (`nesterov_rate`); weight decay adds wd to every eigenvalue (the minimum
    of a centred quadratic stays at 0). Not `maximize`. Adaptive methods have no such closed form and
    get None.
    """
    if family != "sgd" or eigenvalues is None or hparams.get("maximize"):
        return None
    lr, momentum = hparams.get("lr"), hparams.get("momentum", 0.0) or 0.0
    dampening = hparams.get("dampening", 0.0) or 0.0
    if not all(isinstance(value, (int, float)) for value in (lr, momentum, dampening)):
        return None
    shifted = np.asarray(eigenvalues, dtype=float) + float(hparams.get("weight_decay", 0.0) or 0.0)
    if hparams.get("nesterov"):
        return nesterov_rate(float(lr), float(momentum), shifted)
    return heavy_ball_rate(float(lr) * (1.0 - float(dampening)), float(momentum), shifted)


def measured_rate(steps, gaps, floor: float = 1e-250) -> float:
    """ρ fitted to ‖θ_t - θ*‖ ≈ C ρ^t from loss gaps f - f* (which shrink by ρ² per step); see `fit_rate`."""
    return fit_rate(steps, gaps, floor)[0]


def fit_rate(steps, gaps, floor: float = 1e-250, confidence: float = 0.95) -> tuple[float, float, float, int]:
    """(ρ, low, high, points): ρ fitted to ‖θ_t - θ*‖ ≈ C ρ^t from loss gaps f - f*, with its interval.

    Least squares slope of log(gap)/2 against the step over the second half of the run, using only
    finite gaps above `floor` (float64 underflow); heavy ball's oscillation averages out over the
    window. low/high: the slope's Student-t interval at `confidence` (from the fit's residuals), mapped
    through exp; a short window over an oscillating or not yet settled run gives a wide interval, so a
    difference from theory inside it is no mismatch. NaNs when fewer than 3 usable points remain.
    """
    steps, gaps = np.asarray(steps, dtype=float), np.asarray(gaps, dtype=float)
    usable = np.isfinite(gaps) & (gaps > floor)
    steps, gaps = steps[usable], gaps[usable]
    if len(steps) < 3:
        return math.nan, math.nan, math.nan, int(len(steps))
    late = steps >= (steps[0] + steps[-1]) / 2
    if late.sum() < 3:
        late = np.ones_like(steps, dtype=bool)
    x, y = steps[late], np.log(gaps[late]) / 2
    slope, intercept = np.polyfit(x, y, 1)
    points = len(x)
    if points < 4:
        return float(math.exp(slope)), math.nan, math.nan, points
    residuals = y - (slope * x + intercept)
    spread = math.sqrt(float(residuals @ residuals) / (points - 2) / float(((x - x.mean()) ** 2).sum()))
    half = student_t.ppf(0.5 + confidence / 2, points - 2) * spread
    return float(math.exp(slope)), float(math.exp(slope - half)), float(math.exp(slope + half)), points


def rate_verdict(analytic: float, low: float, high: float, noise: float = 0.0) -> str:
    """How a measured rate relates to the noise-free theory: 'agrees' (inside the fit's interval, or
    within 0.1%), 'differs', 'no formula', 'fit too short' (no interval), or a note that the run was
    noisy, so the theory does not apply."""
    if not math.isfinite(analytic):
        return "no formula"
    if noise > 0:
        return "theory is noise-free: not comparable"
    if not (math.isfinite(low) and math.isfinite(high)):
        return "fit too short"
    tolerance = 1e-3 * analytic
    return "agrees" if low - tolerance <= analytic <= high + tolerance else "differs"


# A run that ends no closer to the minimum than it started (diverged, or still far out after an
# excursion) has no linear rate to fit: ρ >= 1 there would describe the blow-up, not a convergence.
NOT_CONVERGING = "not converging: ends no closer than its start"


def rate_table(trajectory, surface, resolved_hparams: dict, noise: float = 0.0) -> pd.DataFrame:
    """Per (optimizer, trial): the measured rate with its 95% interval and fit points, next to the
    analytic one (quadratics; NaN elsewhere), and `verdict` (`rate_verdict`, or NOT_CONVERGING with
    no measured rate for a run whose final loss gap is not below its start's).

    resolved_hparams: optimizer label -> (family, its resolved hyperparameters); noise: the std of the
    gradient noise the run had (theory assumes none).
    """
    rows = []
    eigenvalues = surface.hessian_eigenvalues if surface.minimum_value is not None else None
    for (name, trial), run in trajectory.groupby(["optimizer", "trial"], sort=False):
        family, hparams = resolved_hparams[name]
        theory = analytic_rate(family, hparams, eigenvalues) if eigenvalues else None
        gaps = run["loss"] - surface.minimum_value if eigenvalues else None
        went_away = gaps is not None and not gaps.iloc[-1] < gaps.iloc[0]
        fitted = (
            (math.nan, math.nan, math.nan, 0) if gaps is None or went_away else fit_rate(run["step"], gaps)
        )
        analytic = math.nan if theory is None else theory
        verdict = NOT_CONVERGING if went_away else rate_verdict(analytic, fitted[1], fitted[2], noise)
        rows.append(
            {
                "optimizer": name,
                "trial": int(trial),
                "measured_rate": fitted[0],
                "measured_low": fitted[1],
                "measured_high": fitted[2],
                "fit_points": fitted[3],
                "analytic_rate": analytic,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


EDGE_AXES = ("lr", "momentum", "dampening", "weight_decay")


def stability_edge(cells: pd.DataFrame, surface, x_name: str, y_name: str, points: int = 400):
    """The curve where torch's SGD turns unstable on a quadratic, in the coordinates of a grid map.

    cells: a grid's table (columns family, settings, the two axes, and lr, momentum, dampening,
    weight_decay where constant). Both axes must be among lr, momentum, dampening and weight_decay;
    the others are read from the table. For each of `points` x values spanning the x axis, the y
    value where lr·(1 - d)·(λ_max + wd) reaches the limit of `stability_limit`; NaN where the edge
    leaves the y range. Returns (x values, y values, formula text), or None where the theory does
    not apply (another family, a non-quadratic surface, an axis the edge does not depend on).
    """
    if surface.hessian_eigenvalues is None or surface.minimum_value is None:
        return None
    if x_name not in EDGE_AXES or y_name not in EDGE_AXES:
        return None
    first = cells.iloc[0]
    if first.get("family") != "sgd":
        return None
    nesterov = "nesterov=True" in str(first.get("settings")) or bool(first.get("nesterov", False))
    constants = {
        name: float(first.get(name, 0.0) or 0.0) for name in EDGE_AXES if name not in (x_name, y_name)
    }
    if "lr" in constants and constants["lr"] <= 0:
        return None
    eigenvalues = np.asarray(surface.hessian_eigenvalues, dtype=float)

    def margin(values: dict) -> float:  # > 0: unstable
        limit = stability_limit(
            eigenvalues, values["momentum"], values["dampening"], values["weight_decay"], nesterov
        )
        return values["lr"] / limit - 1.0

    x_values = _span(cells[x_name], points)
    y_values = _span(cells[y_name], points)
    edge = np.full(len(x_values), np.nan)
    for i, x in enumerate(x_values):
        signs = np.array([margin({**constants, x_name: x, y_name: y}) for y in y_values])
        crossing = np.flatnonzero(np.sign(signs[:-1]) != np.sign(signs[1:]))
        if len(crossing):
            j = crossing[0]
            weight = signs[j] / (signs[j] - signs[j + 1])
            edge[i] = y_values[j] + weight * (y_values[j + 1] - y_values[j])
    if not np.isfinite(edge).any():
        return None
    formula = (
        "lr < 2(1+μ) / ((1+2μ)·(λ_max+wd))  [Nesterov]" if nesterov else "lr·(1-d) < 2(1+μ) / (λ_max+wd)"
    )
    return x_values, edge, formula


def _span(values: pd.Series, points: int) -> np.ndarray:
    """`points` values from the smallest to the largest of a grid axis, geometric where the axis is
    positive and spans over a decade (log-spaced grids), else evenly spaced."""
    low, high = float(values.min()), float(values.max())
    if low > 0 and high / low > 10:
        return np.geomspace(low, high, points)
    return np.linspace(low, high, points)
