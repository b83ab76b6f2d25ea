"""`optbench sweep` end to end: config files, redrawing, one-line errors with nothing written."""

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import optbench as optbench_api
from optbench.cli import main

QUICK = [
    "sweep",
    "--task",
    "surface:elliptic",
    "--optimizer",
    "sgd",
    "--batch-size",
    "1,4,16",
    "--lr-scale",
    "linear,sqrt",
    "--base-lr",
    "0.005",
    "--noise",
    "20",
    "--steps",
    "40",
    "--target-loss",
    "100",
    "--format",
    "png",
]


def optbench(*args, env=None):
    return subprocess.run(
        [sys.executable, "-c", "from optbench.cli import entry; entry()", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_config_file_and_flag_override(tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "task: regression\nbatch_size: [4, 16]\nlr-scale: none\nsteps: 5\n"
        "optimizer: [sgd]\nhparams:\n  momentum: [0, 0.9]\n"
    )
    out = tmp_path / "out"
    result = optbench(
        "sweep", "--config", str(config), "--batch-size", "8", "--out", str(out), "--format", "png"
    )
    assert result.returncode == 0, result.stderr
    summary = pd.read_parquet(out / "summary.parquet")
    assert sorted(summary["batch_size"].unique()) == [8]  # the flag beat the file
    assert sorted(summary["momentum"]) == [0, 0.9] and set(summary["lr_scale"]) == {"none"}
    assert "momentum=0.9" in result.stdout


def test_plot_redraws_a_sweep(tmp_path):
    out = tmp_path / "out"
    assert optbench(*QUICK, "--out", str(out), "--shard", "1/2").returncode == 0
    assert optbench(*QUICK, "--out", str(out), "--shard", "2/2").returncode == 0
    (out / "sweep.parquet").unlink()
    redrawn = optbench("plot", str(out), "--format", "png")
    assert redrawn.returncode == 0, redrawn.stderr
    assert len(optbench_api.load(out).summary) == 6  # both shards merged
    assert "sweep_steps_to_target.png" in redrawn.stdout and (out / "sweep_steps_to_target.png").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--batch-size", "16,,64"], "malformed list for --batch-size: '16,,64' has an empty item"),
        (["--batch-size", "0"], "--batch-size must be positive, got 0"),
        (["--batch-size", "16,abc"], "'abc' is not a number"),
        (["--lr-scale", "quadratic"], "unknown lr-scale rule 'quadratic'"),
        (["--momentum", "0,,0.9"], "malformed list for --momentum"),
        (["--momentun", "0.9"], "unknown hyperparameter of sgd 'momentun'; did you mean 'momentum'?"),
        (["--batch-sizes", "4"], "no such option '--batch-sizes'; did you mean '--batch-size'?"),
        (["--shard", "3/2"], "--shard must be I/N"),
        (["--evaluations", "10"], "--evaluations needs a training task"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, expected):
    base = [
        "sweep",
        "--task",
        "surface:elliptic",
        "--optimizer",
        "sgd",
        "--steps",
        "5",
        "--out",
        str(tmp_path),
    ]
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
    victim = min((out / "cells").glob("*.parquet"))
    victim.write_bytes(b"garbage")
    corrupt = optbench(*QUICK, "--out", str(out))
    assert corrupt.returncode == 2 and victim.name in corrupt.stderr and "--force" in corrupt.stderr
    assert len(corrupt.stderr.strip().splitlines()) == 1
    assert optbench(*QUICK, "--out", str(out), "--force").returncode == 0
    changed = optbench(*QUICK[:-2], "--steps", "41", "--out", str(out))
    assert changed.returncode == 2 and "different sweep (steps: 40 -> 41)" in changed.stderr


def test_diverged_cells_are_drawn_not_a_crash(tmp_path):
    """A linear rule that blows up (final loss 1e199 or inf) is an x on the plot, never a traceback."""
    result = CliRunner().invoke(
        main,
        [
            "sweep",
            "--task",
            "surface:elliptic",
            "--noise",
            "20",
            "--batch-size",
            "1,16,64",
            "--lr-scale",
            "linear,none",
            "--optimizer",
            "sgd:lr=0.09",
            "--out",
            str(tmp_path),
            "--format",
            "png",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert summary["diverged"].any() and not summary["diverged"].all()
    assert (tmp_path / "sweep_final_accuracy.png").stat().st_size > 0


SURFACE = ["sweep", "--task", "surface:elliptic", "--optimizer", "sgd", "--steps", "5"]
DIGITS = ["sweep", "--task", "digits", "--steps", "5"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (DIGITS + ["--model", "resnet99"], "unknown model 'resnet99'"),
        (DIGITS + ["--device", "gpu"], "unknown device 'gpu'"),
        pytest.param(
            DIGITS + ["--device", "cuda"],
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        (["sweep", "--task", "mnist", "--steps", "5", "--data-dir", "/nonexistent"], "/nonexistent"),
        (DIGITS + ["--batch-size", "5000"], "5000"),
        (SURFACE + ["--lr", "-0.1"], "-0.1"),
        (SURFACE + ["--momentum", "0,-1"], "-1"),
        (SURFACE + ["--jobs", "0"], "jobs must be a whole number >= 1, got 0"),
        (SURFACE + ["--threads", "0"], "threads must be a whole number >= 1, got 0"),
        (SURFACE + ["--batch-size", "inf"], "'inf' is not finite"),
        (SURFACE + ["--batch-size", "1.5"], "'1.5' is not a whole number"),
        (SURFACE + ["--seeds", "100000000"], "this sweep has 300000000 cells"),
        (SURFACE + ["--device", "cpu"], "--device needs a training task"),
        (SURFACE + ["--data-dir", "/tmp"], "--data-dir needs a training task"),
        (SURFACE + ["--noise", "inf"], "noise must be a finite number >= 0, got inf"),
        (SURFACE + ["--target-loss", "nan"], "target-loss must be a finite number, got nan"),
        (["sweep", "--task", "surface:nowhere", "--steps", "5"], "nowhere"),
    ],
)
def test_a_bad_sweep_writes_nothing(tmp_path, args, expected):
    """Everything is checked before the first cell: one line, exit 2, and not even meta.json written,
    so the corrected command may use the same --out."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    "config, expected",
    [
        ("task: 5\n", "unknown task '5'"),
        ("noise: loud\n", "noise: 'loud' is not a valid float"),
        ("optimizer: {name: sgd}\n", "optimizer must be a spec such as 'adam:lr=0.01'"),
        ("steps: [1, 2]\n", "steps must be a single value"),
        ("jobs: true\n", "jobs must be a single value"),
        ("hparams:\n  momentum: [0, fast]\n", "'fast' is not a number"),
    ],
)
def test_bad_config_values_are_named(tmp_path, config, expected):
    path = tmp_path / "sweep.yaml"
    path.write_text("task: surface:elliptic\nsteps: 5\n" + config)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", "--config", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()


def test_plot_of_a_sweep_with_no_finished_cell_says_so(tmp_path):
    out = tmp_path / "out"
    assert (
        CliRunner()
        .invoke(main, [*SURFACE, "--batch-size", "2", "--out", str(out), "--format", "png"])
        .exit_code
        == 0
    )
    for path in [*out.glob("*.parquet"), *(out / "cells").glob("*.parquet")]:
        path.unlink()
    result = CliRunner().invoke(main, ["plot", str(out)])
    assert result.exit_code == 2 and "no finished sweep cell yet: nothing to draw" in result.stderr


def test_the_api_reproduces_the_command_tables(tmp_path):
    from optbench.sweeps import SweepSpec, sweep

    assert CliRunner().invoke(main, [*QUICK, "--out", str(tmp_path / "cli")]).exit_code == 0
    spec = SweepSpec(
        task="surface:elliptic",
        optimizers=("sgd",),
        batch_sizes=(1, 4, 16),
        lr_scales=("linear", "sqrt"),
        base_lr=0.005,
        noise=20.0,
        steps=40,
        target_loss=100.0,
    )
    sweep(spec, tmp_path / "api").save()
    for name in ("sweep", "summary", "critical"):
        tables = [
            pd.read_parquet(tmp_path / folder / f"{name}.parquet").drop(
                columns=["wall_time", "samples_per_s"], errors="ignore"
            )
            for folder in ("cli", "api")
        ]
        pd.testing.assert_frame_equal(*tables, check_exact=True)


def test_an_unwritable_out_is_refused_before_the_bar(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, [*SURFACE, "--out", str(blocker / "out")])
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
        f"error: cannot write to output folder {blocker / 'out'}: {blocker} is not a writable folder"
    ]
