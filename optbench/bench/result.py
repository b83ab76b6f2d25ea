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
  (final_metric, final_metric_low, final_metric_high: `final_interval`), the lone rerun's
  seconds_per_step, and seconds_to_target = steps x seconds_per_step (NaN where not reached);
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
from ..results import META_FILE, read_metadata
from . import profiles

TAUS = np.linspace(1.0, profiles.TAU_MAX, 301)  # the profile's τ grid, 0.01 apart
REPORT = "report.html"
TABLES = ("trials", "winners", "seeds", "timings", "summary", "profiles", "ranking")
CONFIDENCE = 0.95  # of the final metric's interval over seeds
# the columns the views, the report and the page read (`views`): a saved table lacking one is damaged
SUMMARY_MEASURES = (
    "steps",
    "seeds",
    "final_metric",
    "final_metric_low",
    "final_metric_high",
    "seconds_per_step",
    "seconds_to_target",
)
RANKING_MEASURES = ("score", "score_low", "score_high", "rank", "rank_low", "rank_high", "p_best")


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
        # "OPTIMIZER on TASK" -> message, as meta.json's "failed": read from the tables, so a result
        # loaded from its folder says the same as the run that made it
        timing = {f"{run} (timing)": message for run, message in failures(timings).items()}
        self.failed: dict[str, str] = {**failures(trials, seeds), **timing}

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
        spec = checked_spec(folder, meta)
        require_tables(folder)
        keys = {"optimizer": TEXT, "task": TEXT, "study": KEY}
        optimizers = spec["optimizers"]
        pairs = len(optimizers) * len(spec["tasks"])  # (task, optimizer) pairs: each made these rows
        studies = pairs * spec["studies"]
        schemas = [
            TableSchema(
                "trials",
                {**keys, "trial": KEY, "steps": MEASURE, "status": TEXT},
                rows=studies * spec["trials_per_study"],
            ),
            TableSchema("winners", {**keys, "steps": MEASURE}, rows=studies),
            TableSchema(
                "seeds", {**keys, "seed": KEY, "steps": MEASURE, "status": TEXT}, rows=studies * spec["seeds"]
            ),
            TableSchema(
                "timings",
                {
                    **keys,
                    "status": TEXT,
                    **dict.fromkeys(("steps", "seconds", "seconds_per_step", "seconds_to_target"), MEASURE),
                },
                rows=pairs,
            ),
            TableSchema(
                "summary",
                {
                    **keys,
                    "metric": TEXT,
                    **dict.fromkeys(SUMMARY_MEASURES, MEASURE),
                },
                rows=pairs,
            ),
            TableSchema(
                "profiles",
                {"optimizer": TEXT, "tau": KEY, "fraction": MEASURE},
                rows=len(optimizers) * len(TAUS),
            ),
            TableSchema(
                "ranking",
                {"optimizer": TEXT, **dict.fromkeys(RANKING_MEASURES, MEASURE)},
                rows=len(optimizers),
            ),
        ]
        tables = read_tables(folder, meta, schemas)
        for name in ("trials", "seeds", "timings"):
            status = tables[name]["status"]
            text = status.map(lambda value: isinstance(value, str))
            if not text.all():
                raise OptbenchError(
                    f"column 'status' of {folder / (name + '.parquet')} holds {str(status[~text].iloc[0])!r} where "
                    "an outcome (reached, not reached, diverged, failed: ...) belongs"
                )
        for name in ("seeds", "ranking"):
            found = sorted(set(tables[name]["optimizer"].astype(str)))
            if found != sorted(optimizers):
                raise OptbenchError(
                    f"{folder / (name + '.parquet')} holds the optimizers {', '.join(found)}, but its "
                    f"{META_FILE} lists {', '.join(optimizers)}: the folder is damaged"
                )
        return cls(spec, meta.get("seed", 0), *(tables[name] for name in TABLES))

    def plot(self) -> dict:
        from ..plots.bench import profile_figure

        return {"profiles": profile_figure(self.profiles, self.ranking)}

    def write_report(self, folder) -> Path:
        """Draw the figures and write the self-contained HTML report into `folder`; returns its path."""
        from .report import write_report

        return write_report(self, Path(folder) / REPORT)


def checked_spec(folder, meta: dict) -> dict:
    """meta.json's bench spec once it holds what the tables, figures and report read, each of its type:
    the optimizers (a list of distinct names), the tasks (a list of rows, each with a name), the counts
    (whole numbers >= 1), the search space and the skipped tasks (mappings); OptbenchError naming the
    first key that does not, and its value."""
    spec = require_spec(
        folder, meta, "optimizers", "suite", "tasks", "studies", "trials_per_study", "seeds", "space"
    )
    path = Path(folder) / META_FILE

    def refuse(key: str, what: str):
        raise OptbenchError(f"{path}: the bench spec's '{key}' must be {what}, got {spec[key]!r}")

    optimizers = spec["optimizers"]
    if not (
        isinstance(optimizers, list)
        and optimizers
        and all(isinstance(o, str) for o in optimizers)
        and len(set(optimizers)) == len(optimizers)
    ):
        refuse("optimizers", "a list of distinct optimizer names")
    tasks = spec["tasks"]
    if not (
        isinstance(tasks, list)
        and tasks
        and all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tasks)
    ):
        refuse("tasks", "a list of task rows, each with a name")
    for key in ("studies", "trials_per_study", "seeds"):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            refuse(key, "a whole number >= 1")
    if not (isinstance(spec["space"], dict) and all(isinstance(a, dict) for a in spec["space"].values())):
        refuse("space", "a mapping of each searched hyperparameter to its range")
    if not isinstance(spec.get("skipped", {}), dict):
        refuse("skipped", "a mapping of each skipped task to its note")
    return spec


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
        steps = mine["steps"].astype(float).fillna(np.inf).median()
        rows.append(
            {
                "task": lone.task,
                "optimizer": lone.optimizer,
                "study": lone.study,
                "steps": steps,
                "seeds": len(values),
                "metric": metrics.get(lone.task, "f - f*"),
                "final_metric": values.mean() if len(values) else np.nan,
                "final_metric_low": low,
                "final_metric_high": high,
                "seconds_per_step": lone.seconds_per_step,
                # the row's own steps at the lone rerun's pace: steps x s/step, as the table reads
                "seconds_to_target": steps * lone.seconds_per_step if np.isfinite(steps) else np.nan,
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
