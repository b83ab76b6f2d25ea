"""The verdict of `optbench verify`: every check for one algorithm, and whether it is equivalent.

The checks themselves are `optbench.verify`'s: every flag combination in float64, a float32 run, tensor
hyperparameters batched as [trials, 1] against separate runs, and the fast path's own certificate.
"""

from __future__ import annotations

import importlib

import torch

from .optimizers.fast_path import FAST_ALGORITHMS
from .optimizers.registry import Algorithm
from .verify import batched_equals_separate, certify, certify_fast


def doc_discrepancies(algorithm: Algorithm) -> list[str]:
    """Where torch's documented pseudocode and its code disagree (listed in our module)."""
    module = importlib.import_module(f"optbench.optimizers.{algorithm.module}")
    return list(getattr(module, "DOC_DISCREPANCIES", []))


def certificate_size(algorithm: Algorithm, compiled: bool = False) -> int:
    """How many checks `certificate` runs: the combinations, float32 and batched; then the fast path's
    combinations, its float32 and its readable-path check where it has one; then, with `compiled`,
    the compiled path's combinations in both dtypes and its two checks against the eager slices."""
    size = len(algorithm.combinations()) + 2
    if algorithm.name not in FAST_ALGORITHMS:
        return size
    return 2 * size + (2 * len(algorithm.combinations()) + 2 if compiled else 0)


def certificate(algorithm: Algorithm, progress=None, compiled: bool = False) -> dict:
    """Every check for one algorithm, and the verdict (`equivalent`).

    Equivalent means: every flag combination agrees with torch.optim in float64, the float32 run
    agrees within its tolerance, tensor hyperparameters batched as [trials, 1] equal separate runs
    (for algorithms that take any), and the fast path, where it exists, passes its own certificate
    (with `compiled`, the compiled fast path too; `compiled_vs_eager_bound` is its worst deviation
    from the eager slices). progress: called with each finished `Check`. Deviations are relative
    (`relative_deviation`).
    """
    *checks, float32 = certify([algorithm.name], (torch.float64, torch.float32), progress)
    batched = batched_equals_separate(algorithm)
    if progress:
        progress(batched)
    fast_checks = []
    if algorithm.name in FAST_ALGORITHMS:
        fast_checks = certify_fast([algorithm.name], progress=progress)
        if compiled:
            fast_checks += certify_fast([algorithm.name], progress=progress, compiled=True)
    failures = [c for c in checks if not c.passed]
    fast_failures = [c for c in fast_checks if not c.passed]
    batched_applies = bool(algorithm.tensor_hparams)
    return {
        "algorithm": algorithm.name,
        "class": algorithm.class_name,
        "combinations": len(checks),
        "failed_combinations": [
            {"flags": c.flags, "deviation": c.deviation, "error": c.error} for c in failures
        ],
        "worst_deviation_float64": max(c.deviation for c in checks),
        "tolerance_float64": checks[0].tolerance,
        "deviation_float32": float32.deviation if float32.error is None else None,
        "float32_error": float32.error,
        "tolerance_float32": float32.tolerance,
        "batched_tensor_hparams": list(algorithm.tensor_hparams),
        "batched_deviation": batched.deviation if batched_applies else None,
        "batched_error": batched.error if batched_applies else None,
        "fast_path_checks": len(fast_checks),
        "fast_path_worst_deviation": max((c.deviation for c in fast_checks), default=None),
        "compiled_vs_eager_bound": max(
            (c.deviation for c in fast_checks if c.flags.get("reference") == "eager slices"), default=None
        ),
        "fast_path_failures": [
            {"flags": c.flags, "dtype": c.dtype, "deviation": c.deviation, "error": c.error}
            for c in fast_failures
        ],
        "equivalent": not failures
        and not fast_failures
        and float32.passed
        and (batched.passed or not batched_applies),
    }
