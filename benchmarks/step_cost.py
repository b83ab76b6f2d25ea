"""Time one `step()` of each algorithm: optbench's readable path against torch.optim, in one process.

    python benchmarks/step_cost.py                    # LeNet-5 and ResNet-18 parameter shapes
    python benchmarks/step_cost.py --shapes resnet18 --algorithms adam,sgd --repeats 30

For every algorithm: ours, torch's for-loop (foreach=False), torch foreach and torch fused where
torch has them on this device; and the memory-bandwidth floor = bytes the step must read and
write (parameter, gradient, each state tensor the size of the parameter) / measured copy bandwidth.
Prints a markdown table of milliseconds and the ratio ours / torch for-loop (target <= 1.0).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import torch

from optbench.optimizers.registry import ALGORITHMS


def lenet5_shapes():
    return [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)]


def resnet18_shapes():
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    channels_in = 64
    for channels, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            shapes += [(channels, channels_in, 3, 3), (channels,), (channels,),
                       (channels, channels, 3, 3), (channels,), (channels,)]
            if block == 0 and (stride != 1 or channels_in != channels):
                shapes += [(channels, channels_in, 1, 1), (channels,), (channels,)]
            channels_in = channels
    return shapes + [(1000, 512), (1000,)]


SHAPES = {"lenet5": lenet5_shapes, "resnet18": resnet18_shapes}


def as_matrices(shapes):
    """Muon orthogonalises matrices: conv kernels flattened to [out, in*k*k], as is usual with it."""
    return [(s[0], int(torch.tensor(s[1:]).prod())) for s in shapes if len(s) >= 2]


def make_params(shapes, device, sparse):
    generator = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=generator).to(device).requires_grad_() for s in shapes]
    for p in params:
        grad = torch.randn(p.shape, generator=generator).to(device) * 1e-2
        p.grad = grad.to_sparse(sparse_dim=1) if sparse else grad
    return params


def copy_bandwidth(numel, device, repeats=20) -> float:
    """Bytes per second of dst.copy_(src): one read and one write of numel floats."""
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    seconds = time_call(lambda: dst.copy_(src), device, repeats)
    return 2 * 4 * numel / seconds


def time_call(function, device, repeats) -> float:
    for _ in range(3):
        function()
    samples = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def variants(algorithm):
    """(label, class, extra kwargs) for ours and torch's implementations that exist for it."""
    yield "ours", algorithm.ours, {}
    import inspect

    accepted = inspect.signature(algorithm.theirs.__init__).parameters
    if "foreach" in accepted:
        yield "torch for-loop", algorithm.theirs, {"foreach": False}
        yield "torch foreach", algorithm.theirs, {"foreach": True}
    else:
        yield "torch for-loop", algorithm.theirs, {}
    if "fused" in accepted:
        yield "torch fused", algorithm.theirs, {"fused": True}


def state_tensors_per_param(optimizer, params) -> int:
    """How many tensors the size of the parameter the algorithm keeps (each read and written once)."""
    p = params[0]
    state = optimizer.state.get(p, {})
    return sum(1 for v in state.values() if isinstance(v, torch.Tensor) and v.numel() == p.numel())


def measure(algorithm, shapes, device, repeats, bandwidth):
    if algorithm.name == "muon":
        shapes = as_matrices(shapes)
    hparams = dict(algorithm.test_hparams)
    row = {"algorithm": algorithm.name}
    floor_states = None
    for label, cls, extra in variants(algorithm):
        params = make_params(shapes, device, algorithm.sparse_grad)
        try:
            optimizer = cls(params, **hparams, **extra)
            optimizer.step()
        except (RuntimeError, ValueError) as error:  # e.g. fused not available on this device
            row[label] = None
            row[label + " note"] = str(error).splitlines()[0][:60]
            continue
        row[label] = time_call(optimizer.step, device, repeats) * 1e3
        if floor_states is None:
            floor_states = state_tensors_per_param(optimizer, params)
    numel = sum(int(torch.tensor(s).prod()) for s in shapes)
    bytes_moved = numel * 4 * (3 + 2 * (floor_states or 0))   # read p, g, states; write p, states
    row["floor"] = bytes_moved / bandwidth * 1e3
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="lenet5,resnet18")
    parser.add_argument("--algorithms", default=",".join(a for a in ALGORITHMS if a != "lbfgs"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = args.device
    machine = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# step cost, {date.today()}, torch {torch.__version__}, {machine}\n")
    for shape_name in args.shapes.split(","):
        shapes = SHAPES[shape_name]()
        numel = sum(int(torch.tensor(s).prod()) for s in shapes)
        bandwidth = copy_bandwidth(max(numel, 1 << 22), device)
        print(f"## {shape_name}: {len(shapes)} tensors, {numel / 1e6:.2f} M parameters, "
              f"copy bandwidth {bandwidth / 1e9:.1f} GB/s\n")
        columns = ["floor", "ours", "torch for-loop", "torch foreach", "torch fused"]
        print("| algorithm | " + " | ".join(f"{c} (ms)" for c in columns) + " | ours / for-loop |")
        print("|---" * (len(columns) + 2) + "|")
        for name in args.algorithms.split(","):
            row = measure(ALGORITHMS[name], shapes, device, args.repeats, bandwidth)
            cells = [f"{row[c]:.3f}" if row.get(c) is not None else "-" for c in columns]
            ratio = row["ours"] / row["torch for-loop"] if row.get("torch for-loop") else float("nan")
            print(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f} |", flush=True)
        print()


if __name__ == "__main__":
    main()
