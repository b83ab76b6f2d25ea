"""Time one `step()` of each algorithm: optbench's readable path against torch.optim, in one process.

    python benchmarks/step_cost.py                    # LeNet-5 and ResNet-18 parameter shapes
    python benchmarks/step_cost.py --shapes resnet18 --algorithms adam,sgd --repeats 30 --runs 3

For every algorithm: ours (the readable path), ours on the fast path as `fast(cls)` gives it by
default ("fast": compiled for large models where a compiler exists, see its "path" column), on
its eager slices (`fast(cls, compiled=False)`) and compiled (`fast(cls, compiled=True)`), torch's
for-loop (foreach=False), torch foreach and torch fused where torch has them on this device; and
the memory-bandwidth floor = bytes the step must read and write (parameter, gradient, each state
tensor the size of the parameter) / measured copy bandwidth.

The variants are timed round-robin (one step of each in turn, `--repeats` rounds) and each cell is
the fastest round: on a shared machine the minimum is the least disturbed estimate of the cost,
and round-robin keeps slow phases of the machine from favouring one column. Each call is timed on
two clocks, wall time and this process's CPU time (`time.process_time`: every thread of this
process, none of the other jobs'), and a table is printed for each: on a loaded machine wall times
include the time other jobs held the cores, CPU times do not (they still pay for the memory
bandwidth and caches the other jobs share).
Prints a markdown table of milliseconds and the ratios ours / torch for-loop (target <= 1.0),
fast / floor (target <= 1.3), fast / foreach (LeNet target <= 0.5) and fast / fused (target
<= 1.1); "fast 1st" is the first step of the fast path, which gathers the parameters and state
into contiguous buffers and, on the compiled path, compiles (or loads inductor's on-disk cache).
With --runs N the whole measurement is repeated N times in the process and each cell is the median
of the runs, each ratio the median with the runs' range.

--fresh-grads times the step as a training loop meets it after `zero_grad()` (set_to_none=True,
torch's default) and `backward()`: before every step (untimed) each parameter gets a gradient
tensor of its own, not the one the previous step left, so the fast path copies every gradient into
its buffer within the step, where torch's implementations read the new tensors where they are.
"""

from __future__ import annotations

import argparse
import inspect
import time
from datetime import date

import torch

from optbench.errors import OptbenchError
from optbench.optimizers import FAST_ALGORITHMS, fast
from optbench.optimizers.registry import ALGORITHMS


def lenet5_shapes():
    return [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)]


def resnet18_shapes():
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    channels_in = 64
    for channels, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            shapes += [
                (channels, channels_in, 3, 3),
                (channels,),
                (channels,),
                (channels, channels, 3, 3),
                (channels,),
                (channels,),
            ]
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


# The clocks every call is timed on: wall time, and the CPU time of this process (all its threads).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def copy_bandwidth(numel, device, repeats=20, clock="wall") -> float:
    """Bytes per second of the fastest plain streaming kernel: dst.copy_(src) (read 1, write 1)
    or torch.add(a, b, out=c) (read 2, write 1), whichever moves more bytes per second here."""
    a, b = torch.randn(numel, device=device), torch.randn(numel, device=device)
    c = torch.empty_like(a)
    samples = time_calls(
        {"copy": lambda: c.copy_(a), "add": lambda: torch.add(a, b, out=c)}, device, repeats, clock=clock
    )
    return max(2 * 4 * numel / min(samples["copy"]), 3 * 4 * numel / min(samples["add"]))


def clocked_once(function, device) -> dict:
    """Seconds one call took on each of CLOCKS."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = {clock: read() for clock, read in CLOCKS.items()}
    function()
    if device == "cuda":
        torch.cuda.synchronize()
    return {clock: read() - start[clock] for clock, read in CLOCKS.items()}


def time_once(function, device, clock="wall") -> float:
    return clocked_once(function, device)[clock]


def clocked_calls(functions: dict, device, repeats, before: dict | None = None) -> dict:
    """{label: [{clock: seconds}, ...]}: `repeats` rounds of every function in turn, after 3 warm-up
    rounds. before: {label: function} run untimed before each of that label's calls."""
    before = before or {}
    for _ in range(3):
        for label, function in functions.items():
            before.get(label, lambda: None)()
            function()
    samples = {label: [] for label in functions}
    for _ in range(repeats):
        for label, function in functions.items():
            before.get(label, lambda: None)()
            samples[label].append(clocked_once(function, device))
    return samples


def time_calls(functions: dict, device, repeats, clock="wall") -> dict:
    """Seconds of each call on `clock`, `repeats` rounds of every function in turn (clocked_calls)."""
    return {
        label: [s[clock] for s in samples]
        for label, samples in clocked_calls(functions, device, repeats).items()
    }


def variants(algorithm, skipped: list[str]):
    """(label, class, extra kwargs) for ours and the reference's implementations that exist for it.

    A reference that cannot be imported (an optional package, e.g. lion-pytorch, not installed)
    gives no reference columns; why goes to `skipped`."""
    yield "ours", algorithm.ours, {}
    if algorithm.name in FAST_ALGORITHMS:
        yield "fast", fast(algorithm.ours), {}
        yield "fast eager", fast(algorithm.ours, compiled=False), {}
        yield "fast compiled", fast(algorithm.ours, compiled=True), {}
    try:
        theirs = algorithm.theirs
    except OptbenchError as error:
        skipped.append(f"{algorithm.name}: no reference columns, {error}")
        return
    accepted = inspect.signature(theirs.__init__).parameters
    if "foreach" in accepted:
        yield "torch for-loop", theirs, {"foreach": False}
        yield "torch foreach", theirs, {"foreach": True}
    else:
        yield "torch for-loop", theirs, {}
    if "fused" in accepted:
        yield "torch fused", theirs, {"fused": True}


def state_tensors_per_param(optimizer, params) -> int:
    """How many tensors the size of the parameter the algorithm keeps (each read and written once)."""
    p = params[0]
    state = optimizer.state.get(p, {})
    return sum(1 for v in state.values() if isinstance(v, torch.Tensor) and v.numel() == p.numel())


def measure(
    algorithm, shapes, device, repeats, bandwidth, skipped: list[str] | None = None, fresh_grads: bool = False
):
    """One table row (ms per step of each variant on the wall clock, the floor), and the same row on
    the CPU clock as row["cpu"] where `bandwidth` is {clock: bytes per second}; what could not be
    measured goes to `skipped`. fresh_grads: each step meets gradient tensors of its own (see the
    module's docstring)."""
    skipped = [] if skipped is None else skipped
    bandwidths = bandwidth if isinstance(bandwidth, dict) else {"wall": bandwidth}
    if algorithm.name == "muon":
        shapes = as_matrices(shapes)
    hparams = dict(algorithm.test_hparams)
    row = {"algorithm": algorithm.name}
    steps, regrade, first_step = {}, {}, None
    floor_states = None
    for label, cls, extra in variants(algorithm, skipped):
        params = make_params(shapes, device, algorithm.sparse_grad)
        try:
            optimizer = cls(params, **hparams, **extra)
            if callable(getattr(optimizer, "train", None)):  # Schedule-Free steps in train mode
                optimizer.train()
            first = clocked_once(optimizer.step, device)
        except (RuntimeError, ValueError) as error:  # e.g. fused not available on this device
            row[label] = None
            skipped.append(f"{algorithm.name}: no '{label}' column, {str(error).splitlines()[0][:120]}")
            continue
        if label == "fast":
            first_step = first
            row["path"] = optimizer.fast_path
        steps[label] = optimizer.step
        if fresh_grads:
            regrade[label] = _regrader(params)
        if floor_states is None:
            floor_states = state_tensors_per_param(optimizer, params)
    samples = clocked_calls(steps, device, repeats, before=regrade)
    numel = sum(int(torch.tensor(s).prod()) for s in shapes)
    bytes_moved = numel * 4 * (3 + 2 * (floor_states or 0))  # read p, g, states; write p, states
    rows = {clock: row if clock == "wall" else dict(row) for clock in bandwidths}
    for clock, clock_row in rows.items():
        for label, calls in samples.items():
            clock_row[label] = min(call[clock] for call in calls) * 1e3
        clock_row["floor"] = bytes_moved / bandwidths[clock] * 1e3
        if first_step is not None:
            clock_row["fast 1st"] = first_step[clock] * 1e3
    if "cpu" in rows:
        row["cpu"] = rows["cpu"]
    return row


def _regrader(params):
    """Gives each parameter a gradient tensor of its own again, as backward does after zero_grad()."""
    fresh = [p.grad.clone() for p in params]

    def regrade():
        for p, g in zip(params, fresh, strict=True):
            p.grad = g

    return regrade


def ratio(row, a, b) -> str:
    return f"{row[a] / row[b]:.2f}" if row.get(a) and row.get(b) else "-"


def median(values):
    values = sorted(values)
    return (
        values[len(values) // 2]
        if len(values) % 2
        else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    )


def combine(rows: list[dict], columns, ratios) -> list[str]:
    """One table row from the runs: each cell the median over runs, each ratio median (min-max)."""
    cells = []
    for column in columns:
        values = [row[column] for row in rows if row.get(column) is not None]
        cells.append(f"{median(values):.3f}" if values else "-")
    for a, b in ratios:
        values = [row[a] / row[b] for row in rows if row.get(a) and row.get(b)]
        if not values:
            cells.append("-")
        elif len(values) == 1:
            cells.append(f"{values[0]:.2f}")
        else:
            cells.append(f"{median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
    return cells


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", default="lenet5,resnet18")
    parser.add_argument("--algorithms", default=",".join(a for a in ALGORITHMS if a != "lbfgs"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--fresh-grads",
        action="store_true",
        help="each step meets new gradient tensors, as in a loop with zero_grad() (see above)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (1 gives steadier ratios on a machine shared with other jobs)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    machine = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"# step cost, {date.today()}, torch {torch.__version__}, {machine}, "
        f"{args.repeats} round-robin rounds, fastest round, {args.runs} run(s)"
        f"{', fresh gradients each step' if args.fresh_grads else ''}\n"
    )
    for shape_name in args.shapes.split(","):
        shapes = SHAPES[shape_name]()
        numel = sum(int(torch.tensor(s).prod()) for s in shapes)
        bandwidth = {clock: copy_bandwidth(max(numel, 1 << 24), device, clock=clock) for clock in CLOCKS}
        print(
            f"## {shape_name}: {len(shapes)} tensors, {numel / 1e6:.2f} M parameters, "
            f"streaming bandwidth {bandwidth['wall'] / 1e9:.1f} GB/s (wall clock), "
            f"{bandwidth['cpu'] / 1e9:.1f} GB/s (CPU time)\n"
        )
        columns = [
            "floor",
            "ours",
            "fast",
            "fast eager",
            "fast compiled",
            "fast 1st",
            "torch for-loop",
            "torch foreach",
            "torch fused",
        ]
        ratios = [
            ("ours", "torch for-loop"),
            ("fast", "floor"),
            ("fast", "torch foreach"),
            ("fast", "torch fused"),
            ("fast eager", "floor"),
        ]
        header = (
            "| algorithm | path | "
            + " | ".join(f"{c} (ms)" for c in columns)
            + " | "
            + " | ".join(f"{a} / {b}" for a, b in ratios)
            + " |\n"
            + "|---" * (len(columns) + len(ratios) + 2)
            + "|"
        )
        print("Wall clock:\n\n" + header)
        skipped, cpu_lines = [], []
        for name in args.algorithms.split(","):
            rows = [
                measure(ALGORITHMS[name], shapes, device, args.repeats, bandwidth, skipped, args.fresh_grads)
                for _ in range(args.runs)
            ]
            path = rows[0].get("path", "-")
            print(f"| {name} | {path} | " + " | ".join(combine(rows, columns, ratios)) + " |", flush=True)
            cpu_rows = [row["cpu"] for row in rows]
            cpu_lines.append(f"| {name} | {path} | " + " | ".join(combine(cpu_rows, columns, ratios)) + " |")
        print("\nCPU time of this process:\n\n" + header)
        print("\n".join(cpu_lines))
        if skipped:
            print()
        for note in dict.fromkeys(skipped):  # once each, whatever --runs is
            print(f"- skipped: {note}")
        print()


if __name__ == "__main__":
    main()
