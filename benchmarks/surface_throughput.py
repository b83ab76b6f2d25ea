"""Trial-steps per second of the batched surface runner, against torch.optim, in one process.

    .venv/bin/python benchmarks/surface_throughput.py [--trials 10000] [--steps 1000] [--threads 1,2]

For SGD and Adam on `elliptic` (float64, the runner's default), 10,000 trials x 1,000 steps:
  ours/runner     run_surface: our optimizer stepping one [trials, 2] tensor, plus recording
                  (every k-th step kept in the table, metrics from every step) and building tables
  ours/bare       our optimizer stepping the batched tensor, nothing recorded
  torch/batched   torch.optim stepping the same batched tensor, nothing recorded        -- baseline (a)
  torch/loop      one torch.optim per trial, one [2] tensor each, stepped in a Python loop -- baseline (b)
Every variant computes the same analytic gradient each step. Baseline (b) would take hours at full
size, so it times a small sample of trials and steps and extrapolates per trial-step (printed as such).
Prints ns per trial-step and the ratios the issue sets targets for: runner / (a) <= 1.5, (b) / runner >= 1000.
The variants take turns within each repeat (runner, bare, torch, runner, ...), so a change in the
machine's load during the run affects them alike; each repeat gives one ratio, and the ratios are
printed as the median of the repeats with their range (times: the fastest repeat).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from optbench.objectives import get_surface
from optbench.runners.surface import random_starts, run_surface
from optbench.specs import parse_optimizer
from optbench.tasks import surface_task


def bare_loop(optimizer_class, surface, starts, steps, hparams) -> float:
    theta = starts.clone()
    optimizer = optimizer_class([theta], **hparams)
    begin = time.perf_counter()
    for _ in range(steps):
        _, gradient = surface.evaluate(theta)
        theta.grad = gradient
        optimizer.step()
    return time.perf_counter() - begin


def per_trial_loop(optimizer_class, surface, starts, steps, hparams) -> float:
    thetas = [row.clone() for row in starts]
    optimizers = [optimizer_class([theta], **hparams) for theta in thetas]
    begin = time.perf_counter()
    for _ in range(steps):
        for theta, optimizer in zip(thetas, optimizers, strict=False):
            _, gradient = surface.evaluate(theta[None])
            theta.grad = gradient[0]
            optimizer.step()
    return time.perf_counter() - begin


def interleaved(repeats, variants: dict) -> dict:
    """{label: [seconds of each repeat]} for {label: (function, *args)}: each repeat runs every variant
    once, in turn."""
    seconds = {label: [] for label in variants}
    for _ in range(repeats):
        for label, (function, *args) in variants.items():
            seconds[label].append(function(*args))
    return seconds


def ratio(numerator: list[float], denominator: list[float]) -> str:
    """'median (min-max)' of the per-repeat ratios."""
    ratios = sorted(a / b for a, b in zip(numerator, denominator, strict=True))
    return f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--sample-trials", type=int, default=20)
    parser.add_argument("--sample-steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        default=None,
        help="torch threads, or a comma-separated list run in turn, e.g. 1,2 (default: torch's)",
    )
    args = parser.parse_args()
    for threads in [int(n) for n in args.threads.split(",")] if args.threads else [None]:
        if threads:
            torch.set_num_threads(threads)
        measure(args)


def measure(args):
    surface = get_surface("elliptic")
    starts = random_starts(surface, args.trials, seed=0)
    trial_steps = args.trials * args.steps
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}  torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"threads={torch.get_num_threads()}, load average {_load()}"
    )
    print(
        f"{args.trials} trials x {args.steps} steps on {surface.name}, float64; "
        f"{args.repeats} interleaved repeats; ns per trial-step of the fastest repeat"
    )
    for name in ("sgd", "adam"):
        spec = parse_optimizer(name)
        hparams = surface_task(surface).default_hparams(spec)
        ours_cls, torch_cls = spec.algorithm.ours, spec.algorithm.theirs
        bare_loop(torch_cls, surface, starts, 5, hparams)  # warm up lazy imports
        timings = interleaved(
            args.repeats,
            {
                "ours/runner": (_timed, run_surface, spec, surface, starts, args.steps),
                "ours/bare": (bare_loop, ours_cls, surface, starts, args.steps, hparams),
                "torch/batched": (bare_loop, torch_cls, surface, starts, args.steps, hparams),
            },
        )
        sample = starts[: args.sample_trials]
        loop = min(per_trial_loop(torch_cls, surface, sample, args.sample_steps, hparams) for _ in range(2))
        per = {label: min(repeats) / trial_steps for label, repeats in timings.items()}
        per["torch/loop"] = loop / (args.sample_trials * args.sample_steps)
        print(f"\n{name} ({', '.join(f'{k}={v}' for k, v in hparams.items())})")
        for label, seconds in per.items():
            extra = (
                f"  (extrapolated from {args.sample_trials} trials x {args.sample_steps} steps)"
                if label == "torch/loop"
                else ""
            )
            print(f"  {label:14s} {seconds * 1e9:12.1f} ns{extra}")
        print(
            f"  runner / torch batched (a): {ratio(timings['ours/runner'], timings['torch/batched'])}   "
            f"runner / ours bare: {ratio(timings['ours/runner'], timings['ours/bare'])}   "
            f"ours bare / torch batched: {ratio(timings['ours/bare'], timings['torch/batched'])}   "
            f"torch loop (b) / runner: {per['torch/loop'] / per['ours/runner']:.0f}x"
        )
    print(f"load average at the end: {_load()}")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _timed(function, *args) -> float:
    begin = time.perf_counter()
    function(*args)
    return time.perf_counter() - begin


if __name__ == "__main__":
    main()
