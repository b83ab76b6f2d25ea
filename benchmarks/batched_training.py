"""Tuning many learning rates as one program: batched training against a bare torch.optim loop.

The task (issue 21): 64 learning rates x 3 seeds of the digits MLP. `train_batched` runs the 192 trials
together (stacked parameters, vmap forward, one optbench optimizer with a per-trial lr); the baseline
is the loop everyone writes, with torch.optim's class of the same algorithm, running the 192 trainings
one after the other on the same initial weights and the same batches. One process; rounds alternate
which side goes first; the ratio of the two times is taken per round and its median and range over
rounds reported, which keeps a busy machine's drift out of the ratio as far as possible. The final
losses of both sides are compared as a check that they trained the same thing (float32: the batched
matrix products sum in another order, so they agree to rounding that training amplifies, about 3e-3 at
most in 44 steps here; `tests/test_batched_training.py` certifies the equality in float64 and float32).
`--threads 1,2` repeats the measurement at each thread count (both sides at that count). The CPU
time of each side (`time.process_time`) is reported beside the wall time: on a machine shared with
other jobs a side's wall time measures how much of a core it was given, its CPU time the work it did.

    PYTHONPATH=. .venv/bin/python benchmarks/batched_training.py [--optimizer adam] [--lrs 64]
        [--seeds 3] [--steps 44] [--batch-size 64] [--rounds 5] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from optbench.data import load
from optbench.models import build_model
from optbench.runners.batched_training import train_batched
from optbench.specs import parse_optimizer

LR_RANGE = {"adam": (1e-4, 1e-1), "sgd": (1e-3, 1.0)}  # log-spaced tuning ranges per algorithm


def one_by_one(spec, dataset, seeds, lrs, steps, batch_size) -> list[float]:
    """The bare loop, once per trial: seed, model, torch.optim optimizer, shuffled batches. Final losses."""
    x, y = dataset.train
    per_epoch = len(y) // batch_size
    settings = {name: value for name, value in spec.resolved().items() if name != "lr"}
    final = []
    for seed, lr in zip(seeds, lrs, strict=True):
        torch.manual_seed(seed)
        model = build_model("mlp", dataset.input_shape, dataset.num_classes)
        optimizer = spec.algorithm.theirs(model.parameters(), lr=lr, **settings)
        order = torch.Generator().manual_seed(seed)
        for t in range(steps):
            if t % per_epoch == 0:
                permutation = torch.randperm(len(y), generator=order)
            batch = permutation[(t % per_epoch) * batch_size : (t % per_epoch + 1) * batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        final.append(loss.item())
    return final


def load_average() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lrs", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=44, help="44 = two epochs of 64 on digits")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default="1", help="torch threads, one count or several: 1,2")
    args = parser.parse_args()

    spec = parse_optimizer(args.optimizer)
    low, high = LR_RANGE.get(spec.family, (1e-4, 1e-1))
    grid = torch.logspace(torch.log10(torch.tensor(low)), torch.log10(torch.tensor(high)), args.lrs).tolist()
    seeds = [seed for seed in range(args.seeds) for _ in grid]
    lrs = grid * args.seeds
    dataset = load("digits")
    for threads in [int(count) for count in args.threads.split(",")]:
        torch.set_num_threads(threads)
        print(
            f"{platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
            f"{threads} threads; {spec.name}: {len(grid)} lrs x {args.seeds} seeds = {len(lrs)} trials, "
            f"{args.steps} steps of {args.batch_size}; load average before: {load_average()}",
            flush=True,
        )
        measure(spec, dataset, seeds, lrs, args)


def measure(spec, dataset, seeds, lrs, args) -> None:
    """Rounds of both sides in alternating order; prints each round and the median ratio with its range."""
    ratios, cpu_ratios, batched_times, loop_times = [], [], [], []
    for r in range(args.rounds):
        order = ("batched", "loop") if r % 2 == 0 else ("loop", "batched")
        seconds, cpu_seconds = {}, {}
        for side in order:
            start, cpu_start = time.perf_counter(), time.process_time()
            if side == "batched":
                result = train_batched(
                    spec, dataset, seeds, steps=args.steps, batch_size=args.batch_size, hparams={"lr": lrs}
                )
                batched_final = result.losses[-1]
            else:
                loop_final = torch.tensor(
                    one_by_one(spec, dataset, seeds, lrs, args.steps, args.batch_size), dtype=torch.float64
                )
            seconds[side] = time.perf_counter() - start
            cpu_seconds[side] = time.process_time() - cpu_start
        ratios.append(seconds["loop"] / seconds["batched"])
        cpu_ratios.append(cpu_seconds["loop"] / cpu_seconds["batched"])
        batched_times.append(seconds["batched"])
        loop_times.append(seconds["loop"])
        finite = torch.isfinite(loop_final) & torch.isfinite(batched_final)
        gap = (batched_final - loop_final)[finite].abs().max().item()
        print(
            f"round {r + 1}: batched {seconds['batched']:.2f} s ({result.mode}), one by one {seconds['loop']:.2f} s,"
            f" ratio {ratios[-1]:.1f}x (CPU time {cpu_seconds['batched']:.2f} s and {cpu_seconds['loop']:.2f} s,"
            f" ratio {cpu_ratios[-1]:.1f}x); largest final-loss gap {gap:.1e} over {int(finite.sum())} finite trials;"
            f" load {load_average()}",
            flush=True,
        )
    print(
        f"median ratio {statistics.median(ratios):.1f}x (range {min(ratios):.1f}-{max(ratios):.1f}x over "
        f"{args.rounds} rounds; of CPU time {statistics.median(cpu_ratios):.1f}x, range "
        f"{min(cpu_ratios):.1f}-{max(cpu_ratios):.1f}x); batched median {statistics.median(batched_times):.2f} s, one by one "
        f"{statistics.median(loop_times):.2f} s; load average after: {load_average()}",
        flush=True,
    )


if __name__ == "__main__":
    main()
