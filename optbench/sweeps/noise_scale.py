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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class NoiseScale:
    b_simple: float        # tr(Σ) / |G|²
    trace_sigma: float     # tr(Σ), per-sample gradient covariance
    grad_norm_sq: float    # |G|²


def batch_factor(batch: int, population: int | None) -> float:
    """c_B: how much of tr(Σ) a batch of `batch` samples leaves in E|G_B|² - |G|²."""
    if population is None:
        return 1.0 / batch
    return (population - batch) / (batch * (population - 1)) if population > 1 else 0.0


def from_two_batch_sizes(small_sq: float, big_sq: float, small: int, big: int,
                         population: int | None = None) -> NoiseScale:
    """B_simple from mean squared gradient norms measured at batch sizes `small` < `big`."""
    c_small, c_big = batch_factor(small, population), batch_factor(big, population)
    trace = (small_sq - big_sq) / (c_small - c_big)
    grad_sq = big_sq - c_big * trace
    b_simple = trace / grad_sq if grad_sq > 0 else math.inf
    return NoiseScale(b_simple, trace, grad_sq)


def estimate(batch_gradient: Callable[[int, torch.Generator], torch.Tensor], small: int, big: int,
             repeats: int, seed: int = 0, population: int | None = None, big_repeats: int | None = None) \
        -> NoiseScale:
    """Average |G_B|² over `repeats` batches of each size, then solve for tr(Σ) and |G|².

    `batch_gradient(B, generator)` returns the flat gradient of one mini-batch of B samples.
    """
    generator = torch.Generator().manual_seed(seed)

    def mean_sq(batch, times):
        return sum(float(batch_gradient(batch, generator).pow(2).sum()) for _ in range(times)) / times
    big_times = repeats if big_repeats is None else big_repeats
    return from_two_batch_sizes(mean_sq(small, repeats), mean_sq(big, big_times), small, big, population)


def for_classifier(network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   small: int = 32, repeats: int = 16, seed: int = 0) -> NoiseScale:
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
        for start in range(0, len(indices), 1024):       # whole-split gradient in chunks
            chunk = indices[start:start + 1024]
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
