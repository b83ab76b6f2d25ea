"""`noise_floor`: stochastic linear regression against its exact optimum (`optbench compare --surface linreg`).

Each optimizer runs mini-batch SGD-style steps on 1,000 samples of y = X w + b + noise
(`runners.regression`), every seed as one batched tensor. Two tables:
- `curves`: f - f* per recorded step from θ = 0, at the optimizer's lr, one run per batch size;
- `floors`: where runs started at θ* itself settle (mean f - f* over the second half of the steps), over
  a grid of learning rates, next to the exact stationary value for plain SGD (`sgd_noise_floor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..budget import check_count
from ..errors import OptbenchError
from ..plots.fair import plot_noise_floor, plot_suboptimality
from ..results import read_metadata
from ..runners.regression import least_squares, make_linear_data, minibatch_runs, sgd_noise_floor
from ..specs import OptimizerSpec
from ..tasks import get_task
from ..values import axis_values, parse_range
from .inputs import as_specs, check_axis, check_seed
from .result import KEY, MEASURE, TEXT, Result, TableSchema, read_tables, require_spec, require_tables

DEFAULT_STEPS = 2000
DEFAULT_BATCH_SIZES = (1, 10, 100)
DEFAULT_FLOOR_LRS = tuple(parse_range("1e-3:0.3:8"))
# Where the exact second-moment recursion has no fixed point, f - f* grows without bound in expectation
# (heavy-tailed: a finite run may still look flat), so no measured value is a floor there.
UNSTABLE = "unstable (theory: no floor)"


@dataclass(repr=False)
class NoiseFloorStudy(Result):
    """The tables of one study; `meta` is what `save` records in meta.json (its "spec")."""

    kind = "noise_floor"
    curves: (
        pd.DataFrame
    )  # one row per (optimizer, batch_size, seed, recorded step): suboptimality, theory_floor
    floors: pd.DataFrame  # one row per (optimizer, batch_size, lr): measured (NaN unless settled), theory
    # (inf: unstable), diverged, outcome ("settled", "diverged at step N", UNSTABLE)
    meta: dict
    seed: int

    def settled(self) -> pd.DataFrame:
        """Per (optimizer, batch size) of `curves`: its lr, the mean f - f* over the second half (NaN unless
        the run settled), the exact SGD floor (NaN where it does not apply), their ratio and the outcome."""
        steps = self.meta["steps"]
        rows = []
        for (name, batch), run in self.curves.groupby(["optimizer", "batch_size"], sort=False):
            settled = float(run[run["step"] >= steps / 2]["suboptimality"].mean())
            floor = float(run["theory_floor"].iloc[0])
            diverged = bool(run["diverged"].any()) if "diverged" in run else False
            outcome = "diverged" if diverged else UNSTABLE if floor == math.inf else "settled"
            rows.append(
                {
                    "optimizer": name,
                    "lr": float(run["lr"].iloc[0]),
                    "batch_size": int(batch),
                    "settled": settled if outcome == "settled" else math.nan,
                    "theory_floor": floor,
                    "ratio": settled / floor
                    if outcome == "settled" and math.isfinite(floor) and floor > 0
                    else math.nan,
                    "outcome": outcome,
                }
            )
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"suboptimality": self.curves, "noise_floor": self.floors}

    @classmethod
    def load(cls, folder) -> NoiseFloorStudy:
        folder = Path(folder)
        meta = read_metadata(folder)
        spec = require_spec(folder, meta, "steps")
        require_tables(folder)
        keys = {"optimizer": TEXT, "batch_size": KEY, "lr": KEY}
        tables = read_tables(
            folder,
            meta,
            [
                TableSchema(
                    "suboptimality", {**keys, "step": KEY, "suboptimality": MEASURE, "theory_floor": MEASURE}
                ),
                TableSchema("noise_floor", {**keys, "measured": MEASURE}),
            ],
        )
        return cls(tables["suboptimality"], tables["noise_floor"], spec, meta.get("seed", 0))

    def plot(self) -> dict:
        """File stem -> Figure: f - f* per step per batch size, and the settled floor against lr."""
        return {
            "suboptimality": plot_suboptimality(self.curves),
            "noise_floor": plot_noise_floor(self.floors),
        }


def noise_floor(
    optimizers,
    *,
    steps: int = DEFAULT_STEPS,
    seeds: int = 1,
    batch_sizes=DEFAULT_BATCH_SIZES,
    floor_lrs=DEFAULT_FLOOR_LRS,
    seed: int = 0,
) -> NoiseFloorStudy:
    """Run the study for each optimizer (ours only: the lr grid is one tensor); returns a `NoiseFloorStudy`.

    optimizers: specs or their text ("sgd", "adam:lr=0.01"); unset lrs take the linreg task's default.
    batch_sizes: mini-batch sizes, each from 1 to the 1,000 samples (a list or "1,10,100");
    floor_lrs: the lr grid of `floors` (a list, "0.01,0.1" or a range "1e-3:0.3:12:log").
    Raises OptbenchError for steps < 2, a batch size out of range, or a torch.optim spec.
    """
    specs, linreg = as_specs(optimizers), get_task("linreg").require("compare")
    sizes = [int(size) for size in axis_values("batch_sizes", batch_sizes)]
    lrs = [float(lr) for lr in axis_values("floor_lrs", floor_lrs)]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise OptbenchError(f"linreg needs steps >= 2, got {steps!r}")
    check_count("seeds", seeds, 1)
    check_seed(seed)
    data = make_linear_data(seed=seed)
    if not sizes or min(sizes) < 1 or max(sizes) > len(data.y):
        raise OptbenchError(f"batch sizes must be between 1 and the {len(data.y)} samples, got {sizes}")
    if not lrs:
        raise OptbenchError("no learning rate given for the noise floor")
    for spec in specs:
        if spec.use_torch:
            raise OptbenchError(
                f"{spec.name}: linreg runs every lr and seed as one tensor, which torch.optim "
                "does not accept; use ours (certified equal)"
            )
        check_axis(spec, "lr", lrs, "noise-floor lr")
    solution = least_squares(data)

    def theory(spec: OptimizerSpec, lr: float, batch: int) -> float:
        hparams = spec.resolved()
        plain = spec.family == "sgd" and not any(
            hparams.get(name) for name in ("momentum", "nesterov", "weight_decay", "dampening")
        )
        return sgd_noise_floor(data, lr, batch) if plain else math.nan

    curves, floors = [], []
    for spec in specs:
        lr = float(spec.resolved(linreg.default_hparams(spec))["lr"])
        for batch in sizes:
            run = minibatch_runs(
                spec, data, [lr], batch, steps, seeds=seeds, seed=seed, record_every=max(1, steps // 400)
            )
            curves.append(run.assign(theory_floor=theory(spec, lr, batch)))
            grid = minibatch_runs(
                spec,
                data,
                lrs,
                batch,
                steps,
                seeds=seeds,
                seed=seed,
                record_every=max(1, steps // 200),
                from_optimum=True,
            )
            late = grid[grid["step"] >= steps / 2]
            for value, cell in late.groupby("lr", sort=True):
                run = grid[grid["lr"] == value]
                diverged, floor = bool(run["diverged"].any()), theory(spec, value, batch)
                outcome = (
                    f"diverged at step {int(run[run['diverged']]['step'].min())}"
                    if diverged
                    else UNSTABLE
                    if floor == math.inf
                    else "settled"
                )
                floors.append(
                    {
                        "optimizer": spec.name,
                        "family": spec.family,
                        "batch_size": batch,
                        "lr": value,
                        "measured": float(cell["suboptimality"].mean()) if outcome == "settled" else math.nan,
                        "theory": floor,
                        "diverged": diverged,
                        "outcome": outcome,
                    }
                )
    meta = {
        "surface": "linreg",
        "optimizers": [spec.name for spec in specs],
        "steps": steps,
        "seeds": seeds,
        "batch_sizes": sizes,
        "floor_lrs": lrs,
        "least_squares": solution,
        "sampling": "with replacement",
    }
    return NoiseFloorStudy(pd.concat(curves, ignore_index=True), pd.DataFrame(floors), meta, seed)
