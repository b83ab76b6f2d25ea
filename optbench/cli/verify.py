"""`optbench verify [NAMES...]`: the equivalence certificate, run on the user's machine."""

from __future__ import annotations

import json
import sys

import rich_click as click
import torch
from rich.table import Table

from .. import verify as certificate
from ..optimizers.registry import ALGORITHMS, get
from .common import console, console_err, progress_bar


def _verdict(ok: bool) -> str:
    return "[green]equivalent[/]" if ok else "[bold red]DIFFERS[/]"


@click.command("verify")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the certificate as JSON for machines.")
@click.option("--discrepancies", is_flag=True,
              help="Also list where torch's documented pseudocode and its code disagree.")
@click.option("--compiled", is_flag=True,
              help="Also certify the compiled fast path (torch.compile), every combination in float64 "
                   "and float32, and print its bound against the eager slices (compiles: minutes).")
def command(names, as_json, discrepancies, compiled):
    """Prove ours == torch.optim for every flag combination of each algorithm (all by default).

    Each combination runs 12 steps in float64 with two param groups, an lr scheduler and a
    state_dict round trip; plus a float32 run, a batched tensor-hyperparameter check and, for
    the element-wise algorithms, the same certificate for the fast path (`fast(Adam)`).
    Exit status 1 if any algorithm disagrees.
    """
    from ..optimizers.fast_path import COMPILED_ALGORITHMS, FAST_ALGORITHMS

    algorithms = [get(name) for name in names] or list(ALGORITHMS.values())
    rows = []
    with progress_bar(transient=True) as progress:
        # per algorithm: its combinations + float32 + batched; the fast path again with one readable check
        total = sum((len(a.combinations()) + 2) * (2 if a.name in FAST_ALGORITHMS else 1)
                    + (2 * len(a.combinations()) + 2 if compiled and a.name in COMPILED_ALGORITHMS else 0)
                    for a in algorithms)
        task = progress.add_task("certifying", total=total, status="")
        for algorithm in algorithms:
            progress.update(task, status=algorithm.name)
            advance = lambda _check: progress.advance(task)  # noqa: E731
            *checks, float32 = certificate.certify([algorithm.name], (torch.float64, torch.float32), advance)
            batched = certificate.batched_equals_separate(algorithm)
            progress.advance(task)
            fast = certificate.certify_fast([algorithm.name], progress=advance) \
                if algorithm.name in FAST_ALGORITHMS else []
            if compiled and algorithm.name in COMPILED_ALGORITHMS:
                fast += certificate.certify_fast([algorithm.name], progress=advance, compiled=True)
            rows.append(_summarize(algorithm, checks, float32, batched, fast))
    ok = all(row["equivalent"] for row in rows)
    if as_json:
        print(json.dumps({"torch": torch.__version__, "equivalent": ok, "algorithms": rows}, indent=2))
    else:
        _print_table(rows)
        if discrepancies:
            _print_discrepancies(algorithms)
    if not ok:
        console_err.print("[bold red]some algorithms differ from torch.optim[/]")
        sys.exit(1)


def _summarize(algorithm, checks, float32, batched, fast) -> dict:
    failures = [c for c in checks if not c.passed]
    fast_failures = [c for c in fast if not c.passed]
    batched_applies = bool(algorithm.tensor_hparams)
    return {
        "algorithm": algorithm.name,
        "class": algorithm.class_name,
        "combinations": len(checks),
        "failed_combinations": [{"flags": c.flags, "deviation": c.deviation, "error": c.error}
                                for c in failures],
        "worst_deviation_float64": max(c.deviation for c in checks),
        "tolerance_float64": checks[0].tolerance,
        "deviation_float32": float32.deviation if float32.error is None else None,
        "float32_error": float32.error,
        "tolerance_float32": float32.tolerance,
        "batched_tensor_hparams": list(algorithm.tensor_hparams),
        "batched_deviation": batched.deviation if batched_applies else None,
        "batched_error": batched.error if batched_applies else None,
        "fast_path_checks": len(fast),
        "fast_path_worst_deviation": max((c.deviation for c in fast), default=None),
        "compiled_vs_eager_bound": max((c.deviation for c in fast if c.flags.get("reference") == "eager slices"),
                                       default=None),
        "fast_path_failures": [{"flags": c.flags, "dtype": c.dtype, "deviation": c.deviation,
                                "error": c.error} for c in fast_failures],
        "equivalent": not failures and not fast_failures and float32.passed
                      and (batched.passed or not batched_applies),
    }


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1e}"


def _print_table(rows):
    table = Table(title=f"ours vs torch.optim {torch.__version__} (relative deviation, worst over steps)",
                  title_justify="left")
    for column, justify in [("algorithm", "left"), ("combinations", "right"), ("float64", "right"),
                            ("float32", "right"), ("batched", "right"), ("fast path", "right"),
                            ("verdict", "left")]:
        table.add_column(column, justify=justify)
    for row in rows:
        combos = f"{row['combinations'] - len(row['failed_combinations'])}/{row['combinations']}"
        table.add_row(row["algorithm"], combos, _fmt(row["worst_deviation_float64"]),
                      _fmt(row["deviation_float32"]) if row["float32_error"] is None else "error",
                      _fmt(row["batched_deviation"]) if row["batched_error"] is None else "error",
                      _fmt(row["fast_path_worst_deviation"]) if not row["fast_path_failures"] else "DIFFERS",
                      _verdict(row["equivalent"]))
    console.print(table)
    console.print(f"tolerances: float64 {certificate.TOLERANCE[torch.float64]:.0e}, float32 "
                  f"{certificate.TOLERANCE[torch.float32]:.0e}; batched = tensor hyperparameters "
                  "[3,1] on a [3,2] parameter vs 3 separate torch.optim runs; fast path = fast(Cls) "
                  "vs torch.optim, every combination, float64 and float32 ('-': not element-wise).")
    for row in rows:
        if row["compiled_vs_eager_bound"] is not None:
            console.print(f"{row['algorithm']}: compiled fast path vs its eager slices, float64 and float32: "
                          f"{_fmt(row['compiled_vs_eager_bound'])} (compiled is in the fast path column)")
    for row in rows:
        for failure in (row["failed_combinations"] + row["fast_path_failures"])[:3]:
            console.print(f"[red]{row['algorithm']} {failure['flags']}: "
                          f"{failure['error'] or _fmt(failure['deviation'])}[/]")


def _print_discrepancies(algorithms):
    table = Table(title="where torch's documented pseudocode and its code disagree "
                        "(ours follows the code; both lines are in our docstrings)", title_justify="left")
    table.add_column("algorithm")
    table.add_column("discrepancy")
    for algorithm in algorithms:
        for text in certificate.doc_discrepancies(algorithm):
            prefix = f"{algorithm.class_name}: "
            table.add_row(algorithm.name, text[len(prefix):] if text.startswith(prefix) else text)
    console.print(table if table.row_count else "no documented-pseudocode vs code discrepancies recorded")
