"""Why the fast path does not use torch.compile: compile our readable Adam update and time it.

    python benchmarks/compiled_update.py            # ResNet-18's 11.7 M parameters as one buffer

Compiles `Adam.update` (the readable code, unchanged) with torch.compile(dynamic=True) on one flat
buffer, and reports the first call (compilation; a second run of this script hits inductor's cache),
the cost of a learning-rate change (a guard check or a recompile), and the steady-state step,
round-robin against the same update run eagerly on the whole buffer, on 2^20-element slices (the
fast path), and torch's fused Adam on the same buffer.
"""

from __future__ import annotations

import time

import torch

from optbench.optimizers import Adam

from step_cost import resnet18_shapes, time_calls, time_once


def main():
    numel = sum(int(torch.tensor(s).prod()) for s in resnet18_shapes())
    generator = torch.Generator().manual_seed(0)
    theta, g = torch.randn(numel, generator=generator), torch.randn(numel, generator=generator) * 1e-2
    hparams = dict(lr=0.05, betas=(0.8, 0.95))
    optimizer = Adam([torch.zeros(1)], **hparams)
    group = optimizer.param_groups[0]
    states = {label: optimizer.init_state(theta, group) for label in ("eager", "sliced", "compiled")}
    compiled = torch.compile(Adam.update, dynamic=True)

    first = time_once(lambda: compiled(optimizer, theta, g, states["compiled"], group), "cpu")
    group["lr"] = 0.04
    lr_change = time_once(lambda: compiled(optimizer, theta, g, states["compiled"], group), "cpu")

    def sliced():
        chunk = 1 << 20
        for start in range(0, numel, chunk):
            state = {k: v[start:start + chunk] if v.dim() else v.clone() for k, v in states["sliced"].items()}
            optimizer.update(theta[start:start + chunk], g[start:start + chunk], state, group)
        states["sliced"]["step"] += 1

    p = theta.clone().requires_grad_()
    p.grad = g.clone()
    fused = torch.optim.Adam([p], **hparams, fused=True)
    samples = time_calls({
        "readable update, eager, whole buffer": lambda: optimizer.update(theta, g, states["eager"], group),
        "readable update, eager, 2^20-element slices (fast path)": sliced,
        "readable update, torch.compile": lambda: compiled(optimizer, theta, g, states["compiled"], group),
        "torch fused Adam, same buffer": fused.step,
    }, "cpu", 20)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {numel / 1e6:.2f} M parameters")
    print(f"first compiled call (compilation): {first:.1f} s; after an lr change: {lr_change:.2f} s")
    for label, seconds in samples.items():
        print(f"{label}: {min(seconds) * 1e3:.2f} ms")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.0f} s")
