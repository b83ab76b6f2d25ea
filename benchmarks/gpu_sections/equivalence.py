"""Section 1: ours equals torch.optim on the device, against each of torch's implementations there.

- An AMP step: autocast (float16 on CUDA, bfloat16 on the CPU) with a GradScaler, ours against
  torch's default and fused implementations, with one step whose gradient is inf (the scaler must
  skip it on both sides).
- The certificate (`optbench.verify.compare_with_torch`, float64 every flag combination, float32 the
  defaults) with the parameters on the device: our readable, fast and compiled paths against
  torch's default (foreach on CUDA), fused and capturable configurations. A configuration torch
  refuses on this device (fused Adagrad on CUDA, capturable on the CPU) is listed as refused.
- `tests/test_optim_db.py` (torch's optimizer database through ours), when the tree has it, run by
  pytest with OPTBENCH_TEST_DEVICE set to the device.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from optbench import verify
from optbench.optimizers import FAST_ALGORITHMS, fast
from optbench.optimizers.registry import TORCH_ALGORITHMS as ALGORITHMS

from . import failure

# name -> settings: a small lr, so that the parameters' last-bit differences between implementations
# stay below what flips a float16 rounding of the next forward pass
AMP_ALGORITHMS = {"adam": {"lr": 1e-3}, "adamw": {"lr": 1e-3}, "sgd": {"lr": 1e-3, "momentum": 0.9}}
AMP_STEPS = 5
AMP_INF_STEP = 2  # the step whose loss is multiplied by inf: the scaler skips it
AMP_TOLERANCE = 1e-4  # float32 master weights, same low-precision forward on both sides
OPTIM_DB_TEST = "tests/test_optim_db.py"
OPTIM_DB_SHARE = 0.4  # of the section's box, at most, for the optim_db test


def run(settings, report, budget) -> None:
    write_amp_steps(settings, report)
    write_certificate(settings, report, budget)
    report.write("\n### optim_db-driven test\n")
    report.write(optim_db(settings, budget))


def write_amp_steps(settings, report) -> None:
    device = settings.device
    report.write("### AMP step (autocast + GradScaler)\n")
    row = report.table(
        [
            "algorithm",
            "ours",
            "reference",
            "autocast dtype",
            "steps taken (ours, torch)",
            "max relative deviation",
            "tolerance",
            "passed",
        ]
    )
    for name, settings_for_amp in AMP_ALGORITHMS.items():
        algorithm = ALGORITHMS[name]
        for ours_label, ours in our_paths(algorithm, settings.compile)[:2]:
            for label, reference, refusal in references(algorithm, device)[:2]:
                if refusal:
                    row([name, ours_label, label, "-", "-", "-", "-", f"torch refuses: {refusal}"])
                    continue
                try:
                    result = amp_check(
                        ours, reference, {**algorithm.test_hparams, **settings_for_amp}, device
                    )
                except Exception as error:  # noqa: BLE001 - one item's failure is its row
                    result = ["-", "-", "-", "-", failure(error)]
                row([name, ours_label, label, *result])


def write_certificate(settings, report, budget) -> None:
    device = settings.device
    report.write("\n### Certificate on the device (optbench.verify.compare_with_torch)\n")
    report.write(
        "float64: every flag combination of the registry; float32: default flags. "
        f"Tolerances (relative, normwise): {verify.TOLERANCE[torch.float64]:g} and "
        f"{verify.TOLERANCE[torch.float32]:g}.\n"
    )
    report.write(
        "The compiled path is checked in float32 with default flags (each new shape or dtype compiles); "
        "'steps on path' counts the group steps the fast or compiled path took (0: it fell back).\n"
    )
    row = report.table(
        [
            "algorithm",
            "ours",
            "reference",
            "checks",
            "passed",
            "worst float64",
            "worst float32",
            "steps on path",
            "first failure",
        ]
    )
    skipped, items, last = [], [], 0.0
    for algorithm in ALGORITHMS.values():
        try:
            paths, configurations = our_paths(algorithm, settings.compile), references(algorithm, device)
        except Exception as error:  # noqa: BLE001 - e.g. a class this torch does not have
            row([algorithm.name, "-", "-", 0, "-", "-", "-", "-", failure(error)])
            continue
        items += [
            (algorithm, ours_label, ours, label, reference, refusal)
            for ours_label, ours in paths
            for label, reference, refusal in configurations
        ]
    # readable first, then fast, then compiled: the certificate of the readable path matters most
    items.sort(key=lambda item: ["readable", "fast", "compiled"].index(item[1]))
    for algorithm, ours_label, ours, label, reference, refusal in items:
        if refusal:
            row([algorithm.name, ours_label, label, 0, "-", "-", "-", "-", f"torch refuses: {refusal}"])
            continue
        if not budget.fits(last + optim_db_reserve(settings, budget)):
            skipped.append(f"{algorithm.name}/{ours_label}/{label}")
            continue
        started = time.monotonic()
        try:
            cells = certificate(algorithm, ours_label, ours, reference, device, settings.tiny)
        except Exception as error:  # noqa: BLE001 - one item's failure is its row
            cells = [0, "-", "-", "-", "-", failure(error)]
        row([algorithm.name, ours_label, label, *cells])
        last = time.monotonic() - started
    if skipped:
        report.write(f"\nnot run, time box spent: {', '.join(skipped)}")


def our_paths(algorithm, compiled: bool) -> list[tuple[str, type]]:
    """(label, class) for our readable path, the fast path and the compiled fast path it has."""
    paths = [("readable", algorithm.ours)]
    if algorithm.name in FAST_ALGORITHMS:
        paths.append(("fast", fast(algorithm.ours)))
        compiled_path = compiled_class(algorithm) if compiled else None
        if compiled_path is not None:
            paths.append(("compiled", compiled_path))
    return paths


def compiled_class(algorithm):
    """The compiled fast path, where `fast` offers one as an opt-in for this algorithm."""
    if "compiled" not in inspect.signature(fast).parameters:
        return None
    try:
        return fast(algorithm.ours, compiled=True)
    except TypeError:  # no compiled kernel for this algorithm
        return None


def references(algorithm, device) -> list[tuple[str, object, str | None]]:
    """(label, class or partial, refusal) for torch's default, fused and capturable configurations."""
    accepted = inspect.signature(algorithm.theirs.__init__).parameters
    found = [("torch", algorithm.theirs, None)]
    for flag in ("fused", "capturable"):
        if flag in accepted:
            reference = functools.partial(algorithm.theirs, **{flag: True})
            found.append((f"torch {flag}", reference, refusal(algorithm, reference, device)))
    return found


def refusal(algorithm, reference, device) -> str | None:
    """None if torch takes a step with this configuration on `device`, else its error's first line."""
    param = torch.ones(3, 2, device=device, requires_grad=True)
    param.grad = torch.full_like(param, 0.1)
    if algorithm.sparse_grad:
        param.grad = param.grad.to_sparse(sparse_dim=1)
    try:
        optimizer = reference([param], **algorithm.test_hparams)
        optimizer.step()
    except (RuntimeError, ValueError, TypeError, AssertionError) as error:
        return str(error).strip().splitlines()[0][:90]
    return None


def certificate(algorithm, ours_label, ours, reference, device, tiny: bool) -> list:
    """[checks, passed, worst float64, worst float32, steps on path, first failure] over the flag combinations."""
    if ours_label == "compiled":
        plan = [(torch.float32, [{}])]
    else:
        plan = [(torch.float64, [{}] if tiny else algorithm.combinations()), (torch.float32, [{}])]
    built = []

    class Recorded(ours):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    worst = {}
    checks, failures = [], []
    for dtype, combos in plan:
        for flags in combos:
            check = verify.compare_with_torch(
                algorithm, flags, dtype, ours_cls=Recorded, reference_cls=reference, device=device
            )
            checks.append(check)
            worst[dtype] = max(worst.get(dtype, 0.0), check.deviation)
            if not check.passed:
                failures.append(f"{flags} {check.dtype}: {check.error or f'{check.deviation:.2e}'}")
    passed = sum(check.passed for check in checks)
    counter = {"fast": "flat_group_steps", "compiled": "compiled_group_steps"}.get(ours_label)
    on_path = sum(getattr(optimizer, counter, 0) for optimizer in built) if counter else "-"
    return [
        len(checks),
        passed,
        worst.get(torch.float64),
        worst.get(torch.float32),
        on_path,
        failures[0][:120] if failures else "-",
    ]


def amp_check(ours, reference, hparams, device) -> list:
    """[dtype, steps taken, deviation, tolerance, passed]: AMP_STEPS steps of a small MLP, both sides."""
    device_type = torch.device(device).type
    low = torch.float16 if device_type == "cuda" else torch.bfloat16
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(AMP_STEPS, 64, 32, generator=generator).to(device)
    targets = torch.randint(0, 10, (AMP_STEPS, 64), generator=generator).to(device)
    sides = []
    for cls in (ours, reference):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).to(
            device
        )
        optimizer = cls(model.parameters(), **hparams)
        scaler = torch.amp.GradScaler(device_type, init_scale=2.0**10)
        for step in range(AMP_STEPS):
            optimizer.zero_grad()
            with torch.autocast(device_type, dtype=low):
                loss = F.cross_entropy(model(inputs[step]).float(), targets[step])
            if step == AMP_INF_STEP:
                loss = loss * float("inf")
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        sides.append((model, optimizer, scaler))
    (model_a, optimizer_a, scaler_a), (model_b, optimizer_b, scaler_b) = sides
    deviation = max(
        verify.relative_deviation(list(model_a.parameters()), list(model_b.parameters())),
        verify.relative_deviation(optimizer_a.state_dict()["state"], optimizer_b.state_dict()["state"]),
    )
    taken = [_steps_taken(optimizer) for optimizer in (optimizer_a, optimizer_b)]
    counted = taken[0] == taken[1] == AMP_STEPS - 1 or taken[0] == taken[1] == "-"
    passed = deviation <= AMP_TOLERANCE and counted and scaler_a.get_scale() == scaler_b.get_scale()
    return [
        str(low).replace("torch.", ""),
        f"{taken[0]}, {taken[1]}",
        deviation,
        AMP_TOLERANCE,
        "yes" if passed else "**no**",
    ]


def _steps_taken(optimizer) -> int | str:
    """The step counter in the optimizer's state; '-' where the algorithm keeps none (SGD): there the
    parameters alone show a step taken on the inf gradient (they would be NaN)."""
    steps = {float(state["step"]) for state in optimizer.state.values() if "step" in state}
    if not steps:
        return "-"
    return int(steps.pop()) if len(steps) == 1 else f"mixed {sorted(steps)}"


def optim_db_reserve(settings, budget) -> float:
    """Seconds of the box kept for the optim_db test while the certificate runs."""
    return OPTIM_DB_SHARE * budget.seconds if (settings.root / OPTIM_DB_TEST).exists() else 0.0


def optim_db(settings, budget) -> str:
    """Run tests/test_optim_db.py with pytest on the device; the summary and the output's tail."""
    path = settings.root / OPTIM_DB_TEST
    if not path.exists():
        return f"skipped: {OPTIM_DB_TEST} is not in this tree."
    limit = max(5.0, budget.left()) if math.isfinite(budget.left()) else None  # None: no time box
    environment = {
        **os.environ,
        "OPTBENCH_TEST_DEVICE": settings.device,
        "PYTHONPATH": os.pathsep.join([str(settings.root), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(path)]
    started = time.monotonic()
    try:
        answer = subprocess.run(
            command,
            cwd=settings.root,
            env=environment,
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        return (
            f"cut: not finished within {limit:.0f} s (OPTBENCH_TEST_DEVICE={settings.device}).\n\n```\n"
            + "\n".join(output.rstrip().splitlines()[-8:])
            + "\n```"
        )
    # pytest's last line: "12 passed, 3 skipped in 4.1s"; all skipped also exits 0, so it is quoted as is
    printed = answer.stdout.rstrip().splitlines()
    summary = printed[-1].strip("= ") if printed else "no output"
    tail = "\n".join((answer.stdout + answer.stderr).rstrip().splitlines()[-12:])
    return (
        f"`pytest {OPTIM_DB_TEST}` with OPTBENCH_TEST_DEVICE={settings.device}: exit status "
        f"{answer.returncode}, **{summary}** ({time.monotonic() - started:.1f} s)\n\n```\n{tail}\n```"
    )
