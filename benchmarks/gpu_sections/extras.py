"""Section 4: what else the tree has, on the device; each feature it lacks is listed with a note.

- CPU versus device: the runs behind `optbench compare --check-repro` (the surface runner), the
  same comparison on the CPU and on the device, and the first recorded step at which each
  optimizer's trajectories part (`optbench.runners.repro.compare_runs`). On the CPU (the dry run)
  it compares two CPU runs.
- Features this script does not drive yet are looked for by module name (a batched trainer; the
  language model has its own section); a found one is reported as not yet driven here, an absent one as absent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

import optbench
from optbench.models import MODELS
from optbench.objectives import get_surface
from optbench.runners.repro import compare_runs
from optbench.runners.surface import random_starts, run_surface
from optbench.specs import parse_optimizer

REPRO_OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adagrad")
REPRO_SURFACE = "himmelblau"  # non-quadratic, and no default setting diverges on it from random starts
NOT_YET_DRIVEN = {  # feature -> words its module or model name would contain
    "batched trainer (many training trials as one tensor program)": ("batched", "vmap"),
}


def run(settings, report, budget) -> None:
    report.write("### compare --check-repro: CPU against the device\n")
    trials, steps = (20, 20) if settings.tiny else (1000, 300)
    report.write(
        f"surface {REPRO_SURFACE}, {trials} random starts, {steps} steps, float64, seed 0; "
        f"{'CPU run 1 vs CPU run 2 (no device in a dry run)' if settings.device == 'cpu' else 'CPU vs ' + settings.device}.\n"
    )
    row = report.table(["optimizer", "first differing step", "difference there", "max difference", "steps"])
    for record in check_repro(settings.device, trials, steps).to_dict("records"):
        first = record["first_step"]
        same = pd.isna(first)
        row(
            [
                record["optimizer"],
                "identical" if same else int(first),
                None if same else record["difference_there"],
                record["max_difference"],
                record["steps"],
            ]
        )

    report.write("\n### Not driven by this script\n")
    for feature, words in NOT_YET_DRIVEN.items():
        found = find(words)
        report.write(
            f"- {feature}: "
            + (
                f"found ({', '.join(found)}) but not driven here yet; add it to "
                "benchmarks/gpu_sections/extras.py"
                if found
                else "absent from this tree, skipped"
            )
        )


def check_repro(device: str, trials: int, steps: int) -> pd.DataFrame:
    """compare_runs between the comparison on the CPU and the same comparison on `device`."""
    surface = get_surface(REPRO_SURFACE)
    starts = random_starts(surface, trials, seed=0)
    specs = [parse_optimizer(text) for text in REPRO_OPTIMIZERS]

    def trajectories(where):
        runs = []
        for spec in specs:
            torch.manual_seed(0)
            runs.append(run_surface(spec, surface, starts, steps, seed=0, device=where).trajectory)
        return pd.concat(runs, ignore_index=True)

    first = trajectories("cpu")
    columns = [c for c in first.columns if c in ("x", "y", "loss") or (c.startswith("x") and c[1:].isdigit())]
    return compare_runs(first, trajectories(device), f"cpu vs {device}", columns)


def find(words) -> list[str]:
    """Module paths of optbench (read from the files, none imported) and model names containing any of `words`."""
    package = Path(optbench.__file__).parent
    names = [
        str(path.relative_to(package.parent).with_suffix("")).replace("/", ".")
        for path in package.rglob("*.py")
    ]
    names += [f"model '{name}'" for name in MODELS]
    return [name for name in names if any(word in name.lower() for word in words)]
