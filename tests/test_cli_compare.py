"""`optbench compare`, `optbench grid` and `optbench plot` end to end, and their one-line errors."""

import os

import pandas as pd
import pytest
from click.testing import CliRunner

from optbench.cli import main
from optbench.results import read_metadata


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_compare_writes_tables_meta_and_figures(tmp_path):
    out = tmp_path / "cmp"
    result = invoke(
        "compare",
        "sgd",
        "adam",
        "torch:adam",
        "--surface",
        "elliptic",
        "--steps",
        "30",
        "--format",
        "png",
        "--out",
        str(out),
        "--animate",
    )
    assert result.exit_code == 0, result.output
    assert "sgd" in result.output and "distance" in result.output
    for name in (
        "trajectory.parquet",
        "metrics.parquet",
        "meta.json",
        "trajectories.png",
        "loss.png",
        "trajectories.gif",
    ):
        assert (out / name).stat().st_size > 0
    meta = read_metadata(out)
    assert meta["kind"] == "compare" and meta["spec"]["surface"] == "elliptic" and meta["seed"] == 0
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics["optimizer"]) == ["sgd", "adam", "torch:adam"]
    ours, theirs = metrics.iloc[1], metrics.iloc[2]
    assert ours["final_loss"] == pytest.approx(theirs["final_loss"], rel=1e-9)


def test_same_seed_same_tables(tmp_path):
    args = [
        "compare",
        "momentum",
        "rmsprop",
        "--surface",
        "himmelblau",
        "--trials",
        "4",
        "--noise",
        "0.3",
        "--steps",
        "20",
        "--format",
        "png",
        "--seed",
        "7",
    ]
    assert invoke(*args, "--out", str(tmp_path / "a")).exit_code == 0
    assert invoke(*args, "--out", str(tmp_path / "b")).exit_code == 0
    for table in ("trajectory.parquet", "metrics.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "a" / table), pd.read_parquet(tmp_path / "b" / table)
        )
    starts = pd.read_parquet(tmp_path / "a" / "metrics.parquet")[["start_x", "start_y"]].drop_duplicates()
    assert len(starts) == 4  # random starts, shared by both optimizers


def test_grid_heat_map_and_plot_redraw(tmp_path):
    out = tmp_path / "grid"
    result = invoke(
        "grid",
        "sgd",
        "--surface",
        "elliptic",
        "--lr",
        "1e-3:1:8",
        "--momentum",
        "0:0.9:5",
        "--steps",
        "50",
        "--format",
        "png",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert len(metrics) == 40 and metrics["diverged"].any() and not metrics["diverged"].all()
    # lr = 1 diverges on x² + 10y² whatever the momentum (stable only below 2/20 without momentum)
    assert metrics[metrics["lr"] == metrics["lr"].max()]["diverged"].all()
    (out / "grid.png").unlink()
    redraw = invoke("plot", str(out), "--format", "png,svg")
    assert redraw.exit_code == 0, redraw.output
    assert (out / "grid.png").exists() and (out / "grid.svg").exists()


def test_plot_redraws_compare(tmp_path):
    out = tmp_path / "cmp"
    assert (
        invoke("compare", "sgd", "adam", "--steps", "10", "--format", "png", "--out", str(out)).exit_code == 0
    )
    for name in ("trajectories.png", "loss.png"):
        (out / name).unlink()
    result = invoke("plot", str(out), "--format", "png")
    assert result.exit_code == 0, result.output
    assert (out / "trajectories.png").exists() and (out / "loss.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "sgd", "--surface", "eliptic"], "unknown surface 'eliptic'; did you mean 'elliptic'"),
        (["compare", "adma"], "unknown optimizer 'adma'; did you mean 'adam'"),
        (["compare", "adam:lr=abc"], "lr=abc"),
        (["grid", "sgd", "--lr", "1:0:5", "--momentum", "0:0.9:3"], "STOP must be larger"),
        (["grid", "sgd", "--lr", "1e-3:1:5"], "exactly two axes"),
        (["grid", "sgd", "--lr", "1e-3:1:5", "--vary", "alpha=0:1:3"], "cannot vary 'alpha'"),
        (["compare", "sgd", "--start", "100,0"], "outside the plot window"),
        (["compare", "sgd", "--start", "1,2,3"], "needs 2 coordinates"),
        (["compare", "sgd", "--steps", "-5"], "--steps must be >= 1"),
        (["compare", "sgd", "--trials", "0"], "--trials must be >= 1"),
        (["compare", "sgd", "--format", "gif"], "unknown figure format"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    result = invoke(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # nothing written, not even an empty folder


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_reported_before_work(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = invoke("compare", "sgd", "--out", str(locked / "results"))
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2
    assert "cannot write to output folder" in result.output


def test_out_under_a_file_is_reported_before_work(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = invoke(
        "grid", "sgd", "--lr", "1e-3:1:4", "--momentum", "0:0.9:4", "--out", str(blocker / "results")
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot write to output folder" in lines[0]
