"""The worked regression examples: exact numbers by hand, and least squares as the target."""

import numpy as np
import pandas as pd
import pytest
import torch

from optbench.runners.regression import (
    TRUE_B,
    TRUE_W,
    least_squares,
    linear_regression,
    make_linear_data,
    scalar_trace,
)


def test_scalar_trace_reproduces_the_worked_example():
    trace = scalar_trace("sgd:lr=0.1", steps=3)
    assert trace["a_next"].tolist() == pytest.approx([1.8, 1.96, 1.992], abs=1e-12)
    assert trace["a"].tolist() == pytest.approx([1.0, 1.8, 1.96], abs=1e-12)
    assert trace["prediction"].tolist() == pytest.approx([2.0, 3.6, 3.92], abs=1e-12)
    assert trace["loss"].tolist() == pytest.approx([4.0, 0.16, 0.0064], abs=1e-12)
    # d/da (y - a x)^2 = -2 x (y - a x)
    assert trace["gradient"].tolist() == pytest.approx([-8.0, -1.6, -0.32], abs=1e-12)
    assert trace["update"].tolist() == pytest.approx([0.8, 0.16, 0.032], abs=1e-12)


def test_scalar_trace_default_lr_is_the_examples_and_torch_agrees():
    ours, theirs = scalar_trace("sgd"), scalar_trace("torch:sgd")
    assert ours["a_next"].tolist() == pytest.approx([1.8, 1.96, 1.992], abs=1e-12)
    assert ours["a_next"].tolist() == theirs["a_next"].tolist()


def test_least_squares_matches_numpy_and_the_generating_parameters():
    data = make_linear_data()
    solution = least_squares(data)
    design = np.c_[data.X.numpy(), np.ones(len(data.y))]
    expected, *_ = np.linalg.lstsq(design, data.y.numpy(), rcond=None)
    assert solution["w"] + [solution["b"]] == pytest.approx(expected.tolist(), abs=1e-10)
    assert solution["w"] == pytest.approx(TRUE_W, abs=2e-3)
    assert solution["b"] == pytest.approx(TRUE_B, abs=2e-3)
    assert solution["loss"] == pytest.approx(1e-4, rel=0.2)  # noise variance 0.01^2


@pytest.mark.parametrize("spec", ["sgd", "momentum:lr=0.01", "adam:lr=0.05"])
def test_stochastic_linear_regression_recovers_w_and_b(spec):
    data = make_linear_data()
    steps = linear_regression(spec, data, batch_size=10, epochs=3)
    assert len(steps) == 300 and not steps["diverged"].any()
    last = steps.iloc[-1]
    solution = least_squares(data)
    assert [last["w0"], last["w1"], last["b"]] == pytest.approx(solution["w"] + [solution["b"]], abs=5e-3)
    assert 0 <= last["suboptimality"] < 1e-4
    assert steps["suboptimality"].iloc[0] > 100 * last["suboptimality"]


def test_linear_regression_is_reproducible_and_records_divergence():
    first, second = linear_regression("sgd", seed=3), linear_regression("sgd", seed=3)
    # LAPACK's lstsq may round f* differently by one ulp depending on memory alignment
    pd.testing.assert_frame_equal(first, second, rtol=1e-12, atol=1e-15)
    assert first[["loss", "w0", "w1", "b"]].equals(second[["loss", "w0", "w1", "b"]])
    blown = linear_regression("sgd:lr=1.5")
    assert blown["diverged"].iloc[-1] and len(blown) < 300


def test_linear_regression_rejects_a_batch_larger_than_the_data():
    from optbench.errors import OptbenchError

    with pytest.raises(OptbenchError, match="batch size 5000"):
        linear_regression("sgd", batch_size=5000)


def test_full_batch_sgd_is_gradient_descent_on_the_quadratic():
    # one batch = all samples: theta_{k+1} - theta* = (I - lr * H)(theta_k - theta*), H = 2/n A^T A
    data = make_linear_data(n=200)
    lr, steps = 0.1, 25
    table = linear_regression(f"sgd:lr={lr}", data, batch_size=200, epochs=steps)
    design = torch.cat([data.X, torch.ones(200, 1, dtype=torch.float64)], dim=1)
    hessian = 2 / 200 * design.T @ design
    optimum = torch.tensor(least_squares(data)["w"] + [least_squares(data)["b"]], dtype=torch.float64)
    contraction = torch.eye(3, dtype=torch.float64) - lr * hessian
    expected = optimum + torch.linalg.matrix_power(contraction, steps) @ (
        torch.zeros(3, dtype=torch.float64) - optimum
    )
    last = table.iloc[-1]
    assert [last["w0"], last["w1"], last["b"]] == pytest.approx(expected.tolist(), abs=1e-10)


def test_least_squares_is_the_same_to_the_last_bit_every_call():
    # torch.linalg.lstsq on the CPU varied in the last bits between calls, and so did every f - f*
    data = make_linear_data(seed=3)
    assert len({least_squares(data)["loss"] for _ in range(30)}) == 1
