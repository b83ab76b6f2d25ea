"""`optbench sweep` end to end: a kill mid-sweep loses nothing, config files, one-line errors."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from optbench.runners.sweep import CRASH_AFTER_ENV

QUICK = ["sweep", "--task", "surface:elliptic", "--optimizer", "sgd", "--batch-size", "1,4,16",
         "--lr-scale", "linear,sqrt", "--base-lr", "0.005", "--noise", "20", "--steps", "40",
         "--target-loss", "100", "--format", "png"]


def optbench(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from optbench.cli import entry; entry()", *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **(env or {})})


def _cells(folder):
    return {path.name: path.stat().st_mtime_ns for path in (folder / "cells").glob("*.parquet")}


def test_killed_sweep_resumes_without_recomputing(tmp_path):
    interrupted, clean = tmp_path / "interrupted", tmp_path / "clean"
    killed = optbench(*QUICK, "--out", str(interrupted), env={CRASH_AFTER_ENV: "1"})
    assert killed.returncode == -9                       # SIGKILL after the first cell: no cleanup ran
    first = _cells(interrupted)
    assert len(first) == 1
    assert not (interrupted / "sweep.parquet").exists()

    resumed = optbench(*QUICK, "--out", str(interrupted))
    assert resumed.returncode == 0, resumed.stderr
    assert "5 cell(s) computed, 1 already finished (skipped)" in resumed.stderr
    after = _cells(interrupted)
    assert len(after) == 6
    name, mtime = next(iter(first.items()))
    assert after[name] == mtime                           # the finished cell was not rewritten

    assert optbench(*QUICK, "--out", str(clean)).returncode == 0
    volatile = ["wall_time", "samples_per_s"]
    tables = [pd.read_parquet(folder / "sweep.parquet").drop(columns=volatile).sort_values(["cell", "step"])
              .reset_index(drop=True) for folder in (interrupted, clean)]
    pd.testing.assert_frame_equal(*tables)
    for image in ("sweep_loss_curves", "sweep_steps_to_target", "sweep_final_accuracy", "sweep_lr"):
        assert (clean / f"{image}.png").stat().st_size > 10_000


def test_config_file_and_flag_override(tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text("task: regression\nbatch_size: [4, 16]\nlr-scale: none\nsteps: 5\n"
                      "optimizer: [sgd]\nhparams:\n  momentum: [0, 0.9]\n")
    out = tmp_path / "out"
    result = optbench("sweep", "--config", str(config), "--batch-size", "8", "--out", str(out), "--format", "png")
    assert result.returncode == 0, result.stderr
    summary = pd.read_parquet(out / "summary.parquet")
    assert sorted(summary["batch_size"].unique()) == [8]          # the flag beat the file
    assert sorted(summary["momentum"]) == [0, 0.9] and set(summary["lr_scale"]) == {"none"}
    assert "momentum=0.9" in result.stdout


def test_plot_redraws_a_sweep(tmp_path):
    out = tmp_path / "out"
    assert optbench(*QUICK, "--out", str(out), "--shard", "1/2").returncode == 0
    assert optbench(*QUICK, "--out", str(out), "--shard", "2/2").returncode == 0
    (out / "sweep.parquet").unlink()
    redrawn = optbench("plot", str(out), "--format", "png")
    assert redrawn.returncode == 0, redrawn.stderr
    assert len(pd.read_parquet(out / "summary.parquet")) == 6      # both shards merged
    assert "sweep_steps_to_target.png" in redrawn.stdout


@pytest.mark.parametrize("args, expected", [
    (["--batch-size", "16,,64"], "malformed list for --batch-size: '16,,64' has an empty item"),
    (["--batch-size", "0"], "--batch-size must be positive, got 0"),
    (["--batch-size", "16,abc"], "'abc' is not a number"),
    (["--lr-scale", "quadratic"], "unknown lr-scale rule 'quadratic'"),
    (["--momentum", "0,,0.9"], "malformed list for --momentum"),
    (["--momentun", "0.9"], "unknown hyperparameter of sgd 'momentun'; did you mean 'momentum'?"),
    (["--batch-sizes", "4"], "no such option '--batch-sizes'; did you mean '--batch-size'?"),
    (["--shard", "3/2"], "--shard must be I/N"),
    (["--evaluations", "10"], "--evaluations needs a training task"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, expected):
    base = ["sweep", "--task", "surface:elliptic", "--optimizer", "sgd", "--steps", "5", "--out", str(tmp_path)]
    completed = optbench(*base, *args)
    assert completed.returncode == 2, completed.stderr
    assert expected in completed.stderr
    assert "Traceback" not in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def test_config_unknown_key_is_named(tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text("batch_sise: [4]\n")
    completed = optbench("sweep", "--config", str(config), "--out", str(tmp_path / "o"))
    assert completed.returncode == 2
    assert "unknown key 'batch_sise'; did you mean 'batch_size'?" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_corrupt_cell_and_changed_spec_are_one_line_errors(tmp_path):
    out = tmp_path / "out"
    assert optbench(*QUICK, "--out", str(out)).returncode == 0
    victim = sorted((out / "cells").glob("*.parquet"))[0]
    victim.write_bytes(b"garbage")
    corrupt = optbench(*QUICK, "--out", str(out))
    assert corrupt.returncode == 2 and victim.name in corrupt.stderr and "--force" in corrupt.stderr
    assert len(corrupt.stderr.strip().splitlines()) == 1
    assert optbench(*QUICK, "--out", str(out), "--force").returncode == 0
    changed = optbench(*QUICK[:-2], "--steps", "41", "--out", str(out))
    assert changed.returncode == 2 and "different sweep (steps: 40 -> 41)" in changed.stderr


def test_diverged_cells_are_drawn_not_a_crash(tmp_path):
    """A linear rule that blows up (final loss 1e199 or inf) is an x on the plot, never a traceback."""
    from click.testing import CliRunner

    from optbench.cli import main

    result = CliRunner().invoke(main, ["sweep", "--task", "surface:elliptic", "--noise", "20",
                                       "--batch-size", "1,16,64", "--lr-scale", "linear,none",
                                       "--optimizer", "sgd:lr=0.09", "--out", str(tmp_path), "--format", "png"])
    assert result.exit_code == 0, result.output
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert summary["diverged"].any() and not summary["diverged"].all()
    assert (tmp_path / "sweep_final_accuracy.png").stat().st_size > 0
