"""Section 3: optbench's training loop against a bare loop with torch's fused optimizer.

Same CIFAR-shaped ResNet-20, initial weights, data and batch order on both sides; fp32, then
bf16 autocast + channels_last. The bare loop is the one everyone writes (shuffle on the device,
slice, zero_grad, forward, loss, backward, `torch.optim.X(..., fused=True).step()`); optbench's is
`optbench.runners.training.train`, once with our optimizer on its fast path (what a user gets)
and once with torch's default implementation (`torch:NAME`, foreach on CUDA: the loop's own cost).
Throughput is the fastest epoch after the first (which pays for warm-up), over `rounds` rounds
that run the three loops in turn. Target: optbench's loop with our fast path at least 0.9x the
bare fused loop (the torch-default column separates the loop's cost from the optimizer's).

With no CIFAR-10 files (`--data-dir`), the data are generated CIFAR-shaped images: a random
prototype per class plus unit noise, so accuracy rising above 10 % shows the loops train.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import replace

import torch
import torch.nn.functional as F

from optbench.data import Dataset, load
from optbench.errors import OptbenchError
from optbench.models import build_model
from optbench.runners.training import TrainSpec, train
from optbench.tasks import get_task

from . import failure

OPTIMIZERS = ("sgd:lr=0.05,momentum=0.9,nesterov=true,weight_decay=5e-4", "adamw:lr=2e-3,weight_decay=5e-4")
PRECISIONS = {
    "fp32": {"bf16": False, "channels_last": False},
    "bf16 + channels_last": {"bf16": True, "channels_last": True},
}
TARGET = 0.9
FULL = {"model": "resnet20", "train": 30720, "val": 2048, "batch_size": 512, "epochs": 3, "rounds": 2}
TINY = {"model": "resnet", "train": 32, "val": 16, "batch_size": 16, "epochs": 2, "rounds": 1}


def run(settings, report, budget) -> None:
    size = TINY if settings.tiny else FULL
    dataset, source = cifar_shaped(settings.data_dir, size["train"], size["val"])
    report.write(
        f"{size['model']}, batch {size['batch_size']}, {len(dataset.train[1])} training images "
        f"({source}), {size['epochs']} epochs per run, fastest epoch after the first, "
        f"{size['rounds']} round(s); samples/s.\n"
    )
    row = report.table(
        [
            "optimizer",
            "precision",
            "bare loop, torch fused",
            "optbench, ours fast",
            "ours fast / bare",
            "optbench, torch default",
            "torch default / bare",
            "val accuracy (optbench, ours fast)",
            f"ours fast >= {TARGET}x",
            "parameters contiguous",
        ]
    )
    skipped, last = [], 0.0
    for text in OPTIMIZERS[:1] if settings.tiny else OPTIMIZERS:
        for precision, flags in PRECISIONS.items():
            if not budget.fits(last):
                skipped.append(f"{text} {precision}")
                continue
            started = time.monotonic()
            spec = TrainSpec(
                optimizer=text,
                task="cifar10",
                model=size["model"],
                epochs=size["epochs"],
                batch_size=size["batch_size"],
                device=settings.device,
                fast=True,
                **flags,
            )
            try:
                row([text, precision, *compare_loops(spec, dataset, size["rounds"])])
            except Exception as error:  # noqa: BLE001 - one configuration's failure is its row
                row([text, precision, failure(error), "-", "-", "-", "-", "-", "-", "-"])
            last = time.monotonic() - started
    if skipped:
        report.write(f"\nnot run, time box spent: {', '.join(skipped)}")


def compare_loops(spec: TrainSpec, dataset: Dataset, rounds: int) -> list:
    """[bare, ours fast, ratio, torch default, ratio, val accuracy, verdict, contiguous]: best samples/s
    over rounds, and whether the fast path can flatten the parameters."""
    best = {"bare": 0.0, "fast": 0.0, "torch": 0.0}
    accuracy = None
    for _ in range(rounds):
        best["bare"] = max(best["bare"], max(bare_loop(spec, dataset)[1:]))
        result = train(spec, dataset)
        best["fast"] = max(best["fast"], result.epochs["samples_per_s"].iloc[1:].max())
        accuracy = result.summary["final_val_accuracy"].iloc[0]
        torch_side = train(replace(spec, optimizer="torch:" + spec.optimizer.text, fast=False), dataset)
        best["torch"] = max(best["torch"], torch_side.epochs["samples_per_s"].iloc[1:].max())
    ratios = [best["fast"] / best["bare"], best["torch"] / best["bare"]]
    verdict = "met" if ratios[0] >= TARGET else "**missed**"
    return [
        round(best["bare"]),
        round(best["fast"]),
        ratios[0],
        round(best["torch"]),
        ratios[1],
        accuracy,
        verdict,
        contiguous_parameters(spec, dataset),
    ]


def contiguous_parameters(spec: TrainSpec, dataset: Dataset) -> str:
    """'yes', or how many parameters are not contiguous: channels_last makes 4-d weights so, and the
    fast path steps a group with such a parameter on the readable per-parameter path."""
    model = build_model(spec.model, dataset.input_shape, dataset.num_classes)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    strided = sum(not p.is_contiguous() for p in model.parameters())
    return "yes" if not strided else f"no ({strided} of {len(list(model.parameters()))})"


def cifar_shaped(data_dir: str | None, n_train: int, n_val: int, seed: int = 0) -> tuple[Dataset, str]:
    """CIFAR-10 from `data_dir` when given and readable, else generated [N, 3, 32, 32] images."""
    if data_dir:
        try:
            return load("cifar10", data_dir), f"CIFAR-10 from {data_dir}"
        except OptbenchError as error:
            source = f"generated: {error}"
    else:
        source = "generated: no --data-dir"
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(10, 3, 32, 32, generator=generator)

    def split(n):
        labels = torch.randint(0, 10, (n,), generator=generator)
        return prototypes[labels] * 0.5 + torch.randn(n, 3, 32, 32, generator=generator), labels

    return Dataset("cifar10-shaped", split(n_train), split(n_val), None, 10), source


def bare_loop(spec: TrainSpec, dataset: Dataset) -> list[float]:
    """Samples per second of each epoch of the hand-written loop with torch's fused optimizer."""
    device = torch.device(spec.device)
    optimizer_spec = spec.optimizer
    torch.manual_seed(spec.seed)
    memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
    model = build_model(spec.model, dataset.input_shape, dataset.num_classes).to(device)
    model = model.to(memory_format=memory_format)
    hparams = optimizer_spec.resolved(get_task("digits").default_hparams(optimizer_spec))
    optimizer = optimizer_spec.algorithm.theirs(model.parameters(), **hparams, fused=True)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if spec.bf16 else nullcontext
    x, y = (t.to(device) for t in dataset.train)
    generator = torch.Generator().manual_seed(spec.seed)
    steps = len(y) // spec.batch_size
    throughput = []
    for _ in range(spec.epochs):
        model.train()
        _synchronize(device)
        start = time.perf_counter()
        order = torch.randperm(len(y), generator=generator).to(device)
        for i in range(steps):
            batch = order[i * spec.batch_size : (i + 1) * spec.batch_size]
            inputs = x[batch].contiguous(memory_format=memory_format)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                logits = model(inputs)
            F.cross_entropy(logits.float(), y[batch]).backward()
            optimizer.step()
        _synchronize(device)
        throughput.append(steps * spec.batch_size / (time.perf_counter() - start))
    return throughput


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
