"""Trial-steps per second of the batched surface runner, against torch.optim, in one process.

    .venv/bin/python benchmarks/surface_throughput.py [--trials 10000] [--steps 1000]

For SGD and Adam on `elliptic` (float64, the runner's default), 10,000 trials x 1,000 steps:
  ours/runner     run_surface: our optimizer stepping one [trials, 2] tensor, plus recording
                  (every k-th step kept in the table, metrics from every step) and building tables
  ours/bare       our optimizer stepping the batched tensor, nothing recorded
  torch/batched   torch.optim stepping the same batched tensor, nothing recorded        -- baseline (a)
  torch/loop      one torch.optim per trial, one [2] tensor each, stepped in a Python loop -- baseline (b)
Every variant computes the same analytic gradient each step. Baseline (b) would take hours at full
size, so it times a small sample of trials and steps and extrapolates per trial-step (printed as such).
Prints ns per trial-step and the ratios the issue sets targets for: runner / (a) <= 1.5, (b) / runner >= 1000.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from optbench.objectives import get_surface
from optbench.runners.surface import default_hparams, random_starts, run_surface
from optbench.specs import parse_optimizer


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
        for theta, optimizer in zip(thetas, optimizers):
            _, gradient = surface.evaluate(theta[None])
            theta.grad = gradient[0]
            optimizer.step()
    return time.perf_counter() - begin


def best_of(repeats, function, *args) -> float:
    return min(function(*args) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--sample-trials", type=int, default=20)
    parser.add_argument("--sample-steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    surface = get_surface("elliptic")
    starts = random_starts(surface, args.trials, seed=0)
    trial_steps = args.trials * args.steps
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads={torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    print(f"{args.trials} trials x {args.steps} steps on {surface.name}, float64; "
          f"best of {args.repeats}; ns per trial-step")
    for name in ("sgd", "adam"):
        spec = parse_optimizer(name)
        hparams = default_hparams(surface, spec.family)
        ours_cls, torch_cls = spec.algorithm.ours, spec.algorithm.theirs
        bare_loop(torch_cls, surface, starts, 5, hparams)      # warm up lazy imports
        runner = best_of(args.repeats, lambda: _timed(run_surface, spec, surface, starts, args.steps))
        ours = best_of(args.repeats, bare_loop, ours_cls, surface, starts, args.steps, hparams)
        batched = best_of(args.repeats, bare_loop, torch_cls, surface, starts, args.steps, hparams)
        sample = starts[:args.sample_trials]
        loop = per_trial_loop(torch_cls, surface, sample, args.sample_steps, hparams)
        per = {"ours/runner": runner / trial_steps, "ours/bare": ours / trial_steps,
               "torch/batched": batched / trial_steps,
               "torch/loop": loop / (args.sample_trials * args.sample_steps)}
        print(f"\n{name} ({', '.join(f'{k}={v}' for k, v in hparams.items())})")
        for label, seconds in per.items():
            extra = (f"  (extrapolated from {args.sample_trials} trials x {args.sample_steps} steps)"
                     if label == "torch/loop" else "")
            print(f"  {label:14s} {seconds * 1e9:12.1f} ns{extra}")
        print(f"  runner / torch batched (a): {per['ours/runner'] / per['torch/batched']:.2f}x   "
              f"ours bare / torch batched: {per['ours/bare'] / per['torch/batched']:.2f}x   "
              f"torch loop (b) / runner: {per['torch/loop'] / per['ours/runner']:.0f}x")


def _timed(function, *args) -> float:
    begin = time.perf_counter()
    function(*args)
    return time.perf_counter() - begin


if __name__ == "__main__":
    main()
