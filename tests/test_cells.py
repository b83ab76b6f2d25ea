"""The cell engine (`optbench.cells`): content keys, the store, the scheduler and its executors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optbench.cells import DONE, SKIPPED, CellStore, Group, Local, Submitit, content_key, schedule
from optbench.errors import OptbenchError


@dataclass(frozen=True)
class Point:
    """A cell of a toy study: its value is seed squared."""

    seed: int

    @property
    def key(self) -> str:
        return content_key({"seed": self.seed})


@dataclass(frozen=True)
class SquareJob:
    """Computes a group's missing points (seed squared, modulo 2^31), logging each call's keys (one
    line per call) in `log`."""

    log: str

    def __call__(self, store, group, missing):
        with open(self.log, "a") as handle:
            handle.write(" ".join(cell.key for cell in missing) + "\n")
        for cell in missing:
            store.write(
                cell.key, {"values": pd.DataFrame({"seed": [cell.seed], "square": [cell.seed**2 % 2**31]})}
            )
            yield cell.key, DONE


def calls(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def groups_of(seeds, size=1) -> list[Group]:
    points = [Point(s) for s in seeds]
    return [Group(f"g{i}", tuple(points[i : i + size])) for i in range(0, len(points), size)]


# --- keys -------------------------------------------------------------------------------------------


def test_keys_keep_types_and_exact_integers():
    assert content_key({"x": 1}) != content_key({"x": 1.0})
    assert content_key({"x": True}) != content_key({"x": 1})
    assert float(2**54) == float(2**54 + 1)  # why a key must not go through float
    assert content_key({"seed": 2**54}) != content_key({"seed": 2**54 + 1})
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": (1, 2), "a": 1})  # order, tuple = list
    assert content_key({"x": np.int64(3), "y": np.float64(0.5)}) == content_key({"x": 3, "y": 0.5})
    assert content_key({"x": float("nan")}) != content_key({"x": float("inf")})
    assert content_key({"x": -0.0}) != content_key({"x": 0.0})
    with pytest.raises(TypeError, match="cannot key a cell on object"):
        content_key({"x": object()})


def test_seeds_at_and_above_2_to_the_54_are_two_cells(tmp_path):
    log = tmp_path / "log"
    store = CellStore(tmp_path / "out")
    reports = []
    schedule(
        store.folder,
        groups_of([2**54, 2**54 + 1]),
        SquareJob(str(log)),
        Local(1),
        lambda *r: reports.append(r),
    )
    assert [status for _, status in reports] == [DONE, DONE]
    assert len(calls(log)) == 2
    values = [store.read(Point(s).key)["values"] for s in (2**54, 2**54 + 1)]
    assert [int(v["seed"].item()) for v in values] == [2**54, 2**54 + 1]


# --- the store --------------------------------------------------------------------------------------


def test_a_rerun_skips_finished_cells_and_a_group_is_computed_in_one_call(tmp_path):
    log, folder = tmp_path / "log", tmp_path / "out"
    reports = []
    schedule(folder, groups_of(range(4), size=2), SquareJob(str(log)), Local(1), lambda *r: reports.append(r))
    assert calls(log) == [[Point(0).key, Point(1).key], [Point(2).key, Point(3).key]]
    (folder / "cells" / f"{Point(3).key}.done").unlink()  # as if its writer was killed before the marker
    reports.clear()
    schedule(folder, groups_of(range(4), size=2), SquareJob(str(log)), Local(1), lambda *r: reports.append(r))
    assert calls(log)[2:] == [[Point(3).key]]
    assert sorted(reports) == sorted([(Point(s).key, SKIPPED) for s in range(3)] + [(Point(3).key, DONE)])


def test_a_different_spec_is_refused_unless_forced_and_a_corrupt_cell_is_named(tmp_path):
    store = CellStore(tmp_path)
    store.open("study", {"steps": 10}, 0, force=False)
    store.write("abc", {"values": pd.DataFrame({"x": [1]})})
    store.close()
    with pytest.raises(OptbenchError, match=r"holds a different study \(steps: 10 -> 11\).*--force"):
        CellStore(tmp_path).check("study", {"steps": 11}, 0, force=False)
    with pytest.raises(OptbenchError, match="holds 'study' results, not a sweep"):
        CellStore(tmp_path).check("sweep", {"steps": 10}, 0, force=False)
    CellStore(tmp_path).check("study", {"steps": 11}, 0, force=True)
    store.table_path("abc", "values").write_bytes(b"not parquet")
    assert not store.finished("abc")  # so a forced run computes it again
    with pytest.raises(OptbenchError, match=r"corrupt results file .*abc\.values\.parquet.*--force"):
        CellStore(tmp_path).check("study", {"steps": 10}, 0, force=False, keys=["abc"])


def test_a_live_writers_temporary_file_is_kept_until_its_cell_is_claimed(tmp_path):
    alive = CellStore(tmp_path)
    alive.join()
    leftover = tmp_path / "cells" / ".0123456789abcdef.values.parquet.x1.tmp"
    leftover.write_bytes(b"half")
    with CellStore(tmp_path) as other:
        other.join()
        assert leftover.exists()  # another writer is alive: it may be writing this file
        with other.claim("g", ["0123456789abcdef"]) as held:
            assert held and not leftover.exists()  # the claimant is the cell's only writer
    alive.close()


def test_a_claimed_group_is_passed_over_by_another_claimant(tmp_path):
    first, second = CellStore(tmp_path), CellStore(tmp_path)  # two open files: as two processes
    with first.claim("g", ["a"]) as held:
        assert held
        with second.claim("g", ["a"], wait=False) as also:
            assert also is False
    with second.claim("g", ["a"], wait=False) as held:
        assert held


KILLED_WRITER = """
import os, sys, tempfile
import pandas as pd
from optbench.cells import CellStore
folder, finished, unfinished = sys.argv[1:]
store = CellStore(folder)
store.join()
with store.claim("g", [finished, unfinished]):
    store.write(finished, {"values": pd.DataFrame({"square": [0]})})
    tempfile.mkstemp(dir=store.cells, prefix=f".{unfinished}.values.parquet.", suffix=".tmp")
    print("writing", flush=True)
    sys.stdin.read()  # until killed
"""


def test_resume_after_a_killed_writer_keeps_finished_cells_and_cleans_its_temporary_files(tmp_path):
    folder, log = tmp_path / "out", tmp_path / "log"
    done, lost = Point(0), Point(1)
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(folder), done.key, lost.key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert list((folder / "cells").glob(f".{lost.key}.*.tmp"))
    reports = []
    schedule(folder, [Group("g", (done, lost))], SquareJob(str(log)), Local(1), lambda *r: reports.append(r))
    assert calls(log) == [[lost.key]]  # the claim died with its holder; the finished cell is kept
    assert sorted(reports) == sorted([(done.key, SKIPPED), (lost.key, DONE)])
    assert not list(folder.rglob("*.tmp"))


# --- executors --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_worker_processes_compute_each_cell_once(tmp_path):
    log, folder = tmp_path / "log", tmp_path / "out"
    reports = []
    schedule(folder, groups_of(range(6)), SquareJob(str(log)), Local(2), lambda *r: reports.append(r))
    computed = [key for call in calls(log) for key in call]
    assert sorted(computed) == sorted(Point(s).key for s in range(6))
    assert sorted(reports) == sorted((Point(s).key, DONE) for s in range(6))


def test_a_job_that_raises_fails_its_cells_and_spares_the_others(tmp_path):
    @dataclass(frozen=True)
    class Broken(SquareJob):
        def __call__(self, store, group, missing):
            if any(cell.seed == 1 for cell in missing):
                raise RuntimeError("simulated crash")
            yield from super().__call__(store, group, missing)

    reports = dict()
    schedule(tmp_path, groups_of(range(3)), Broken(str(tmp_path / "log")), Local(1), reports.__setitem__)
    assert reports[Point(1).key] == "failed: RuntimeError: simulated crash"
    assert reports[Point(0).key] == reports[Point(2).key] == DONE
    assert not CellStore(tmp_path).finished(Point(1).key)


@pytest.mark.parametrize("cluster", ["debug", pytest.param("local", marks=pytest.mark.slow)])
def test_the_submitit_executor_runs_each_group_as_one_job(tmp_path, cluster, monkeypatch):
    pytest.importorskip("submitit", reason="submitit (the 'cluster' extra) is not installed")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    log, folder = tmp_path / "log", tmp_path / "out"
    reports = []
    executor = Submitit(cluster=cluster, parameters={"timeout_min": 5}, poll_seconds=0.1)
    schedule(folder, groups_of(range(4), size=2), SquareJob(str(log)), executor, lambda *r: reports.append(r))
    assert sorted(calls(log)) == sorted([[Point(0).key, Point(1).key], [Point(2).key, Point(3).key]])
    assert sorted(reports) == sorted((Point(s).key, DONE) for s in range(4))
    assert [int(CellStore(folder).read(Point(s).key)["values"]["square"].item()) for s in range(4)] == [
        0,
        1,
        4,
        9,
    ]
    reports.clear()
    schedule(folder, groups_of(range(4), size=2), SquareJob(str(log)), executor, lambda *r: reports.append(r))
    assert len(calls(log)) == 2 and {status for _, status in reports} == {SKIPPED}  # resumed: nothing rerun
