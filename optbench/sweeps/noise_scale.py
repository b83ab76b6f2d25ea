"""The gradient noise scale B_simple = tr(Σ) / |G|² (McCandlish et al. 2018, "An empirical model
of large-batch training"), the batch size beyond which larger batches stop paying off.

G is the true (full-data) gradient and Σ the per-sample gradient covariance. A mini-batch gradient
G_B of B samples satisfies

    E |G_B|² = |G|² + c_B tr(Σ),   c_B = 1/B            (samples drawn with replacement, or an
                                   c_B = (N - B) / (B (N - 1))   infinite population; without
                                                                  replacement from N samples)

so squared norms measured at two batch sizes give both unknowns (McCandlish et al., appendix A.1):
tr(Σ) = (|G_small|² - |G_big|²) / (c_small - c_big) and |G|² = |G_big|² - c_big tr(Σ). When the big
batch is the whole training set, c_big = 0 and |G_big|² is |G|² exactly.

Uncertainty: the mean of the small batches' |G_small|² over `repeats` independent batches has a Student-t
interval; B_simple increases with that mean, so the interval maps through the same formula (the big
batch's mean is taken as exact: it is one pass over the whole split in every caller here). B_simple >= 0,
so the interval is cut at 0: the likelihood interval of a normal mean restricted to the values the
quantity can take, with the same coverage. Where the model is small, `exact_for_classifier` gives tr(Σ)
from every per-sample gradient instead.

Several seeds: each seed starts from its own weights (and data), so each has its own B_simple. `pool`
combines them into the mean of the seeds' values, with a Welch-Satterthwaite t interval from every
seed's batches at once (Welch 1947; Satterthwaite 1946), cut at 0 likewise; its coverage of the mean of
the seeds' exact values is checked by simulation in tests/test_fitted_numbers.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from scipy.stats import t as student_t

CONFIDENCE = 0.95


@dataclass(frozen=True)
class NoiseScale:
    b_simple: float  # tr(Σ) / |G|²
    trace_sigma: float  # tr(Σ), per-sample gradient covariance
    grad_norm_sq: float  # |G|²
    low: float = math.nan  # the CONFIDENCE interval of b_simple (equal to it when computed exactly)
    high: float = math.nan
    standard_error: float = math.nan  # of b_simple (0 when computed exactly)
    dof: float = math.nan  # the degrees of freedom of that standard error (inf when exact)


def batch_factor(batch: int, population: int | None) -> float:
    """c_B: how much of tr(Σ) a batch of `batch` samples leaves in E|G_B|² - |G|²."""
    if population is None:
        return 1.0 / batch
    return (population - batch) / (batch * (population - 1)) if population > 1 else 0.0


def from_two_batch_sizes(
    small_sq: float, big_sq: float, small: int, big: int, population: int | None = None
) -> NoiseScale:
    """B_simple from mean squared gradient norms measured at batch sizes `small` < `big`."""
    c_small, c_big = batch_factor(small, population), batch_factor(big, population)
    trace = (small_sq - big_sq) / (c_small - c_big)
    grad_sq = big_sq - c_big * trace
    b_simple = trace / grad_sq if grad_sq > 0 else math.inf
    return NoiseScale(b_simple, trace, grad_sq)


def estimate(
    batch_gradient: Callable[[int, torch.Generator], torch.Tensor],
    small: int,
    big: int,
    repeats: int,
    seed: int = 0,
    population: int | None = None,
    big_repeats: int | None = None,
) -> NoiseScale:
    """Average |G_B|² over `repeats` batches of each size, then solve for tr(Σ) and |G|².

    `batch_gradient(B, generator)` returns the flat gradient of one mini-batch of B samples.
    """
    generator = torch.Generator().manual_seed(seed)

    def squared_norms(batch, times):
        return [float(batch_gradient(batch, generator).pow(2).sum()) for _ in range(times)]

    small_sq = squared_norms(small, repeats)
    big_sq = squared_norms(big, repeats if big_repeats is None else big_repeats)
    big_mean = sum(big_sq) / len(big_sq)
    estimate_ = from_two_batch_sizes(sum(small_sq) / repeats, big_mean, small, big, population)
    if repeats < 2:
        return estimate_
    low, high = mean_interval(small_sq)
    mean = sum(small_sq) / repeats
    spread = mean_standard_error(small_sq)

    def b_simple(small_mean):
        return from_two_batch_sizes(small_mean, big_mean, small, big, population).b_simple

    # B_simple = tr(Σ)/|G|² >= 0: the interval's part below 0 holds no possible value, so cutting it
    # there keeps the coverage and respects the sign
    return replace(
        estimate_,
        low=max(0.0, b_simple(low)),
        high=b_simple(high),
        standard_error=(b_simple(mean + spread) - b_simple(mean - spread)) / 2,
        dof=float(repeats - 1),
    )


def mean_standard_error(values) -> float:
    """The standard error of the mean of independent `values` (sample standard deviation / √n)."""
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def mean_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Student-t interval of the mean of independent `values`."""
    n = len(values)
    mean = sum(values) / n
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * mean_standard_error(values)
    return mean - half, mean + half


def pool(b_simple, standard_error, dof, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the mean of several seeds' B_simple with its `confidence` interval.

    b_simple, standard_error, dof: one entry per seed (`NoiseScale`'s fields; standard error 0 and dof
    inf where a seed's value is exact). The mean's standard error is √(Σ se²)/k; its degrees of freedom
    the Welch-Satterthwaite (Σ se²)² / Σ (se⁴/dof). The interval is cut at 0 (B_simple >= 0); its upper
    end is inf (not identifiable) where a seed's B_simple or standard error is inf or NaN (|G|² not
    above 0 within the data). An empty input gives NaNs.
    """
    b = [float(v) for v in b_simple]
    se = [float(v) for v in standard_error]
    df = [float(v) for v in dof]
    k = len(b)
    if not k:
        return math.nan, math.nan, math.nan
    mean = sum(b) / k
    if not all(math.isfinite(v) for v in b + se):
        return mean, 0.0, math.inf
    variance = sum(v * v for v in se)
    if variance == 0:
        return mean, mean, mean
    spread = sum(v**4 / d for v, d in zip(se, df, strict=True) if v > 0)
    welch = variance**2 / spread if spread > 0 else math.inf  # inf: every error's dof is inf
    half = float(student_t.ppf(0.5 + confidence / 2, welch)) * math.sqrt(variance) / k
    return mean, max(0.0, mean - half), mean + half


def for_classifier(
    network: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    small: int = 32,
    repeats: int = 16,
    seed: int = 0,
) -> NoiseScale:
    """B_simple of the cross-entropy of `network` on a training split, at its current weights.

    Small batches are drawn without replacement; the big "batch" is the whole split (exact |G|²).
    """
    n = len(labels)
    small = min(small, n - 1)
    parameters = [p for p in network.parameters() if p.requires_grad]
    dtype = parameters[0].dtype

    def batch_gradient(batch, generator):
        indices = torch.randperm(n, generator=generator)[:batch] if batch < n else torch.arange(n)
        network.zero_grad(set_to_none=True)
        for start in range(0, len(indices), 1024):  # whole-split gradient in chunks
            chunk = indices[start : start + 1024]
            logits = network(images[chunk].to(dtype))
            (F.cross_entropy(logits.float(), labels[chunk], reduction="sum") / len(indices)).backward()
        return torch.cat([p.grad.reshape(-1) for p in parameters if p.grad is not None]).double()

    was_training = network.training
    network.train()
    try:
        return estimate(batch_gradient, small, n, repeats, seed, population=n, big_repeats=1)
    finally:
        network.zero_grad(set_to_none=True)
        network.train(was_training)


def exact_for_classifier(
    network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, chunk: int = 256
) -> NoiseScale:
    """B_simple of the cross-entropy of `network` on a split, exactly, from every per-sample gradient.

    tr(Σ) = (1/N) Σ_i |g_i - G|² = (1/N) Σ_i |g_i|² - |G|² (the population covariance that the
    without-replacement factor c_B above refers to), per-sample gradients by `torch.func` (vmap of grad),
    `chunk` samples at a time. Memory: chunk × parameters floats; meant for small models (LeNet: 0.06 M).
    """
    from torch.func import functional_call, grad, vmap

    parameters = {name: p.detach() for name, p in network.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in network.named_buffers()}
    dtype = next(iter(parameters.values())).dtype

    def sample_loss(params, image, label):
        logits = functional_call(network, (params, buffers), (image[None].to(dtype),))
        return F.cross_entropy(logits.float(), label[None])

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    total = None
    squared_sum = 0.0
    n = len(labels)
    was_training = network.training
    network.train()
    try:
        for start in range(0, n, chunk):
            grads = per_sample(parameters, images[start : start + chunk], labels[start : start + chunk])
            flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads.values()], dim=1).double()
            squared_sum += float(flat.pow(2).sum())
            total = flat.sum(dim=0) if total is None else total + flat.sum(dim=0)
    finally:
        network.train(was_training)
    grad_sq = float((total / n).pow(2).sum())
    trace = squared_sum / n - grad_sq
    b_simple = trace / grad_sq if grad_sq > 0 else math.inf
    return NoiseScale(b_simple, trace, grad_sq, b_simple, b_simple, 0.0, math.inf)
