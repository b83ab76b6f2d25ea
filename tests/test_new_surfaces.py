"""The rotated ill-conditioned quadratic and the user's expression surface (`expr:`), issue 21."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from optbench.cli import main
from optbench.errors import OptbenchError
from optbench.objectives import get_surface, random_rotation

ROTATED = "quadratic:dim=50,condition=1000,rotation=0"


def random_points(dim, trials=7, seed=0):
    return torch.randn(trials, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_rotation_is_orthogonal_seeded_and_not_the_identity():
    q = random_rotation(50, 0)
    torch.testing.assert_close(q.T @ q, torch.eye(50, dtype=torch.float64))
    torch.testing.assert_close(q, random_rotation(50, 0), rtol=0, atol=0)
    assert not torch.allclose(q, random_rotation(50, 1))
    assert q.diagonal().abs().max() < 0.9


def test_rotated_quadratic_has_the_stated_hessian_turned_off_the_axes():
    surface = get_surface(ROTATED)
    assert surface.name == ROTATED and surface.dim == 50
    hessian = torch.autograd.functional.hessian(lambda x: surface.value(x[None])[0], torch.zeros(50).double())
    eigenvalues = torch.linalg.eigvalsh(hessian)
    torch.testing.assert_close(eigenvalues, torch.logspace(0, 3, 50, dtype=torch.float64))
    assert eigenvalues.max() / eigenvalues.min() == pytest.approx(1000)
    # rotated: most of the Hessian's mass is off its diagonal, where a diagonal preconditioner cannot act
    off_diagonal = hessian - torch.diag(hessian.diagonal())
    assert off_diagonal.norm() > hessian.diagonal().norm()
    assert torch.tensor(surface.hessian_eigenvalues).double().sort().values.allclose(eigenvalues)


def test_rotated_quadratic_gradient_is_autograds_and_the_minimum_is_zero_at_the_origin():
    surface = get_surface(ROTATED)
    points = random_points(50).requires_grad_()
    value, gradient = surface.evaluate(points)
    (expected,) = torch.autograd.grad(value.sum(), points)
    torch.testing.assert_close(gradient, expected)
    q = random_rotation(50, 0)
    a = q.T @ torch.diag(torch.logspace(0, 3, 50, dtype=torch.float64)) @ q
    x = points.detach()
    torch.testing.assert_close(value.detach(), 0.5 * ((x @ a) * x).sum(1))
    origin_value, origin_gradient = surface.evaluate(torch.zeros(1, 50, dtype=torch.float64))
    assert origin_value.item() == 0 and origin_gradient.abs().max() == 0
    assert surface.minimum_value == 0.0 and surface.minima == ((0.0,) * 50,)


@pytest.mark.parametrize("rotation", ["-1", "1.5"])
def test_a_bad_rotation_seed_is_refused(rotation):
    with pytest.raises(OptbenchError, match=f"rotation must be a whole-number seed >= 0, got {rotation}"):
        get_surface(f"quadratic:dim=5,rotation={rotation}")


def test_expression_matches_the_built_in_elliptic():
    mine, built_in = get_surface("expr:x**2+10*y**2"), get_surface("elliptic")
    assert mine.dim == 2 and mine.name == "expr:x**2+10*y**2"
    points = random_points(2)
    for got, expected in zip(mine.evaluate(points), built_in.evaluate(points), strict=True):
        torch.testing.assert_close(got, expected)


def test_expression_functions_constants_and_a_third_variable():
    surface = get_surface("expr: sin(x)*exp(y) - z/2 + -pi*sqrt(abs(x)+1)")
    assert surface.dim == 3
    x, y, z = random_points(3).unbind(1)
    value, gradient = surface.evaluate(torch.stack([x, y, z], 1))
    root = torch.sqrt(x.abs() + 1)
    torch.testing.assert_close(value, torch.sin(x) * torch.exp(y) - z / 2 - torch.pi * root)
    expected = torch.stack(
        [
            torch.cos(x) * torch.exp(y) - torch.pi * torch.sign(x) / (2 * root),
            torch.sin(x) * torch.exp(y),
            -0.5 + 0 * z,
        ],
        1,
    )
    torch.testing.assert_close(gradient, expected)


def test_expression_in_one_variable_is_a_2d_surface_and_float32_stays_float32():
    surface = get_surface("expr:(x-1)**2")
    value, gradient = surface.evaluate(torch.tensor([[3.0, 5.0]]))
    assert value.dtype == torch.float32 and value.item() == 4.0
    assert gradient.tolist() == [[4.0, 0.0]]


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("__import__('os')", "calling __import__ is not allowed"),
        ("().__class__", "attribute access (().__class__) is not allowed"),
        ("x.__class__", "attribute access"),
        ("x**10**10**10", "a power inside an exponent (10 ** 10 ** 10) is not allowed"),
        ("x**1000", "exponent 1000 is beyond ±100"),
        ("x**-1e9", "exponent -1000000000.0 is beyond ±100"),
        ("x[0]", "subscripting (x[0]) is not allowed"),
        ("(lambda: x)()", "calling lambda: x is not allowed"),
        ("lambda: x", "a lambda"),
        ("'a'", "the constant 'a' is not allowed"),
        ("x + 'a'", "the constant 'a' is not allowed"),
        ("open('/etc/passwd')", "calling open is not allowed"),
        ("os", "the name 'os' is not allowed"),
        ("sin(x, y)", "sin() with other than one plain argument"),
        ("x if y else 1", "a conditional"),
        ("x < y", "a comparison"),
        ("[x]", "List ([x]) is not allowed"),
        ("1j * x", "the constant 1j is not allowed"),
        ("True * x", "the constant True is not allowed"),
        ("x @ y", "BinOp (x @ y) is not allowed"),
        ("x; y", "cannot read expression"),
        ("x +", "cannot read expression"),
        ("2 + 3", "uses no variable"),
        ("", "empty expression"),
        ("x" + "+x" * 600, "at most 1000"),
        ("(" * 300 + "x" + ")" * 300, "cannot read expression"),
    ],
)
def test_hostile_expressions_are_refused_with_one_line(formula, message):
    with pytest.raises(OptbenchError) as error:
        get_surface(f"expr:{formula}")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_cli_refuses_a_hostile_expression_with_exit_status_2(tmp_path):
    result = CliRunner().invoke(
        main, ["compare", "sgd", "--surface", "expr:__import__('os')", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "calling __import__ is not allowed" in result.stderr
    assert not (tmp_path / "o").exists()


def test_compare_runs_on_an_expression_surface(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "compare",
            "sgd:lr=0.05",
            "--surface",
            "expr:x**2+10*y**2",
            "--steps",
            "20",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o").exists()


def test_rotation_takes_away_what_adams_diagonal_preconditioner_gains():
    from optbench.runners.surface import fixed_starts, run_surface
    from optbench.specs import OptimizerSpec

    final = {}
    for text in ("quadratic:dim=50,condition=1000", ROTATED):
        surface = get_surface(text)
        run = run_surface(OptimizerSpec.parse("adam:lr=0.05"), surface, fixed_starts(surface), 200)
        start = surface.value(fixed_starts(surface)).item()
        final[text] = run.metrics["final_loss"].item() / start
    # the same eigenvalues; on the axes Adam's per-coordinate scaling conditions the problem away
    assert final["quadratic:dim=50,condition=1000"] < 1e-6 < 1e-3 < final[ROTATED]
