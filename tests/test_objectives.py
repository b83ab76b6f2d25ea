"""Surfaces: exact gradients against autograd, minima are minima, names and settings parse."""

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.objectives import SURFACES, GradientNoise, describe, get_surface

NAMES = list(SURFACES) + ["quadratic:dim=5,condition=1000"]


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_autograd(name):
    surface = get_surface(name)
    generator = torch.Generator().manual_seed(0)
    low = torch.tensor([lo for lo, _ in surface.window], dtype=torch.float64)
    high = torch.tensor([hi for _, hi in surface.window], dtype=torch.float64)
    points = low + (high - low) * torch.rand(64, surface.dim, generator=generator, dtype=torch.float64)
    points.requires_grad_(True)
    value, gradient = surface.evaluate(points)
    (autograd,) = torch.autograd.grad(value.sum(), points)
    torch.testing.assert_close(gradient, autograd, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", [n for n in NAMES if get_surface(n).minima])
def test_minima_are_stationary_with_the_stated_value(name):
    surface = get_surface(name)
    minima = torch.tensor(surface.minima, dtype=torch.float64)
    value, gradient = surface.evaluate(minima)
    torch.testing.assert_close(value, torch.full_like(value, surface.minimum_value), atol=1e-10, rtol=0)
    assert gradient.abs().max() < 1e-6
    assert surface.distance_to_nearest_minimum(minima).max() == 0


@pytest.mark.parametrize("name", NAMES)
def test_default_start_inside_window(name):
    surface = get_surface(name)
    assert surface.contains(surface.start)
    assert len(surface.window) == surface.dim


def test_quadratic_exposes_hessian_eigenvalues():
    surface = get_surface("quadratic:dim=6,condition=1000")
    eigenvalues = torch.tensor(surface.hessian_eigenvalues)
    assert surface.dim == 6
    assert eigenvalues.max() / eigenvalues.min() == pytest.approx(1000)
    assert get_surface("elliptic").hessian_eigenvalues == (2.0, 20.0)
    # the Hessian of f is constant: compare with autograd's
    x = torch.randn(6, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(lambda p: surface.value(p[None])[0], x)
    torch.testing.assert_close(torch.linalg.eigvalsh(hessian), eigenvalues.to(torch.float64))


def test_unknown_and_malformed_surfaces_are_user_errors():
    with pytest.raises(OptbenchError, match="did you mean 'elliptic'"):
        get_surface("eliptic")
    with pytest.raises(OptbenchError, match="not a number"):
        get_surface("quadratic:dim=abc")
    with pytest.raises(OptbenchError, match="takes no setting"):
        get_surface("elliptic:dim=3")
    with pytest.raises(OptbenchError, match="condition"):
        get_surface("quadratic:condition=0.5")


def test_noise_is_keyed_per_trial_whatever_runs_beside_it():
    gradient = torch.zeros(3, 2, dtype=torch.float64)
    first = GradientNoise(0.5, [[3, 0], [3, 1], [3, 0]])
    drawn = [first.add(gradient) for _ in range(4)]
    alone = GradientNoise(0.5, [[3, 1]])
    assert all(torch.equal(alone.add(gradient[:1])[0], step[1]) for step in drawn)  # row 1 without the others
    assert all(torch.equal(step[0], step[2]) and not torch.equal(step[0], step[1]) for step in drawn)
    # the standard deviation is sigma: 20000 draws of 2 coordinates, within 3% (about 6 standard errors)
    many = GradientNoise(0.5, [[7, 0]])
    sample = torch.cat([many.add(gradient[:1]) for _ in range(10000)])
    assert sample.std().item() == pytest.approx(0.5, rel=0.03) and abs(sample.mean().item()) < 0.02
    # a row drawn on its own (a line search re-evaluating one trial) advances that trial only
    other = GradientNoise(0.5, [[3, 0], [3, 1]])
    other.add(gradient[:1], rows=[1])
    both = other.add(gradient[:2])
    assert torch.equal(both[0], drawn[0][0]) and torch.equal(both[1], drawn[1][1])
    assert GradientNoise(0.0, [[1]]).add(gradient) is gradient
    with pytest.raises(OptbenchError, match="noise must be >= 0"):
        GradientNoise(-1.0, [[1]])


def test_describe_lists_every_surface():
    title, columns, rows = describe()
    assert [row[0] for row in rows] == list(SURFACES)
    assert all(len(row) == len(columns) for row in rows)
