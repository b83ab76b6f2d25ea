"""Sweeps under real processes: killed parents leave no worker and resume exactly; two sweeps on
one folder compute each cell once; leftovers of killed writers are cleaned; --jobs never changes
a number."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from optbench.sweeps import SweepSpec, sweep

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# 8 cells of about a second each: long enough to kill a sweep in the middle
SLOW = [
    "sweep",
    "--task",
    "surface:elliptic",
    "--optimizer",
    "sgd",
    "--batch-size",
    "1,4,16,64",
    "--lr-scale",
    "linear",
    "--base-lr",
    "0.0005",
    "--noise",
    "20",
    "--steps",
    "800",
    "--seeds",
    "2",
    "--target-loss",
    "100",
    "--format",
    "png",
]
CELLS = 8
# how long to wait before calling a process hung: generous, so that a loaded machine never fails a test
HANG_S = 1800
TIMINGS = ["wall_time", "samples_per_s"]  # wall-clock measurements: the only columns that may differ


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from optbench.cli import entry; entry()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def finished_cells(folder: Path) -> list[Path]:
    return sorted((folder / "cells").glob("*.parquet"))


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def counts(stderr: str) -> tuple[int, int]:
    """(computed, skipped) from the sweep's closing line."""
    found = re.search(r"(\d+) cell\(s\) computed, (\d+) already finished", stderr)
    assert found, stderr
    return int(found[1]), int(found[2])


def table(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "sweep.parquet").drop(columns=TIMINGS)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("uninterrupted")
    done = start(*SLOW, "--out", str(out))
    _, stderr = done.communicate(timeout=HANG_S)
    assert done.returncode == 0, stderr
    return table(out)


@pytest.mark.parametrize(
    "signum",
    [
        signal.SIGTERM,
        pytest.param(signal.SIGINT, marks=pytest.mark.slow),
        pytest.param(signal.SIGKILL, marks=pytest.mark.slow),
    ],
    ids=lambda s: s.name,
)
def test_a_killed_parallel_sweep_leaves_no_worker_and_resumes_exactly(tmp_path, signum, uninterrupted):
    out = tmp_path / "out"
    parent = start(*SLOW, "--jobs", "2", "--out", str(out))
    wait_for(lambda: finished_cells(out) or parent.poll() is not None, HANG_S, "the first finished cell")
    workers = [
        pid for pid in children(parent.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
    ]
    assert len(workers) == 2
    if signum == signal.SIGINT:  # Ctrl-C in a terminal reaches the whole process group
        os.killpg(parent.pid, signum)
    else:  # a scheduler's time limit, or the OOM killer, hits the parent
        os.kill(parent.pid, signum)
    _, stderr = parent.communicate(timeout=HANG_S)
    wait_for(lambda: not any(alive(pid) for pid in workers), HANG_S, "the workers to die")
    kept = {path.name: path.stat().st_mtime_ns for path in finished_cells(out)}
    assert 1 <= len(kept) < CELLS
    if signum == signal.SIGKILL:
        assert parent.returncode == -signal.SIGKILL
    else:
        assert parent.returncode == 128 + signum, stderr
        assert "Traceback" not in stderr
        last = stderr.strip().splitlines()[-1]
        assert (
            f"stopped by {signal.Signals(signum).name}:" in last
            and "rerun the same command to resume" in last
        )
        assert f"{len(kept)} of {CELLS} cell(s) finished" in last

    time.sleep(2)  # nothing is written after the sweep stopped
    assert {path.name: path.stat().st_mtime_ns for path in finished_cells(out)} == kept
    rerun = start(*SLOW, "--jobs", "1", "--out", str(out))  # resumed with another --jobs: same bits
    _, stderr = rerun.communicate(timeout=HANG_S)
    assert rerun.returncode == 0, stderr
    assert counts(stderr) == (CELLS - len(kept), len(kept))
    assert all(
        path.stat().st_mtime_ns == kept[path.name] for path in finished_cells(out) if path.name in kept
    )
    assert not list(out.rglob("*.tmp"))
    pd.testing.assert_frame_equal(table(out), uninterrupted, check_exact=True)


def test_two_identical_sweeps_on_one_folder_compute_each_cell_once(tmp_path, uninterrupted):
    out = tmp_path / "out"
    first, second = start(*SLOW, "--out", str(out)), start(*SLOW, "--out", str(out))
    results = [process.communicate(timeout=HANG_S) for process in (first, second)]
    assert first.returncode == second.returncode == 0, results
    (computed_a, skipped_a), (computed_b, skipped_b) = (counts(stderr) for _, stderr in results)
    assert computed_a + computed_b == CELLS
    assert computed_a + skipped_a == computed_b + skipped_b == CELLS
    pd.testing.assert_frame_equal(table(out), uninterrupted, check_exact=True)


def test_leftovers_of_killed_writers_are_cleaned(tmp_path):
    spec = SweepSpec(
        batch_sizes=(1, 4),
        lr_scales=("linear",),
        optimizers=("sgd",),
        task="surface:elliptic",
        steps=20,
        noise=20.0,
        base_lr=0.005,
    )
    first = sweep(spec, tmp_path)
    first.save()
    lost = first.cells[1]
    (tmp_path / "cells" / f"{lost.key}.sweep.parquet").unlink()
    leftovers = [
        tmp_path / "cells" / f".{lost.key}.sweep.parquet.k1ll3d.tmp",
        tmp_path / "cells" / ".0123456789abcdef.sweep.parquet.k1ll3d.tmp",  # a cell no run computes again
        tmp_path / ".sweep.parquet.k1ll3d.tmp",
        tmp_path / ".meta.json.k1ll3d.tmp",
    ]
    for path in leftovers:
        path.write_bytes(b"half a file")
    again = sweep(spec, tmp_path)
    again.save()
    assert again.computed == [lost.key]
    assert not any(path.exists() for path in leftovers)
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_jobs_never_change_a_number(tmp_path):
    """Each cell runs with the spec's torch threads, in the parent or in a worker alike."""
    spec = SweepSpec(
        batch_sizes=(16, 64),
        lr_scales=("linear",),
        optimizers=("momentum",),
        steps=15,
        evaluations=5,
        base_lr=0.01,
        device="cpu",
        threads=2,
        target_accuracy=0.3,
    )
    serial = sweep(spec, tmp_path / "serial", jobs=1)
    parallel = sweep(replace(spec), tmp_path / "parallel", jobs=2)
    assert len(serial.computed) == len(parallel.computed) == 2
    pd.testing.assert_frame_equal(
        serial.table.drop(columns=TIMINGS + ["train_time"]),
        parallel.table.drop(columns=TIMINGS + ["train_time"]),
        check_exact=True,
    )
    meta = json.loads((tmp_path / "parallel" / "meta.json").read_text())
    assert meta["spec"]["grid"]["threads"] == 2
