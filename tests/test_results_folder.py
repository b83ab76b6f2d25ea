"""A results folder holds one run, readable by others (umask respected)."""

import os
import stat

import pytest

import optbench
from optbench.errors import OptbenchError
from optbench.experiments.compare import plan_tuning
from optbench.results import atomic_write_bytes


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_respect_the_umask(tmp_path, umask_022):
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    optbench.compare(["sgd"], "bowl", steps=5).save(tmp_path / "run")
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "run").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes
    os.umask(0o077)
    atomic_write_bytes(tmp_path / "private.bin", b"x")
    assert stat.S_IMODE((tmp_path / "private.bin").stat().st_mode) == 0o600


def test_a_folder_holds_one_run(tmp_path):
    folder = tmp_path / "run"
    tuned = optbench.compare(
        ["sgd"], "bowl", steps=5, tune=plan_tuning(["sgd"], "bowl", ranges={"lr": "0.1:1:3"})
    )
    tuned.save(folder)
    assert (folder / "tuning.parquet").exists()
    (folder / "notes.txt").write_text("mine")
    plain = optbench.compare(["adam"], "bowl", steps=5)
    with pytest.raises(OptbenchError, match="different run.*--force"):
        plain.save(folder)
    assert (folder / "tuning.parquet").exists()  # refused: nothing touched
    plain.save(folder, force=True)
    assert not (folder / "tuning.parquet").exists() and not (folder / "tuned.parquet").exists()
    assert (folder / "notes.txt").read_text() == "mine"  # only what optbench wrote goes
    (folder / "loss.pdf").write_bytes(b"stale figure of this run")
    plain.save(folder)  # the same run again: replaced, no leftovers
    assert not (folder / "loss.pdf").exists() and (folder / "metrics.parquet").exists()
    assert optbench.load(folder).meta["optimizers"] == ["adam"]
