"""Section 2: what one `step()` costs at ResNet-18 and 10x ResNet-18 parameter shapes on the device.

Each row is `benchmarks/step_cost.py`'s `measure` (ours, fast, torch for-loop / foreach / fused,
round-robin, fastest round; the floor is the bytes the step must move over the device's measured
copy bandwidth). Where step_cost does not time the compiled fast path itself, it is timed here
after the row, alone: its first two steps (the readable first step, then compilation) and the
fastest of the same number of steady-state steps.
"""

from __future__ import annotations

import math
import time

from benchmarks import step_cost
from optbench.optimizers.registry import ALGORITHMS

from . import failure
from .equivalence import compiled_class

# Algorithms with a torch fused kernel first: they carry the targets.
ORDER = (
    "adam",
    "adamw",
    "sgd",
    "adagrad",
    "rmsprop",
    "nadam",
    "adamax",
    "radam",
    "adadelta",
    "asgd",
    "rprop",
    "adafactor",
    "muon",
    "sparseadam",
)
TEN_TIMES_ORDER = ("adam", "adamw", "sgd", "adagrad")  # 117 M parameters: only the targets' algorithms
TINY_ORDERS = (("adam", "sgd", "adafactor"), ("adam",))  # the dry run: each kind of row once
COLUMNS = ("floor", "ours", "fast", "compiled", "torch for-loop", "torch foreach", "torch fused")
RATIOS = (
    ("fast", "torch fused"),
    ("compiled", "torch fused"),
    ("fast", "floor"),
    ("compiled", "floor"),
    ("torch fused", "floor"),
    ("fast", "torch foreach"),
)


def shape_sets(tiny: bool) -> list[tuple[str, list]]:
    if tiny:
        lenet = step_cost.SHAPES["lenet5"]()
        return [("lenet5 (tiny stand-in for ResNet-18)", lenet), ("10x lenet5 (tiny stand-in)", lenet * 10)]
    resnet = step_cost.SHAPES["resnet18"]()
    return [("resnet18", resnet), ("10x resnet18", resnet * 10)]


def run(settings, report, budget) -> None:
    device = settings.device
    repeats = 3 if settings.tiny else 20
    for index, (label, shapes) in enumerate(shape_sets(settings.tiny)):
        numel = sum(math.prod(shape) for shape in shapes)
        bandwidth = step_cost.copy_bandwidth(max(numel, 1 << (16 if settings.tiny else 24)), device)
        report.write(
            f"\n### {label}: {len(shapes)} tensors, {numel / 1e6:.2f} M parameters, "
            f"copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write), {repeats} rounds\n"
        )
        row = report.table(
            ["algorithm", *(f"{c} (ms)" for c in COLUMNS), "compile (s)", *(f"{a} / {b}" for a, b in RATIOS)]
        )
        names = TINY_ORDERS[index] if settings.tiny else (ORDER, TEN_TIMES_ORDER)[index]
        skipped, last = [], 0.0
        for name in names:
            # the second shape set keeps a third of the box for itself
            reserve = budget.seconds / 3 if index == 0 else 0.0
            if not budget.fits(last + reserve):
                skipped.append(name)
                continue
            started = time.monotonic()
            try:
                result = measure(ALGORITHMS[name], shapes, device, repeats, bandwidth, settings.compile)
            except Exception as error:  # noqa: BLE001 - one algorithm's failure is its row
                row([name, failure(error), *[None] * (len(COLUMNS) + len(RATIOS))])
            else:
                row(
                    [
                        name,
                        *(result.get(c) for c in COLUMNS),
                        result.get("compile"),
                        *(_ratio(result, a, b) for a, b in RATIOS),
                    ]
                )
            last = time.monotonic() - started
        if skipped:
            report.write(f"\nnot run, time box spent: {', '.join(skipped)}")


def measure(algorithm, shapes, device, repeats, bandwidth, compiled: bool) -> dict:
    """step_cost's row, plus the compiled fast path's steady state (ms) and compile time (s)."""
    result = step_cost.measure(algorithm, shapes, device, repeats, bandwidth)
    cls = compiled_class(algorithm) if compiled and "compiled" not in result else None
    if cls is not None:
        params = step_cost.make_params(shapes, device, algorithm.sparse_grad)
        optimizer = cls(params, **algorithm.test_hparams)
        result["compile"] = step_cost.time_once(optimizer.step, device) + step_cost.time_once(
            optimizer.step, device
        )
        steady = min(step_cost.time_calls({"compiled": optimizer.step}, device, repeats)["compiled"]) * 1e3
        # a kernel that failed to compile falls back to the eager slices: not a compiled timing
        ran = getattr(optimizer, "compiled_group_steps", None)
        result["compiled"] = steady if ran is None or ran > 0 else "fell back to eager"
    return result


def _ratio(result: dict, a: str, b: str):
    numbers = [result.get(a), result.get(b)]
    return numbers[0] / numbers[1] if all(isinstance(x, float) and x > 0 for x in numbers) else None
