"""Analytic test surfaces: value, exact gradient, known minima, a default start and a plot window.

Every surface evaluates a batch of points at once: `surface.evaluate(points)` takes a
`[trials, dim]` tensor and returns `(value [trials], gradient [trials, dim])`, written out by hand
(the tests check each gradient against autograd). A surface is named on the command line, with
settings where it has any: `elliptic`, `rosenbrock`, `quadratic:dim=20,condition=1000`;
`quadratic:dim=50,condition=1000,rotation=0` turns the same quadratic by a seeded random rotation (its
axes no longer the coordinates', so a diagonal preconditioner such as Adam's stops helping), and
`expr:x**2+10*y**2` is a formula of the user's (`optbench.expression`: parsed without eval, gradients
by autograd).

Quadratics (`elliptic`, `bowl`, `saddle`, `quadratic`) are one mechanism, f(x) = Σ c_i x_i², and
expose their Hessian eigenvalues 2 c_i (`surface.hessian_eigenvalues`), so step-size theory
(SGD is stable for lr < 2 / λ_max) can be drawn next to what the optimizers actually do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .budget import require_memory, surface_run_bytes
from .errors import OptbenchError, did_you_mean
from .expression import VARIABLES, parse_expression

Evaluate = Callable[[torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass(frozen=True)
class Surface:
    name: str  # as the user typed it, e.g. 'quadratic:dim=20,condition=1000'
    formula: str  # for `optbench list` and figure titles
    evaluate: Evaluate  # points [trials, dim] -> (value [trials], gradient [trials, dim])
    minima: tuple  # global minimisers (each a tuple of dim floats); () if unbounded
    start: tuple  # default start
    window: tuple  # ((low, high), ...) per coordinate: plot window, valid starts
    minimum_value: float | None = 0.0  # f at the minima; None if unbounded below
    hessian_eigenvalues: tuple | None = None  # quadratics only: eigenvalues of the (constant) Hessian
    steps: int = 100  # default number of steps
    log_contours: bool = True  # contour levels spaced in log(f - f_min) (False where f < f_min)
    note: str = ""

    @property
    def dim(self) -> int:
        return len(self.start)

    def value(self, points: torch.Tensor) -> torch.Tensor:
        return self.evaluate(points)[0]

    def gradient(self, points: torch.Tensor) -> torch.Tensor:
        return self.evaluate(points)[1]

    def distance_to_nearest_minimum(self, points: torch.Tensor) -> torch.Tensor:
        """Euclidean distance from each point to the closest known minimum (NaN where none exists)."""
        if not self.minima:
            return torch.full(points.shape[:1], math.nan, dtype=points.dtype)
        minima = torch.tensor(self.minima, dtype=points.dtype)
        return torch.cdist(points, minima).min(dim=1).values

    def contains(self, point) -> bool:
        return all(low <= float(x) <= high for x, (low, high) in zip(point, self.window, strict=False))

    @property
    def tolerance(self) -> float | None:
        """'Converged' means f - f_min below 1e-6 of its value at the default start."""
        if self.minimum_value is None:
            return None
        start = torch.tensor([self.start], dtype=torch.float64)
        return 1e-6 * float(self.value(start)[0] - self.minimum_value)


# --- the surfaces ----------------------------------------------------------------------------


def row_sum(values: torch.Tensor) -> torch.Tensor:
    """Σ over the last (coordinate) axis as a matrix-vector product: torch's `sum(dim=-1)` over a
    2-wide axis is ~10x slower on CPU, and this sits in every step of the batched runner."""
    return values @ torch.ones(values.shape[-1], dtype=values.dtype, device=values.device)


def diagonal_quadratic(coefficients) -> Evaluate:
    """f(x) = Σ c_i x_i²; gradient 2 c ⊙ x."""
    c = torch.tensor(coefficients, dtype=torch.float64)

    def evaluate(points):
        scale = c.to(points)
        return (points * points) @ scale, (2 * scale) * points

    return evaluate


def random_rotation(dim: int, seed: int) -> torch.Tensor:
    """A Haar-random orthogonal `[dim, dim]` matrix (float64): Q of the QR factorisation of a seeded
    Gaussian matrix, its columns' signs fixed by R's diagonal (Mezzadri 2007, "How to generate random
    matrices from the classical compact groups", section 5)."""
    gaussian = torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    return q * torch.sign(torch.diagonal(r))


def rotated_quadratic(coefficients, rotation: torch.Tensor) -> Evaluate:
    """f(x) = Σ c_i (Qx)_i²; gradient Qᵀ (2 c ⊙ Qx). Hessian Qᵀ diag(2c) Q: the eigenvalues 2c, turned."""
    c = torch.tensor(coefficients, dtype=torch.float64)

    def evaluate(points):
        scale, q = c.to(points), rotation.to(points)
        turned = points @ q.T  # each row's Qx
        return (turned * turned) @ scale, ((2 * scale) * turned) @ q

    return evaluate


def monkey_saddle(points):
    x, y = points[:, 0], points[:, 1]
    value = x**3 - 3 * x * y**2
    return value, torch.stack([3 * x**2 - 3 * y**2, -6 * x * y], dim=1)


def rosenbrock(points, a=1.0, b=100.0):
    x, y = points[:, 0], points[:, 1]
    r = y - x**2
    value = (a - x) ** 2 + b * r**2
    return value, torch.stack([-2 * (a - x) - 4 * b * x * r, 2 * b * r], dim=1)


_BEALE = (1.5, 2.25, 2.625)


def beale(points):
    x, y = points[:, 0], points[:, 1]
    value = torch.zeros_like(x)
    dx, dy = torch.zeros_like(x), torch.zeros_like(y)
    for k, c in enumerate(_BEALE, start=1):
        term = c - x + x * y**k  # c_k - x + x y^k
        value = value + term**2
        dx = dx + 2 * term * (y**k - 1)
        dy = dy + 2 * term * k * x * y ** (k - 1)
    return value, torch.stack([dx, dy], dim=1)


def himmelblau(points):
    x, y = points[:, 0], points[:, 1]
    u, v = x**2 + y - 11, x + y**2 - 7
    return u**2 + v**2, torch.stack([4 * x * u + 2 * v, 2 * u + 4 * y * v], dim=1)


def rastrigin(points, a=10.0):
    angle = 2 * math.pi * points
    value = a * points.shape[1] + row_sum(points**2 - a * torch.cos(angle))
    return value, 2 * points + 2 * math.pi * a * torch.sin(angle)


_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286170),
    (3.584428340330492, -1.848126526964404),
)


def _quadratic_surface(
    name, coefficients, start, window, formula, steps, note="", minimum=True, evaluate=None
):
    dim = len(coefficients)
    return Surface(
        name,
        formula,
        evaluate or diagonal_quadratic(coefficients),
        minima=((0.0,) * dim,) if minimum else (),
        start=start,
        window=window,
        minimum_value=0.0 if minimum else None,
        hessian_eigenvalues=tuple(2.0 * c for c in coefficients),
        steps=steps,
        log_contours=minimum,
        note=note,
    )


def _quadratic(dim: int = 10, condition: float = 100.0, rotation: int | None = None) -> Surface:
    """n-dimensional f = ½ Σ λ_i x_i² with λ log-spaced from 1 to `condition`; start at all ones.
    rotation: a seed; f = ½ Σ λ_i (Qx)_i² with Q = random_rotation(dim, rotation) (same eigenvalues)."""
    if not (isinstance(dim, int) and dim >= 2):
        raise OptbenchError(f"quadratic: dim must be a whole number >= 2, got {dim}")
    if not (condition >= 1 and math.isfinite(condition)):
        raise OptbenchError(f"quadratic: condition must be a finite number >= 1, got {condition}")
    require_memory(f"quadratic:dim={dim}", surface_run_bytes(1, dim, QUADRATIC_STEPS + 1))
    if rotation is not None and not (isinstance(rotation, int) and rotation >= 0):
        raise OptbenchError(f"quadratic: rotation must be a whole-number seed >= 0, got {rotation}")
    eigenvalues = torch.logspace(0, math.log10(condition), dim, dtype=torch.float64).tolist()
    coefficients = [lam / 2 for lam in eigenvalues]
    text = f"quadratic:dim={dim},condition={condition:g}"
    formula, note, evaluate = "½ Σ λᵢ xᵢ²", "Hessian eigenvalues log-spaced; condition number as given", None
    if rotation is not None:
        text += f",rotation={rotation}"
        formula, note = "½ Σ λᵢ (Qx)ᵢ²", f"{note}; Q a random rotation (seed {rotation})"
        evaluate = rotated_quadratic(coefficients, random_rotation(dim, rotation))
    return _quadratic_surface(
        text,
        coefficients,
        (1.0,) * dim,
        ((-1.5, 1.5),) * dim,
        f"{formula}, λ from 1 to {condition:g} ({dim}-D)",
        steps=QUADRATIC_STEPS,
        note=note,
        evaluate=evaluate,
    )


QUADRATIC_STEPS = 200


SURFACES: dict[str, Callable[..., Surface]] = {
    "elliptic": lambda: _quadratic_surface(
        "elliptic",
        (1.0, 10.0),
        (40.0, 20.0),
        ((-50.0, 50.0), (-25.0, 25.0)),
        "x² + 10y²",
        steps=100,
        note="condition number 10: SGD zig-zags across the narrow axis",
    ),
    "bowl": lambda: _quadratic_surface(
        "bowl",
        (0.1, 2.0),
        (-5.0, -2.0),
        ((-6.0, 6.0), (-3.0, 3.0)),
        "0.1x² + 2y²",
        steps=100,
        note="condition number 20",
    ),
    "saddle": lambda: _quadratic_surface(
        "saddle",
        (1.0, -1.0),
        (2.5, 0.01),
        ((-3.0, 3.0), (-3.0, 3.0)),
        "x² - y²",
        steps=100,
        note="unbounded below; a start near the x-axis tests escaping the saddle",
        minimum=False,
    ),
    "monkey-saddle": lambda: Surface(
        "monkey-saddle",
        "x³ - 3xy²",
        monkey_saddle,
        minima=(),
        start=(1.5, 0.3),
        window=((-2.0, 2.0), (-2.0, 2.0)),
        minimum_value=None,
        steps=150,
        log_contours=False,
        note="flat degenerate saddle at the origin; unbounded below",
    ),
    "rosenbrock": lambda: Surface(
        "rosenbrock",
        "(1 - x)² + 100(y - x²)²",
        rosenbrock,
        minima=((1.0, 1.0),),
        start=(-1.5, 2.0),
        window=((-2.0, 2.0), (-1.0, 3.0)),
        steps=500,
        note="curved narrow valley",
    ),
    "beale": lambda: Surface(
        "beale",
        "Σₖ (cₖ - x + xyᵏ)², c = 1.5, 2.25, 2.625",
        beale,
        minima=((3.0, 0.5),),
        start=(1.0, 1.5),
        window=((-4.5, 4.5), (-4.5, 4.5)),
        steps=300,
        note="flat plateaus, steep walls",
    ),
    "himmelblau": lambda: Surface(
        "himmelblau",
        "(x² + y - 11)² + (x + y² - 7)²",
        himmelblau,
        minima=_HIMMELBLAU_MINIMA,
        start=(-0.5, 0.5),
        window=((-5.0, 5.0), (-5.0, 5.0)),
        steps=200,
        note="four equal minima",
    ),
    "rastrigin": lambda: Surface(
        "rastrigin",
        "20 + Σ (xᵢ² - 10 cos 2πxᵢ)",
        rastrigin,
        minima=((0.0, 0.0),),
        start=(3.2, -2.3),
        window=((-5.12, 5.12), (-5.12, 5.12)),
        steps=200,
        note="many local minima",
    ),
    "quadratic": _quadratic,
}


WHOLE_SETTINGS = ("dim", "rotation")  # settings read as ints when written as whole numbers


def expression_surface(formula: str) -> Surface:
    """`expr:FORMULA` as a surface: value and gradient (autograd) of the user's formula in x, y (z).
    Its minimum is unknown (None), so only NaN/inf counts as divergence. Raises OptbenchError."""
    dim, function = parse_expression(formula)

    def evaluate(points):
        with torch.enable_grad():
            leaf = points.detach().requires_grad_(True)
            value = function(dict(zip(VARIABLES, leaf.unbind(1), strict=False))).expand(leaf.shape[0])
            (gradient,) = torch.autograd.grad(value.sum(), leaf)
        return value.detach(), gradient

    return Surface(
        f"expr:{formula.strip()}",
        formula.strip(),
        evaluate,
        minima=(),
        start=(1.5,) * dim,
        window=((-3.0, 3.0),) * dim,
        minimum_value=None,
        steps=100,
        log_contours=False,
        note="a user's formula: minimum unknown",
    )


def get_surface(text: str) -> Surface:
    """'elliptic', 'quadratic:dim=20,condition=1000' or 'expr:x**2+10*y**2' -> Surface; unknown names
    list the valid ones."""
    name, _, settings = str(text).strip().partition(":")
    key = name.lower().replace("_", "-")
    if key == "expr":
        return expression_surface(settings)
    if key not in SURFACES:
        raise did_you_mean("surface", name, SURFACES)
    options = {}
    for item in filter(None, settings.split(",")):
        option, eq, raw = item.partition("=")
        if not eq:
            raise OptbenchError(f"malformed surface setting '{item}' in '{text}': expected name=value")
        try:
            number = float(raw)
        except ValueError:
            raise OptbenchError(f"surface setting {option}={raw} in '{text}' is not a number") from None
        if option.strip() in options:
            raise OptbenchError(f"surface setting '{option.strip()}' is given twice in '{text}'")
        options[option.strip()] = (
            int(number) if number.is_integer() and option.strip() in WHOLE_SETTINGS else number
        )
    try:
        return SURFACES[key](**options)
    except TypeError:
        raise OptbenchError(f"surface '{key}' takes no setting(s) {', '.join(options)}") from None


class GradientNoise:
    """N(0, σ²) added to every gradient coordinate of a batch of trials: a stochastic problem.

    Each trial draws from its own generator, seeded from its entry of `keys` (any seed entropy numpy's
    SeedSequence takes: an int or a list of ints), so a trial's noise depends only on its key and on how
    many gradients it has drawn, never on which trials run beside it: a trial rerun alone, or one
    re-evaluating during a line search (L-BFGS), sees the same sequence. Trials given equal keys see equal
    noise (common random numbers). Drawn on the CPU whatever the device, so a GPU run sees the very same
    noise. Values stay exact, so loss curves show the true objective. Raises OptbenchError for σ < 0.
    """

    def __init__(self, sigma: float, keys):
        if not sigma >= 0:
            raise OptbenchError(f"gradient noise must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.generators = [
            torch.Generator().manual_seed(
                int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> 1)
            )
            for key in keys
        ]

    def add(self, gradient: torch.Tensor, rows=None) -> torch.Tensor:
        """`gradient` ([trials, ...], or the `rows` of the batch it holds, in order) + σ·N(0, 1), each row
        from its trial's generator; the gradient itself when σ = 0."""
        if self.sigma == 0:
            return gradient
        rows = range(len(self.generators)) if rows is None else rows
        shape = gradient.shape[1:]
        draws = [torch.randn(shape, generator=self.generators[i], dtype=gradient.dtype) for i in rows]
        return gradient + self.sigma * torch.stack(draws).to(gradient)


def describe():
    """(title, columns, rows) for `optbench list`."""
    rows = []
    for key in SURFACES:
        surface = get_surface(key)
        start = ", ".join(f"{x:g}" for x in surface.start[:3]) + (", …" if surface.dim > 3 else "")
        minima = (
            "; ".join(
                "(" + ", ".join(f"{x:.3g}" for x in m[:3]) + (", …" if len(m) > 3 else "") + ")"
                for m in surface.minima
            )
            or "none (unbounded below)"
        )
        rows.append((key, surface.formula, f"({start})", minima, surface.note))
    return (
        "surfaces (--surface NAME; quadratic:dim=N,condition=K[,rotation=SEED]; expr:FORMULA in x, y, z)",
        ("name", "f(x, y)", "default start", "minima", "note"),
        rows,
    )
