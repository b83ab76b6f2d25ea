"""`optbench verify [NAMES...]`: the equivalence certificate, run on the user's machine."""

from __future__ import annotations

import json
import sys

import rich_click as click
from rich.table import Table

from ..errors import OptbenchError
from ..optimizers.registry import ALGORITHMS, get, is_external
from .common import console, console_err, print_table, progress_bar


def _verdict(ok: bool) -> str:
    return "[green]equivalent[/]" if ok else "[bold red]DIFFERS[/]"


@click.command("verify")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the certificate as JSON for machines.")
@click.option(
    "--discrepancies",
    is_flag=True,
    help="Also list where torch's documented pseudocode and its code disagree.",
)
@click.option(
    "--compiled",
    is_flag=True,
    help="Also certify the compiled fast path (torch.compile), every combination in float64 "
    "and float32, and print its bound against the eager slices (compiles: minutes).",
)
@click.option(
    "--against",
    default=None,
    metavar="REFERENCE",
    help="Certify the one class named (module:Class, file.py:Class, zoo:name or an optbench "
    "algorithm) against this reference class, over their shared boolean flags and "
    "weight_decay.",
)
def command(names, as_json, discrepancies, compiled, against):
    """Prove ours == torch.optim for every flag combination of each algorithm (all by default).

    Each combination runs 12 steps in float64 with two param groups, an lr scheduler and a
    state_dict round trip; plus a float32 run, a batched tensor-hyperparameter check and, for
    the element-wise algorithms, the same certificate for the fast path (`fast(Adam)`).
    Exit status 1 if any algorithm disagrees. Without names, algorithms whose reference package is
    not installed are skipped with a note (`pip install "optbench[zoo]"`).
    """
    if against is not None:
        _verify_against(names, against, as_json)
        return
    algorithms = [get(name) for name in names] or _installed(ALGORITHMS.values())
    import torch

    from .. import certificate

    rows = []
    with progress_bar(transient=True) as progress:
        task = progress.add_task(
            "certifying", total=sum(certificate.certificate_size(a, compiled) for a in algorithms), status=""
        )
        for algorithm in algorithms:
            progress.update(task, status=algorithm.name)
            rows.append(certificate.certificate(algorithm, lambda _check: progress.advance(task), compiled))
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


def _installed(algorithms) -> list:
    """The algorithms whose reference class imports; a note names those skipped."""
    kept, skipped = [], []
    for algorithm in algorithms:
        try:
            reference = algorithm.theirs
        except OptbenchError:
            reference = None
        (kept if reference is not None else skipped).append(algorithm)
    if skipped:
        missing = sorted({a.distribution for a in skipped})
        console_err.print(
            f"note: skipped {', '.join(a.name for a in skipped)}: their reference packages "
            f'({", ".join(missing)}) are not installed; pip install "optbench[zoo]"'
        )
    return kept


def _class_of(text: str) -> type:
    from ..optimizers.external import external_algorithm

    return external_algorithm(text).cls if is_external(text) else get(text).ours


def _verify_against(names, against: str, as_json: bool) -> None:
    """`verify A --against B`: the certificate of class A against class B; exit status 1 if they differ."""
    from .. import verify_classes

    if len(names) != 1:
        raise OptbenchError(f"--against certifies one class, got {len(names)}: {' '.join(names) or 'none'}")
    ours, reference = _class_of(names[0]), _class_of(against)
    flags = verify_classes.introspect_flags(ours, reference)
    with progress_bar(transient=True) as progress:
        total = len(verify_classes.flag_combinations(flags))
        task = progress.add_task("certifying", total=total, status=names[0])
        checks = verify_classes.certify_classes(
            ours,
            reference,
            flags,
            name=f"{names[0]} vs {against}",
            progress=lambda _check: progress.advance(task),
        )
    if not checks:
        raise OptbenchError(f"'{against}' refused every flag combination at its defaults; nothing to compare")
    failed = [c for c in checks if not c.passed]
    ok = not failed
    worst = max(c.deviation for c in checks)
    if as_json:
        failures = [{"flags": c.flags, "deviation": c.deviation, "error": c.error} for c in failed]
        print(
            json.dumps(
                {
                    "class": names[0],
                    "reference": against,
                    "flags": flags,
                    "combinations": len(checks),
                    "worst_deviation_float64": worst,
                    "tolerance_float64": checks[0].tolerance,
                    "failed_combinations": failures,
                    "equivalent": ok,
                },
                indent=2,
                default=str,
            )
        )
    else:
        console.print(
            f"{names[0]} vs {against}: {len(checks) - len(failed)}/{len(checks)} combinations of "
            f"{', '.join(flags) or 'the defaults'} agree in float64; worst relative deviation "
            f"{_fmt(worst)} (tolerance {checks[0].tolerance:.0e}): {_verdict(ok)}"
        )
        for check in failed[:3]:
            console.print(f"[red]{check.flags}: {check.error or _fmt(check.deviation)}[/]")
    if not ok:
        console_err.print(f"[bold red]{names[0]} differs from {against}[/]")
        sys.exit(1)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1e}"


def _print_table(rows):
    import torch

    from .. import verify

    table = Table(
        title=f"ours vs torch.optim {torch.__version__} (relative deviation, worst over steps)",
        title_justify="left",
    )
    for column, justify in [
        ("algorithm", "left"),
        ("combinations", "right"),
        ("float64", "right"),
        ("float32", "right"),
        ("batched", "right"),
        ("fast path", "right"),
        ("verdict", "left"),
    ]:
        table.add_column(column, justify=justify)
    for row in rows:
        combos = f"{row['combinations'] - len(row['failed_combinations'])}/{row['combinations']}"
        table.add_row(
            row["algorithm"],
            combos,
            _fmt(row["worst_deviation_float64"]),
            _fmt(row["deviation_float32"]) if row["float32_error"] is None else "error",
            _fmt(row["batched_deviation"]) if row["batched_error"] is None else "error",
            _fmt(row["fast_path_worst_deviation"]) if not row["fast_path_failures"] else "DIFFERS",
            _verdict(row["equivalent"]),
        )
    print_table(table)
    console.print(
        f"tolerances: float64 {verify.TOLERANCE[torch.float64]:.0e}, float32 "
        f"{verify.TOLERANCE[torch.float32]:.0e}; batched = tensor hyperparameters "
        "[3,1] on a [3,2] parameter vs 3 separate torch.optim runs; fast path = fast(Cls) "
        "vs torch.optim, every combination, float64 and float32 ('-': not element-wise)."
    )
    for row in rows:
        if row["compiled_vs_eager_bound"] is not None:
            console.print(
                f"{row['algorithm']}: compiled fast path vs its eager slices, float64 and float32: "
                f"{_fmt(row['compiled_vs_eager_bound'])} (compiled is in the fast path column)"
            )
    for row in rows:
        for failure in (row["failed_combinations"] + row["fast_path_failures"])[:3]:
            console.print(
                f"[red]{row['algorithm']} {failure['flags']}: "
                f"{failure['error'] or _fmt(failure['deviation'])}[/]"
            )


def _print_discrepancies(algorithms):
    from .. import certificate

    table = Table(
        title="where torch's documented pseudocode and its code disagree "
        "(ours follows the code; both lines are in our docstrings)",
        title_justify="left",
    )
    table.add_column("algorithm")
    table.add_column("discrepancy")
    for algorithm in algorithms:
        for text in certificate.doc_discrepancies(algorithm):
            prefix = f"{algorithm.class_name}: "
            table.add_row(algorithm.name, text[len(prefix) :] if text.startswith(prefix) else text)
    if table.row_count:
        print_table(table)
    else:
        console.print("no documented-pseudocode vs code discrepancies recorded")
