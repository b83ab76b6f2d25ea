"""`BenchResult`: the benchmark's tidy tables, its protocol in meta.json, its figure and report.

Tables (one row each):
- trials: (optimizer, task, study, trial) of the tuning studies: hyperparameters, seed (0), steps to
  target (NaN: not reached), final_gap (f - f* at the end), status (reached, not reached, diverged,
  failed: MESSAGE);
- winners: (optimizer, task, study): the study's fastest trial (`protocol.fastest_per_study`);
- seeds: (optimizer, task, study, seed): the winner rerun per seed, columns as trials;
- timings: (optimizer, task): the task's winner rerun alone (`timing`): its columns as trials, plus
  seconds, seconds_per_step, seconds_to_target and threads;
- summary: (task, optimizer): the task's winner (the study of `timing.lone_winner`), its steps (median
  over seeds), the task's final metric (`metric`: f - f* on a surface, the target's metric, such as
  val_accuracy, on a network) as the mean over its K seeds with a 95% Student-t interval
  (final_metric, final_metric_low, final_metric_high: `final_interval`), and the lone
  rerun's seconds_per_step and seconds_to_target;
- profiles: (optimizer, tau): the fraction of tasks within tau times the best (`profiles`);
- ranking: per optimizer: score (area under the profile up to tau 4), its bootstrap interval, rank.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import OptbenchError
from ..experiments.result import (
    KEY,
    MEASURE,
    TEXT,
    Result,
    TableSchema,
    read_tables,
    require_spec,
    require_tables,
)
from ..results import read_metadata
from . import profiles

TAUS = np.linspace(1.0, profiles.TAU_MAX, 301)  # the profile's τ grid, 0.01 apart
REPORT = "report.html"
TABLES = ("trials", "winners", "seeds", "timings", "summary", "profiles", "ranking")
CONFIDENCE = 0.95  # of the final metric's interval over seeds


class BenchResult(Result):
    """The benchmark's tables (see the module docstring); `meta` is the protocol as run."""

    kind = "bench"

    def __init__(
        self, meta: dict, seed: int, trials, winners, seeds, timings, summary, profiles_table, ranking_table
    ):
        self.meta, self.seed = meta, seed
        self.trials, self.winners, self.seeds = trials, winners, seeds
        self.timings, self.summary = timings, summary
        self.profiles, self.ranking = profiles_table, ranking_table
        self.statuses: dict[str, str] = {}  # this run's cell key -> status (skipped, done, failed: ...)
        self.failed: dict[str, str] = {}  # "OPTIMIZER on TASK" -> message, as meta.json's "failed"

    @classmethod
    def from_run(cls, meta: dict, seed: int, tables: dict) -> BenchResult:
        seeds, timings = tables["seeds"], tables["timings"]
        result = cls(
            meta,
            seed,
            tables["trials"],
            tables["winners"],
            seeds,
            timings,
            summary(seeds, timings, metric_names(meta.get("tasks", []))),
            *scores(seeds),
        )
        result.statuses = tables["statuses"]
        timing = {f"{run} (timing)": message for run, message in failures(result.timings).items()}
        result.failed = {**failures(result.trials, result.seeds), **timing}
        return result

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    def task_steps(self) -> pd.DataFrame:
        """t_{p,s}: steps to target per task (rows) and optimizer (columns), ∞ where never reached."""
        return profiles.task_steps(self.seeds)[self.meta["optimizers"]]

    @classmethod
    def load(cls, folder) -> BenchResult:
        folder = Path(folder)
        meta = read_metadata(folder)
        spec = require_spec(folder, meta, "optimizers", "tasks", "studies", "seeds")
        require_tables(folder)
        keys = {"optimizer": TEXT, "task": TEXT, "study": KEY}
        optimizers = spec["optimizers"]
        schemas = [
            TableSchema("trials", {**keys, "trial": KEY, "steps": MEASURE, "status": TEXT}),
            TableSchema("winners", {**keys, "steps": MEASURE}),
            TableSchema("seeds", {**keys, "seed": KEY, "steps": MEASURE, "status": TEXT}),
            TableSchema("timings", {**keys, "seconds_per_step": MEASURE}),
            TableSchema("summary", {**keys, "final_metric": MEASURE, "seconds_per_step": MEASURE}),
            TableSchema("profiles", {"optimizer": TEXT, "tau": KEY, "fraction": MEASURE}),
            TableSchema(
                "ranking",
                {"optimizer": TEXT, "score": MEASURE, "rank": MEASURE},
                rows=len(optimizers) if isinstance(optimizers, list) else None,
            ),
        ]
        tables = read_tables(folder, meta, schemas)
        return cls(spec, meta.get("seed", 0), *(tables[name] for name in TABLES))

    def plot(self) -> dict:
        from ..plots.bench import profile_figure

        return {"profiles": profile_figure(self.profiles, self.ranking)}

    def write_report(self, folder) -> Path:
        """Draw the figures and write the self-contained HTML report into `folder`; returns its path."""
        from .report import write_report

        return write_report(self, Path(folder) / REPORT)


def failures(*tables: pd.DataFrame) -> dict[str, str]:
    """ "OPTIMIZER on TASK" -> the first failure message of its rows (status "failed: MESSAGE")."""
    failed = {}
    for table in tables:
        rows = table[table["status"].str.startswith("failed")]
        for row in rows.itertuples():
            failed.setdefault(f"{row.optimizer} on {row.task}", row.status.removeprefix("failed: "))
    return failed


def metric_names(tasks: list[dict]) -> dict[str, str]:
    """Task name -> the metric its final value is (a network task's target metric; f - f* otherwise)."""
    return {task["name"]: task.get("metric", "f - f*") for task in tasks}


def summary(
    seeds: pd.DataFrame, timings: pd.DataFrame, metrics: dict[str, str], confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """The summary table of the module docstring: per (task, optimizer) of `timings` (one row each,
    the study of its winner), that study's rows of `seeds`; `metrics` names each task's metric."""
    rows = []
    for lone in timings.itertuples():
        mine = seeds[(seeds["task"] == lone.task) & (seeds["optimizer"] == lone.optimizer)]
        mine = mine[mine["study"] == lone.study]
        values = mine["final_metric"].to_numpy(dtype=float)
        low, high = final_interval(values, confidence)
        rows.append(
            {
                "task": lone.task,
                "optimizer": lone.optimizer,
                "study": lone.study,
                "steps": mine["steps"].astype(float).fillna(np.inf).median(),
                "seeds": len(values),
                "metric": metrics.get(lone.task, "f - f*"),
                "final_metric": values.mean() if len(values) else np.nan,
                "final_metric_low": low,
                "final_metric_high": high,
                "seconds_per_step": lone.seconds_per_step,
                "seconds_to_target": lone.seconds_to_target,
            }
        )
    return pd.DataFrame(rows)


def final_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Student-t interval of the mean of `values` over seeds (`sweeps.noise_scale.mean_interval`),
    its lower end cut at 0: every final metric here (f - f*, an accuracy, a loss) is >= 0, so the part
    below holds no possible value and cutting it keeps the coverage. (NaN, NaN) for fewer than 2
    values or any non-finite one (a diverged or failed seed)."""
    from ..sweeps.noise_scale import mean_interval

    if len(values) < 2 or not np.isfinite(values).all():
        return np.nan, np.nan
    low, high = mean_interval([float(v) for v in values], confidence)
    return max(0.0, low), high


def scores(seeds: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The profiles table (optimizer, tau, fraction) and the ranking (`profiles.ranking`) of the
    seeds table. Raises OptbenchError for an empty table."""
    if seeds.empty:
        raise OptbenchError("the benchmark produced no rows")
    steps = profiles.task_steps(seeds)
    optimizers = list(dict.fromkeys(seeds["optimizer"]))
    steps = steps[optimizers]
    ratios = profiles.performance_ratios(steps.to_numpy())
    rho = profiles.performance_profile(ratios, TAUS)  # [optimizers, taus]
    table = pd.DataFrame(
        {
            "optimizer": np.repeat(optimizers, len(TAUS)),
            "tau": np.tile(TAUS, len(optimizers)),
            "fraction": rho.reshape(-1),
        }
    )
    return table, profiles.ranking(seeds[list(profiles.COLUMNS)])
