"""Fair comparisons and theory: analytic rates vs measured, stability limits, tuning, noise floor, repro."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from optbench import theory
from optbench.cli import main
from optbench.objectives import get_surface
from optbench.results import read_metadata
from optbench.runners.regression import make_linear_data, minibatch_runs, sgd_noise_floor
from optbench.runners.repro import first_difference
from optbench.runners.surface import run_surface
from optbench.runners.tuning import summarise, tune, tuning_axes
from optbench.specs import parse_optimizer

RATE_TOLERANCE = 0.01  # measured rate within 1% (relative) of the analytic one over 200 steps


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def measured(spec_text, surface, steps=200):
    run = run_surface(parse_optimizer(spec_text), surface, torch.tensor([surface.start]), steps)
    return theory.measured_rate(run.trajectory["step"], run.trajectory["loss"] - surface.minimum_value)


@pytest.mark.parametrize("name", ["elliptic", "bowl", "quadratic:dim=10,condition=100"])
def test_measured_rates_match_analytic_rates(name):
    surface = get_surface(name)
    eigenvalues = surface.hessian_eigenvalues
    gd, hb = theory.optimal_gradient_descent(eigenvalues), theory.optimal_heavy_ball(eigenvalues)
    k = theory.condition_number(eigenvalues)
    assert gd["rate"] == pytest.approx((k - 1) / (k + 1))
    assert hb["rate"] == pytest.approx((math.sqrt(k) - 1) / (math.sqrt(k) + 1))
    # the analytic rate at the optimal settings is the closed form
    assert theory.gradient_descent_rate(gd["lr"], eigenvalues) == pytest.approx(gd["rate"])
    assert theory.heavy_ball_rate(hb["lr"], hb["momentum"], eigenvalues) == pytest.approx(
        hb["rate"], rel=1e-6
    )
    for lr, momentum in [
        (gd["lr"], 0.0),
        (0.5 * gd["lr"], 0.0),
        (hb["lr"], hb["momentum"]),
        (0.5 * hb["lr"], 0.5),
        (hb["lr"], 0.9),
    ]:
        spec = f"sgd:lr={lr},momentum={momentum}"
        analytic = theory.analytic_rate("sgd", parse_optimizer(spec).resolved(), eigenvalues)
        assert measured(spec, surface) == pytest.approx(analytic, rel=RATE_TOLERANCE), spec


def test_torch_sgd_momentum_is_heavy_ball_with_step_lr():
    """b <- mu b + g, theta <- theta - lr b  equals  theta' = theta - lr g + mu (theta - theta_prev)."""
    lam, lr, mu = torch.tensor([2.0, 20.0], dtype=torch.float64), 0.07, 0.6
    theta = torch.tensor([40.0, 20.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=lr, momentum=mu)
    previous = current = torch.tensor([40.0, 20.0], dtype=torch.float64)
    for _ in range(30):
        theta.grad = lam * theta.detach()
        opt.step()
        previous, current = current, current - lr * lam * current + mu * (current - previous)
        torch.testing.assert_close(theta.detach(), current)


def test_stability_limit_is_the_edge_of_divergence():
    surface = get_surface("elliptic")
    lam = max(surface.hessian_eigenvalues)
    for momentum in (0.0, 0.5, 0.9):
        limit = theory.stability_limit(surface.hessian_eigenvalues, momentum)
        assert limit == pytest.approx(2 * (1 + momentum) / lam)
        assert theory.heavy_ball_rate(0.99 * limit, momentum, surface.hessian_eigenvalues) < 1
        assert theory.heavy_ball_rate(1.01 * limit, momentum, surface.hessian_eigenvalues) > 1
    # on the grid heat map: nothing left of the line diverges, everything well right of it does
    lrs = np.logspace(-2, 0, 40)
    momenta = np.linspace(0, 0.9, 10)
    lr_grid, mu_grid = np.meshgrid(lrs, momenta)
    grid = {"lr": lr_grid.ravel(), "momentum": mu_grid.ravel()}
    run = run_surface(
        parse_optimizer("sgd"), surface, torch.tensor([surface.start] * lr_grid.size), 300, grid=grid
    )
    limits = 2 * (1 + run.metrics["momentum"]) / lam
    assert not run.metrics[run.metrics["lr"] < 0.98 * limits]["diverged"].any()
    assert run.metrics[run.metrics["lr"] > 1.15 * limits]["diverged"].all()
    line_lrs, line_momenta, _ = theory.stability_edge(run.metrics, surface, "lr", "momentum")
    shown = np.isfinite(line_momenta)
    np.testing.assert_allclose(line_lrs[shown], 2 * (1 + line_momenta[shown]) / lam, rtol=1e-3)


def test_tuning_gives_every_optimizer_the_same_budget_and_finds_the_best_cell():
    surface = get_surface("elliptic")
    starts = torch.tensor([[40.0, 20.0], [-30.0, 10.0], [20.0, -15.0]], dtype=torch.float64)
    axes = tuning_axes(["lr"], {"lr": "1e-3:1:13"})
    metrics = pd.concat([tune(parse_optimizer(name), surface, starts, 60, axes) for name in ("sgd", "adam")])
    assert metrics.groupby("optimizer").size().tolist() == [13 * 3, 13 * 3]
    tuning = summarise(metrics, surface, ["lr"], "final-loss")
    summary = tuning.summary.set_index("optimizer")
    # sgd's winner is the grid lr with the lowest median final gap (checked by separate plain runs)
    gaps = {}
    for lr in axes["lr"]:
        run = run_surface(parse_optimizer(f"sgd:lr={lr}"), surface, starts, 60)
        final = run.metrics["final_loss"].where(~run.metrics["diverged"], math.inf)
        gaps[lr] = float(np.median(final))
    assert summary.loc["sgd", "lr"] == pytest.approx(min(gaps, key=gaps.get))
    assert summary.loc["sgd", "lr"] < 2 / 20  # below the stability limit 2/λ_max


def test_tuning_cli_prints_winners_and_writes_plots(tmp_path):
    out = tmp_path / "tuned"
    result = invoke(
        "compare",
        "sgd",
        "momentum",
        "adam",
        "rmsprop",
        "--surface",
        "elliptic",
        "--tune",
        "--tune-range",
        "lr=1e-3:10:9",
        "--tune-starts",
        "3",
        "--steps",
        "40",
        "--format",
        "png",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "tuning on elliptic" in result.output and "theory (" in result.output
    for name in ("sensitivity.png", "trajectories.png", "loss.png", "tuning.parquet", "tuned.parquet"):
        assert (out / name).stat().st_size > 0
    meta = read_metadata(out)
    assert meta["spec"]["tune"]["over"] == ["lr"] and meta["spec"]["clip_grad_norm"] is None
    tuned = pd.read_parquet(out / "tuned.parquet").set_index("optimizer")
    metrics = pd.read_parquet(out / "metrics.parquet").set_index("optimizer")
    for name in ("sgd", "adam"):  # the comparison ran at the winning values
        assert metrics.loc[name, "lr"] == pytest.approx(tuned.loc[name, "lr"])
    (out / "sensitivity.png").unlink()
    assert invoke("plot", str(out), "--format", "png").exit_code == 0
    assert (out / "sensitivity.png").exists()


def test_two_axis_tuning_writes_heat_maps(tmp_path):
    out = tmp_path / "tuned2"
    result = invoke(
        "compare",
        "sgd",
        "--tune",
        "--tune-over",
        "lr,momentum",
        "--tune-range",
        "lr=1e-2:1:6",
        "--tune-range",
        "momentum=0:0.9:4",
        "--tune-starts",
        "2",
        "--steps",
        "30",
        "--format",
        "png",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert (out / "tune_grid_sgd.png").exists()


def test_never_reached_criterion_is_said_in_the_table(tmp_path):
    result = invoke(
        "compare",
        "sgd",
        "adam",
        "--tune",
        "--criterion",
        "steps-to-tol",
        "--steps",
        "3",
        "--tune-range",
        "lr=1e-3:1e-2:3",
        "--tune-starts",
        "2",
        "--format",
        "png",
        "--out",
        str(tmp_path / "never"),
    )
    assert result.exit_code == 0, result.output
    assert "never" in result.output and "chose" in result.output
    tuned = pd.read_parquet(tmp_path / "never" / "tuned.parquet")
    assert (tuned["chosen_by"] == "final-loss").all() and tuned["note"].str.contains("no cell reached").all()
    assert np.isinf(tuned["score"]).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["compare", "sgd", "adam", "--tune", "--tune-over", "lr,momentum"],
            "adam has no hyperparameter 'momentum'",
        ),
        (["compare", "sgd", "--tune", "--tune-range", "lr=1e-3:1:1"], "at least 2 points"),
        (["compare", "sgd", "--tune", "--tune-range", "momentum=0:0.9:3"], "not in --tune-over"),
        (["compare", "sgd", "--tune", "--tune-over", "nesterov"], "no default tuning range"),
        (["compare", "torch:sgd", "--tune"], "torch.optim does not accept"),
        (["compare", "sgd", "--tune", "--tune-starts", "0"], "--tune-starts must be >= 1"),
        (
            ["compare", "sgd", "--surface", "saddle", "--tune", "--criterion", "steps-to-tol"],
            "no known minimum",
        ),
        (["compare", "sgd", "--clip-grad-norm", "0"], "--clip-grad-norm must be > 0"),
        (["compare", "sgd", "--surface", "linreg", "--batch-size", "0"], "must be positive"),
    ],
)
def test_bad_fair_input_is_one_line_exit_2(tmp_path, args, message):
    result = invoke(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_clipping_only_when_asked_and_recorded():
    surface = get_surface("elliptic")
    start = torch.tensor([surface.start])
    plain = run_surface(parse_optimizer("sgd:lr=0.01"), surface, start, 3)
    clipped = run_surface(parse_optimizer("sgd:lr=0.01"), surface, start, 3, clip_grad_norm=1.0)
    assert "clip_grad_norm" not in plain.metrics and (clipped.metrics["clip_grad_norm"] == 1.0).all()
    # unclipped: exactly gradient descent; clipped: each step moves lr * 1 at most
    x = torch.tensor(surface.start, dtype=torch.float64)
    for _ in range(3):
        x = x - 0.01 * torch.tensor([2.0, 20.0], dtype=torch.float64) * x
    assert plain.metrics[["final_x", "final_y"]].to_numpy()[0] == pytest.approx(x.numpy(), rel=1e-12)
    steps = np.diff(clipped.trajectory[["x", "y"]].to_numpy(), axis=0)
    assert np.linalg.norm(steps, axis=1) == pytest.approx([0.01] * 3, rel=1e-5)


def test_noise_floor_matches_the_exact_formula():
    data = make_linear_data()
    for lr, batch in [(0.03, 10), (0.1, 1)]:
        runs = minibatch_runs(
            parse_optimizer("sgd"), data, [lr], batch, 3000, seeds=6, record_every=5, from_optimum=True
        )
        settled = runs[runs["step"] >= 500]["suboptimality"].mean()
        assert settled == pytest.approx(sgd_noise_floor(data, lr, batch), rel=0.15)
    # proportional to lr / batch size to first order
    assert sgd_noise_floor(data, 0.01, 10) / sgd_noise_floor(data, 0.01, 100) == pytest.approx(10, rel=0.02)
    assert sgd_noise_floor(data, 0.02, 10) / sgd_noise_floor(data, 0.01, 10) == pytest.approx(2, rel=0.05)
    assert sgd_noise_floor(data, 0.3, 1) == math.inf  # the multiplicative noise makes it unstable


def test_linreg_cli_and_redraw(tmp_path):
    out = tmp_path / "linreg"
    result = invoke(
        "compare",
        "sgd",
        "adam",
        "--surface",
        "linreg",
        "--steps",
        "300",
        "--batch-size",
        "5,50",
        "--floor-lrs",
        "0.01:0.1:3",
        "--format",
        "png",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "exact SGD floor" in result.output
    for name in ("suboptimality.png", "noise_floor.png"):
        assert (out / name).stat().st_size > 0
        (out / name).unlink()
    assert invoke("plot", str(out), "--format", "png").exit_code == 0
    assert (out / "noise_floor.png").exists()


def test_first_difference_finds_the_step():
    steps = np.repeat(np.arange(10), 2)
    a = pd.DataFrame({"step": steps, "x": np.arange(20.0), "loss": np.ones(20)})
    b = a.copy()
    b.loc[15, "x"] += 1e-9  # row 15 is step 7
    report = first_difference(a, b, ["x", "loss"])
    assert report["first_step"] == 7 and report["difference_there"] == pytest.approx(1e-9, rel=1e-3)
    assert first_difference(a, a.copy(), ["x", "loss"])["first_step"] is None


def test_check_repro_reports_identical_runs(tmp_path):
    out = tmp_path / "repro"
    result = invoke(
        "compare",
        "sgd",
        "adam",
        "--noise",
        "0.5",
        "--steps",
        "20",
        "--check-repro",
        "--format",
        "png",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    report = pd.read_parquet(out / "repro.parquet")
    cpu = report[report["comparison"] == "cpu run 1 vs run 2"]
    assert len(cpu) == 2 and cpu["first_step"].isna().all() and (cpu["max_difference"] == 0).all()
    assert "identical" in result.output
