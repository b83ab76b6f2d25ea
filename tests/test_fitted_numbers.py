"""Fitted numbers carry their uncertainty and stay inside their data: B_crit and the gradient noise scale."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from optbench.sweeps import noise_scale
from optbench.sweeps.analysis import critical_batch_fit, profile_interval

BATCHES = np.array([8, 16, 32, 64, 128, 256, 512, 1024], dtype=float)


def synthetic(b_crit, s_min=100.0, seeds=3, sigma=0.1, seed=0, batches=BATCHES):
    """Steps to target from S_min (1 + B_crit/B) (McCandlish et al. 2018, eq. 2.11), lognormal noise per run."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            (b, s, s_min * (1 + b_crit / b) * math.exp(sigma * rng.standard_normal()))
            for b in batches
            for s in range(seeds)
        ],
        columns=["batch_size", "seed", "steps_to_target"],
    )


@pytest.mark.parametrize("seeds, sigma", [(3, 0.1), (1, 0.05)])
def test_the_b_crit_interval_covers_the_true_value(seeds, sigma):
    fits = [critical_batch_fit(synthetic(64.0, seeds=seeds, sigma=sigma, seed=k)) for k in range(40)]
    assert all(fit["fit_status"] == "fitted" for fit in fits)
    covered = sum(fit["critical_low"] <= 64.0 <= fit["critical_high"] for fit in fits)
    assert covered >= 34  # 95% intervals: 38 expected; 34 of 40 is 2.5 sd below
    assert all(fit["critical_low"] < fit["critical_batch_size"] < fit["critical_high"] for fit in fits)


def _coverage(b, b_crit, sigma, repeats, seed=0):
    """Share of `repeats` simulated curves (lognormal noise, one run per entry of b) whose profile
    interval covers the true B_crit, and the share with no upper end."""
    rng = np.random.default_rng(seed)
    truth = np.log(100.0 * (1 + b_crit / b))
    covered = unbounded = 0
    for _ in range(repeats):
        low, high = profile_interval(b, truth + sigma * rng.standard_normal(len(b)))
        covered += low <= b_crit <= high
        unbounded += math.isinf(high)
    return covered / repeats, unbounded / repeats


def test_three_batch_sizes_one_seed_interval_is_calibrated():
    # the case: B = 16, 64, 256, one seed (1 degree of freedom): a 95% interval covers ~95%;
    # 300 repeats: the binomial sd is 1.3%, so 0.92 is > 2 sd below
    covered, unbounded = _coverage(np.array([16.0, 64.0, 256.0]), 32.0, 0.1, 300)
    assert covered >= 0.92
    assert unbounded > 0  # with one degree of freedom the data often cannot bound B_crit above


def test_the_interval_of_three_points_is_wide_not_a_bootstrap_of_three():
    # 3 points with a 10% misfit: t with 1 degree of freedom (F(1, 1) = 161) gives a wide interval
    b = np.array([16.0, 64.0, 256.0])
    low, high = profile_interval(b, np.log(100.0 * (1 + 32.0 / b)) + np.array([0.05, -0.1, 0.05]))
    assert low < 8 and (high > 1000 or math.isinf(high))


@pytest.mark.slow
@pytest.mark.parametrize("seeds, sigma", [(1, 0.05), (1, 0.2), (3, 0.1), (2, 0.3)])
def test_profile_interval_coverage_large(seeds, sigma):
    b = np.repeat(BATCHES[1:6], seeds)  # 16 ... 256, each batch size `seeds` times: the runs pooled
    covered, _ = _coverage(b, 64.0, sigma, 2000, seed=seeds)
    assert 0.93 <= covered <= 0.97  # 2000 repeats: binomial sd 0.5%


def test_noise_free_data_give_b_crit_back():
    fit = critical_batch_fit(synthetic(64.0, sigma=0.0))
    assert fit["critical_batch_size"] == pytest.approx(64.0, rel=0.01)
    assert fit["s_min"] == pytest.approx(100.0, rel=0.01)


def test_when_steps_rise_with_the_batch_size_there_is_no_b_crit():
    rise = pd.DataFrame({"batch_size": [16, 64, 256], "seed": 0, "steps_to_target": [68.6, 39.9, 75.5]})
    fit = critical_batch_fit(rise)
    assert fit["fit_status"] == "steps rise with B: the model does not apply"
    assert math.isnan(fit["critical_batch_size"]) and math.isnan(fit["s_min"])


def test_an_estimate_outside_the_measured_batch_sizes_is_not_reported():
    far = critical_batch_fit(synthetic(5000.0, sigma=0.0, batches=BATCHES[:4]))  # B from 8 to 64 only
    assert far["fit_status"] == "B_crit above the measured range (> 64)"
    assert math.isnan(far["critical_batch_size"])
    assert critical_batch_fit(synthetic(64.0, batches=BATCHES[:2]))["fit_status"].startswith("too few")


def test_the_noise_scale_estimate_brackets_the_exact_value_with_its_interval():
    torch.manual_seed(0)
    # a linear classifier's per-sample gradients by hand: (softmax - onehot) ⊗ x
    network = torch.nn.Linear(5, 3).double()
    images, labels = torch.randn(400, 5, dtype=torch.float64), torch.randint(3, (400,))
    exact = noise_scale.exact_for_classifier(network, images, labels, chunk=64)
    error = torch.softmax(network(images), dim=1) - torch.nn.functional.one_hot(labels, 3)
    per_sample = torch.cat([(error[:, :, None] * images[:, None, :]).reshape(400, -1), error], dim=1).detach()
    mean = per_sample.mean(dim=0)
    trace = float((per_sample - mean).pow(2).sum(dim=1).mean())
    assert exact.grad_norm_sq == pytest.approx(
        float(mean.pow(2).sum()), rel=1e-6
    )  # the loss is taken in float32, as in training
    assert exact.trace_sigma == pytest.approx(trace, rel=1e-6)  # the loss is taken in float32, as in training
    estimate = noise_scale.for_classifier(network, images, labels, repeats=64, seed=1)
    assert estimate.low < estimate.b_simple < estimate.high


@pytest.mark.slow
def test_the_noise_scale_interval_covers_the_exact_lenet_value_at_initialisation():
    from optbench.data import load
    from optbench.models import build_model

    dataset = load("digits", None)
    images, labels = dataset.train
    covered = 0
    for seed in range(40):
        torch.manual_seed(seed)
        network = build_model("lenet", dataset.input_shape, dataset.num_classes)
        exact = noise_scale.exact_for_classifier(network, images, labels).b_simple
        estimate = noise_scale.for_classifier(network, images, labels, seed=seed)  # 16 batches of 32
        covered += estimate.low <= exact <= estimate.high
    assert covered >= 36  # >= 90% of 40 seeds


def test_the_tuned_rule_runs_an_lr_grid_per_batch_size_and_keeps_the_fastest():
    import optbench
    from optbench.sweeps.cells import expand
    from optbench.sweeps.spec import SweepSpec

    spec = SweepSpec(
        batch_sizes=(4, 16, 64),
        lr_scales=("tuned",),
        optimizers=("sgd:lr=0.1",),
        task="surface:bowl",
        noise=2.0,
        steps=120,
        seeds=1,
        target_loss=0.05,
    )
    cells = expand(spec)
    lrs = {b: sorted(c.lr for c in cells if c.batch_size == b) for b in (4, 16, 64)}
    assert lrs[16] == pytest.approx([0.1 * 2 * f for f in (0.25, 0.5, 1, 2, 4)])  # √(16/4) = 2
    summary = optbench.sweep(spec).summary
    for _, rows in summary.groupby("batch_size"):
        chosen = rows[rows["lr_chosen"]]
        assert len(chosen) == 1
        fastest = rows["steps_to_target"].min()
        assert chosen["steps_to_target"].iloc[0] == fastest or (math.isnan(fastest) and len(chosen) == 1)


def _figure_of(steps_by_batch, seeds=1):
    from optbench.plots.sweeps import steps_to_target
    from optbench.sweeps.analysis import critical_batch_sizes

    summary = pd.DataFrame(
        [
            {
                "optimizer": "sgd",
                "lr_scale": "linear",
                "batch_size": b,
                "seed": s,
                "base_batch_size": min(steps_by_batch),
                "steps_to_target": steps,
                "target_accuracy": 0.9,
                "target_loss": math.nan,
                "lr_chosen": True,
                "noise_scale_start": 1.0,
                "noise_scale_end": 1.0,
            }
            for b, steps in steps_by_batch.items()
            for s in range(seeds)
        ]
    )
    critical = critical_batch_sizes(summary)
    return critical, steps_to_target(summary, critical)


def test_the_steps_figure_draws_the_fit_with_its_interval_only_where_the_model_fits():
    fitted = {b: 100 * (1 + 64 / b) for b in (8, 16, 32, 64, 128, 256, 512)}
    critical, figure = _figure_of(fitted)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    fit = [label for label in labels if label.startswith("fit S_min")]
    assert critical.set_index("lr_scale").loc["best rule", "fit_status"] == "fitted"
    assert len(fit) == 1 and "B_crit ≈ 64" in fit[0] and "95%" in fit[0]
    critical, figure = _figure_of({16: 68.6, 64: 39.9, 256: 75.5})  # the rule-scaled sweep
    assert not any(line.get_label().startswith("fit") for line in figure.axes[0].get_lines())
    assert (critical["fit_status"] == "steps rise with B: the model does not apply").all()


def test_the_noise_scale_interval_respects_its_sign():
    # small-batch |G_B|² of 0.5, 20, 0.5, 20 (mean 10.25, t(3) half-width 17.9) against a big |G_B|² of 5:
    # the interval of the mean reaches below 5, where tr(Σ) and B_simple would be negative
    squares = iter([0.5, 20.0, 0.5, 20.0])

    def batch_gradient(batch, generator):
        return torch.tensor([math.sqrt(next(squares) if batch == 4 else 5.0)], dtype=torch.float64)

    estimate = noise_scale.estimate(batch_gradient, small=4, big=64, repeats=4, big_repeats=1)
    low, _ = noise_scale.mean_interval([0.5, 20.0, 0.5, 20.0])
    assert low < 5.0  # the unclipped bound would be negative
    assert estimate.low == 0.0 and estimate.b_simple > 0 and estimate.high > estimate.b_simple


def _per_sample_gradients(seed, samples=256, dim=10):
    """A fixed set of per-sample gradients, as a network at one seed's initial weights has: its own
    mean (|G|²) and spread (tr Σ) per seed."""
    generator = torch.Generator().manual_seed(1000 + seed)
    mean = torch.randn(dim, generator=generator, dtype=torch.float64) * (0.5 + 0.2 * seed)
    scales = 3 * torch.rand(dim, generator=generator, dtype=torch.float64)
    return mean + scales * torch.randn(samples, dim, generator=generator, dtype=torch.float64)


def _exact_b_simple(per_sample):
    mean = per_sample.mean(dim=0)
    return float((per_sample - mean).pow(2).sum(dim=1).mean() / mean.pow(2).sum())


def _pooled_coverage(seeds: int, repeats: int) -> float:
    """How often the pooled interval of `seeds` seeds (16 batches of 32 each, as `for_classifier`) holds
    the mean of the seeds' exact B_simple, over `repeats` independent draws of the batches."""
    populations = [_per_sample_gradients(seed) for seed in range(seeds)]
    target = sum(_exact_b_simple(p) for p in populations) / seeds
    covered = 0
    for repeat in range(repeats):
        estimates = []
        for seed, per_sample in enumerate(populations):
            n = len(per_sample)

            def batch_gradient(batch, generator, per_sample=per_sample, n=n):
                chosen = torch.randperm(n, generator=generator)[:batch] if batch < n else torch.arange(n)
                return per_sample[chosen].mean(dim=0)

            estimates.append(
                noise_scale.estimate(
                    batch_gradient, 32, n, 16, seed=repeat * 100 + seed, population=n, big_repeats=1
                )
            )
        _, low, high = noise_scale.pool(
            [e.b_simple for e in estimates], [e.standard_error for e in estimates], [e.dof for e in estimates]
        )
        assert 0 <= low
        covered += low <= target <= high
    return covered / repeats


def test_the_pooled_noise_scale_interval_covers_the_mean_of_the_seeds_exact_values():
    # 100 repeats: a 95% interval covers at least 88 (3 binomial standard deviations below 95)
    assert _pooled_coverage(seeds=3, repeats=100) >= 0.88


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [1, 2, 5])
def test_the_pooled_noise_scale_interval_has_its_coverage(seeds):
    # 1000 repeats: 95% within 3 binomial standard deviations (0.021)
    assert _pooled_coverage(seeds, repeats=1000) >= 0.929


def test_pooling_takes_every_seed_and_says_when_the_value_is_not_identifiable():
    from scipy.stats import t as student_t

    mean, low, high = noise_scale.pool([10.0, 20.0], [1.0, 2.0], [15.0, 15.0])
    se = math.sqrt(1.0 + 4.0) / 2
    welch = 25.0 / (1.0 / 15 + 16.0 / 15)
    half = student_t.ppf(0.975, welch) * se
    assert (mean, low, high) == pytest.approx((15.0, 15.0 - half, 15.0 + half))
    # exact values: the mean, without an interval's width
    assert noise_scale.pool([3.0, 5.0], [0.0, 0.0], [math.inf, math.inf]) == (4.0, 4.0, 4.0)
    # a lower end below 0 holds no possible value; a seed whose |G|² is not above 0 bounds nothing above
    assert noise_scale.pool([1.0], [5.0], [15.0])[1] == 0.0
    assert noise_scale.pool([1.0, math.inf], [0.5, math.inf], [15.0, 15.0])[1:] == (0.0, math.inf)


def test_the_sweep_noise_scale_is_pooled_over_seeds():
    from optbench.sweeps.analysis import pooled_noise_scale

    cells = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1],  # two cells per seed share its initial weights: one value each
            "noise_scale_start": [10.0, 10.0, 20.0, 20.0],
            "noise_scale_start_se": [1.0, 1.0, 2.0, 2.0],
            "noise_scale_start_dof": [15.0, 15.0, 15.0, 15.0],
            "noise_scale_end": [1.0, 2.0, 3.0, 4.0],
        }
    )
    pooled = pooled_noise_scale(cells)
    assert (
        pooled["noise_scale_start"],
        pooled["noise_scale_start_low"],
        pooled["noise_scale_start_high"],
    ) == (pytest.approx(noise_scale.pool([10.0, 20.0], [1.0, 2.0], [15.0, 15.0])))
    assert pooled["noise_seeds"] == 2 and pooled["noise_scale_end"] == 2.5
    # a table saved before standard errors were stored: the mean, and no interval rather than a made-up one
    old = pooled_noise_scale(cells.drop(columns=["noise_scale_start_se", "noise_scale_start_dof"]))
    assert old["noise_scale_start"] == 15.0 and math.isnan(old["noise_scale_start_low"])
