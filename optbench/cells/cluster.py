"""The cluster executor: each group of cells as one job of a Slurm job array, through `submitit`.

    from optbench.cells import Submitit
    Submitit(cluster="slurm", parameters={"timeout_min": 60, "slurm_partition": "gpu", "gpus_per_node": 1})

`submitit` is an optional extra (`pip install optbench[cluster]`). Every job opens the study's
folder as a writer and runs `schedule.work` on its group, so the store's guarantees hold on a
cluster as they do locally (the folder must be on a file system every node sees, with working
`flock`, e.g. NFSv4 or Lustre): each cell is computed once, a job killed by the scheduler leaves no
half-written cell, and a rerun submits only the unfinished groups. Statuses are reported as jobs
finish; a job that fails as a whole (out of time, node lost) fails its cells. Interrupting the
study (SIGINT/SIGTERM) cancels the jobs still queued or running.

`cluster="local"` runs the same jobs as local processes (submitit's LocalExecutor), which is how
the tests check this executor without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptbenchError
from .schedule import work_in

LOG_FOLDER = ".submitit"  # inside the study's folder, unless `log_folder` is given


@dataclass(frozen=True)
class Submitit:
    """cluster: None (Slurm when `sbatch` is on PATH, else local processes), "slurm", "local" or
    "debug" (in this process); parameters: submitit's `update_parameters` keywords (timeout_min,
    slurm_partition, gpus_per_node, ...); log_folder: where submitit keeps its pickles and logs.
    Raises OptbenchError, on construction, when submitit is not installed, the cluster cannot be used
    here, or a parameter is unknown to its executor or of the wrong type (submitit's own check), so
    a study refuses them before it writes anything."""

    cluster: str | None = None
    parameters: dict = field(default_factory=dict)
    log_folder: str | None = None
    poll_seconds: float = 1.0

    def __post_init__(self):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="optbench-submitit-") as scratch:
            self._executor(Path(scratch))

    def _executor(self, logs: Path):
        """submitit's executor for `cluster`, its parameters set (see the class docstring)."""
        try:
            import submitit
        except ImportError:
            raise OptbenchError(
                "the cluster executor needs submitit: pip install 'optbench[cluster]'"
            ) from None
        try:
            executor = submitit.AutoExecutor(folder=logs, cluster=self.cluster)
            executor.update_parameters(**self.parameters)
        except (NameError, AssertionError, TypeError, ValueError, RuntimeError) as error:
            message = " ".join(str(error).split()) or type(error).__name__
            raise OptbenchError(f"cluster executor '{self.cluster or 'auto'}': {message}") from None
        return executor

    def run(self, folder, groups, job, report) -> None:
        import submitit

        if not groups:
            return
        logs = Path(self.log_folder) if self.log_folder else Path(folder) / LOG_FOLDER
        executor = self._executor(logs)
        jobs = executor.map_array(
            work_in, [str(folder)] * len(groups), [[g] for g in groups], [job] * len(groups)
        )
        cells_of = {job_.job_id: group.cells for job_, group in zip(jobs, groups, strict=True)}
        try:
            for finished in submitit.helpers.as_completed(jobs, poll_frequency=self.poll_seconds):
                try:
                    statuses = finished.result()
                except Exception as error:  # noqa: BLE001 - the job as a whole failed: so did its cells
                    reason = (
                        str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
                    )
                    statuses = [
                        (c.key, f"failed: job {finished.job_id}: {reason}") for c in cells_of[finished.job_id]
                    ]
                for key, status in statuses:
                    report(key, status)
        finally:
            for pending in jobs:
                if not pending.done():
                    pending.cancel(check=False)
