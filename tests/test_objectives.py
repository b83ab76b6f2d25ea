"""Surfaces: exact gradients against autograd, minima are minima, names and settings parse."""

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.objectives import SURFACES, add_gradient_noise, describe, get_surface

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


def test_noise_is_seeded():
    gradient = torch.zeros(4, 2, dtype=torch.float64)
    first = add_gradient_noise(gradient, 0.5, torch.Generator().manual_seed(3))
    again = add_gradient_noise(gradient, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and first.abs().sum() > 0
    assert add_gradient_noise(gradient, 0.0, torch.Generator()) is gradient


def test_describe_lists_every_surface():
    title, columns, rows = describe()
    assert [row[0] for row in rows] == list(SURFACES)
    assert all(len(row) == len(columns) for row in rows)
