"""Overhead of optbench's training runner over a plain hand-written PyTorch loop.

Same model (initial weights), data, batch order and optimizer object type; one process. The
runner's time is its recorded training time per epoch (validation excluded: the plain loop has
none); the plain loop is timed the same way. Runs alternate and the median over repeats is
reported, which keeps a busy machine's noise out of the ratio as far as possible.

    .venv/bin/python benchmarks/training_overhead.py [--task digits] [--model lenet] [--epochs 5]
        [--repeats 5] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from optbench.data import load
from optbench.models import build_model
from optbench.runners.training import TrainSpec, resolve_device, train
from optbench.specs import parse_optimizer
from optbench.tasks import get_task


def plain_loop(spec: TrainSpec, dataset) -> list[float]:
    """The loop everyone writes: shuffle, slice, zero_grad, forward, loss, backward, step."""
    device = resolve_device(spec.device)
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, dataset.input_shape, dataset.num_classes).to(device)
    optimizer_spec = parse_optimizer(spec.optimizer) if isinstance(spec.optimizer, str) else spec.optimizer
    optimizer = optimizer_spec.build(model.parameters(), get_task("digits").default_hparams(optimizer_spec))
    x, y = (t.to(device) for t in dataset.train)
    generator = torch.Generator().manual_seed(spec.seed)
    steps = len(y) // spec.batch_size
    times = []
    for _ in range(spec.epochs):
        model.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(len(y), generator=generator).to(device)
        for i in range(steps):
            batch = order[i * spec.batch_size : (i + 1) * spec.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits")
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--optimizer", default="momentum:lr=0.05")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load(args.task, args.data_dir)
    spec = TrainSpec(
        optimizer=args.optimizer,
        task=args.task,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        device=args.device,
    )
    plain_loop(spec, dataset), train(spec, dataset)  # warm-up: allocator, kernels, imports
    runner_epochs, plain_epochs = [], []
    for _ in range(args.repeats):
        plain_epochs += plain_loop(spec, dataset)
        runner_epochs += train(spec, dataset).epochs["epoch_time"].tolist()
    runner, plain = statistics.median(runner_epochs), statistics.median(plain_epochs)
    samples = len(dataset.train[1]) // args.batch_size * args.batch_size
    print(
        f"machine: {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), device {args.device}"
    )
    print(
        f"{args.task}/{args.model}/{args.optimizer}, batch {args.batch_size}, {samples} samples per epoch, "
        f"median of {len(plain_epochs)} epochs"
    )
    print(f"plain PyTorch loop : {1000 * plain:8.1f} ms/epoch  ({samples / plain:9.0f} samples/s)")
    print(f"optbench runner    : {1000 * runner:8.1f} ms/epoch  ({samples / runner:9.0f} samples/s)")
    print(f"overhead           : {100 * (runner / plain - 1):+.1f}%  (target <= +5%)")


if __name__ == "__main__":
    main()
