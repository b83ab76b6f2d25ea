"""`optbench train`: tables, figures and meta.json; the scalar trace; one-line errors with exit 2."""

import subprocess
import sys

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from optbench.cli import main
from optbench.results import read_metadata


def run(*args):
    return CliRunner().invoke(main, ["train", *args], catch_exceptions=False)


def test_scalar_trace_prints_the_worked_example(tmp_path):
    result = run("--task", "scalar", "--trace", "--out", str(tmp_path), "--format", "png")
    assert result.exit_code == 0, result.output
    for number in ("1.8", "1.96", "1.992", "-8", "-1.6", "-0.32", "0.0064"):
        assert number in result.output
    trace = pd.read_parquet(tmp_path / "trace.parquet")
    assert trace["a_next"].round(12).tolist() == [1.8, 1.96, 1.992]
    assert (tmp_path / "trace.png").exists()


def test_two_optimizers_one_comparison_with_a_diverging_one(tmp_path):
    result = run(
        "--model",
        "mlp",
        "--optimizer",
        "momentum:lr=0.05",
        "--optimizer",
        "sgd:lr=1e4",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
        "--format",
        "png,svg",
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert summary["optimizer"].tolist() == ["momentum:lr=0.05", "sgd:lr=1e4"]
    assert summary["diverged"].tolist() == [False, True]
    assert summary["final_val_accuracy"].iloc[0] > 0.8
    epochs = pd.read_parquet(tmp_path / "epochs.parquet")
    assert set(epochs.columns) >= {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "epoch_time",
        "samples_per_s",
        "diverged",
        "lr",
    }
    steps = pd.read_parquet(tmp_path / "steps.parquet")
    assert set(steps.columns) >= {"optimizer", "step", "loss", "lr"}
    assert (tmp_path / "training.png").exists() and (tmp_path / "training.svg").exists()
    meta = read_metadata(tmp_path)
    assert meta["kind"] == "train" and meta["seed"] == 0
    assert meta["spec"]["runs"][0]["optimizer_hparams"]["momentum"] == 0.9
    assert "diverged" in result.output


def test_plot_redraws_a_training_folder(tmp_path):
    run(
        "--task",
        "linreg",
        "--optimizer",
        "sgd",
        "--optimizer",
        "adam:lr=0.05",
        "--out",
        str(tmp_path),
        "--format",
        "png",
    )
    (tmp_path / "regression.png").unlink()
    result = CliRunner().invoke(main, ["plot", str(tmp_path), "--format", "pdf"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "regression.pdf").exists()


def test_linreg_prints_recovered_parameters(tmp_path):
    result = run("--task", "linreg", "--out", str(tmp_path), "--format", "png")
    assert result.exit_code == 0
    assert "least squares" in result.output and "2.000" in result.output and "4.19" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "imagenet"], "unknown task 'imagenet'"),
        (["--model", "vgg"], "unknown model 'vgg'"),
        (["--schedule", "cosin"], "unknown schedule 'cosin'"),
        (["--batch-size", "4096"], "batch size 4096 is larger than the 1438 training samples"),
        (["--task", "mnist", "--data-dir", "/nonexistent/folder"], "data folder not found"),
        (["--task", "cifar10"], "needs --data-dir"),
        (["--optimizer", "adma"], "did you mean 'adam'"),
        (["--trace"], "--trace applies to --task scalar"),
        (["--format", "gif"], "unknown figure format"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", *args, "--device", "cpu", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_idx_file_names_it(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    result = CliRunner().invoke(main, ["train", "--task", "mnist", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "is missing 'train-labels-idx1-ubyte'" in result.output or "truncated" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_from_the_real_entry_point(tmp_path):
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            "from optbench.cli import entry; entry()",
            "train",
            "--device",
            "cuda",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0]


def test_eval_every_writes_the_evaluations_table(tmp_path):
    result = run(
        "--optimizer", "adam", "--epochs", "1", "--eval-every", "5", "--out", str(tmp_path), "--format", "png"
    )
    assert result.exit_code == 0, result.output
    evaluations = pd.read_parquet(tmp_path / "evaluations.parquet")
    assert evaluations["step"].tolist() == [5, 10, 15, 20, 22]  # every 5 steps, and the epoch's end
    epochs = pd.read_parquet(tmp_path / "epochs.parquet")
    assert evaluations["val_accuracy"].iloc[-1] == epochs["val_accuracy"].iloc[-1]


# --- the Python API, resuming, and the regression alias ---------------------------------------

TIMING = ["epoch_time", "samples_per_s", "elapsed", "train_time"]


def tables_of(folder):
    return {
        path.stem: pd.read_parquet(path).drop(columns=TIMING, errors="ignore")
        for path in sorted(folder.glob("*.parquet"))
    }


@pytest.mark.parametrize(
    "args, call",
    [
        (
            [
                "--model",
                "mlp",
                "--optimizer",
                "sgd",
                "--optimizer",
                "adam",
                "--epochs",
                "1",
                "--eval-every",
                "7",
            ],
            dict(optimizers=["sgd", "adam"], task="digits", model="mlp", epochs=1, eval_every_steps=7),
        ),
        (
            ["--task", "linreg", "--optimizer", "sgd", "--optimizer", "adam:lr=0.05", "--seed", "3"],
            dict(optimizers=["sgd", "adam:lr=0.05"], task="linreg", seed=3),
        ),
        (
            ["--task", "scalar", "--optimizer", "sgd", "--optimizer", "torch:sgd:lr=0.2", "--epochs", "4"],
            dict(optimizers=["sgd", "torch:sgd:lr=0.2"], task="scalar", epochs=4),
        ),
    ],
)
def test_the_api_reproduces_the_cli_tables(tmp_path, args, call):
    from optbench.experiments.training import train

    assert run(*args, "--device", "cpu", "--out", str(tmp_path / "cli"), "--format", "png").exit_code == 0
    result = train(**call, device="cpu")
    result.save(tmp_path / "api")
    cli, api = tables_of(tmp_path / "cli"), tables_of(tmp_path / "api")
    assert sorted(cli) == sorted(api) and cli
    for name in cli:
        pd.testing.assert_frame_equal(cli[name], api[name], check_exact=True)
        pd.testing.assert_frame_equal(getattr(result, name).drop(columns=TIMING, errors="ignore"), api[name])
    assert read_metadata(tmp_path / "api")["spec"] == read_metadata(tmp_path / "cli")["spec"]


def test_the_api_result_plots_its_tables():
    from optbench.experiments.training import train

    figures = train(["sgd", "adam:lr=0.05"], task="linreg", epochs=1).plot()
    assert list(figures) == ["regression"]
    ax = figures["regression"].axes[0]
    from optbench.runners.regression import REGRESSION

    assert [line.get_label() for line in ax.get_lines()] == [
        f"sgd (lr={REGRESSION['lr']:.3g})",
        "adam (lr=0.05)",
    ]
    assert ax.get_yscale() == "log" and "f*" in ax.get_ylabel()
    assert ax.get_lines()[0].get_color() != ax.get_lines()[1].get_color()


def test_task_regression_is_linreg(tmp_path):
    for task in ("regression", "linreg"):
        result = run(
            "--task",
            task,
            "--optimizer",
            "momentum:lr=0.01",
            "--out",
            str(tmp_path / task),
            "--format",
            "png",
        )
        assert result.exit_code == 0, result.output
        assert "least squares" in result.output
    pd.testing.assert_frame_equal(
        *(pd.read_parquet(tmp_path / task / "regression.parquet") for task in ("regression", "linreg"))
    )


def test_a_rerun_skips_finished_runs_and_recomputes_an_unfinished_one(tmp_path, monkeypatch):
    import optbench.experiments.training as api

    args = [
        "--model",
        "mlp",
        "--optimizer",
        "sgd",
        "--optimizer",
        "adam",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
        "--format",
        "png",
    ]
    assert run(*args).exit_code == 0
    first = tables_of(tmp_path)
    done = sorted((tmp_path / "cells").glob("*.done"))
    assert len(done) == 2
    trained = []
    real = api.train_one
    monkeypatch.setattr(
        api, "train_one", lambda spec, *a, **k: trained.append(spec.optimizer.name) or real(spec, *a, **k)
    )
    assert run(*args).exit_code == 0  # everything finished: nothing is trained again
    assert trained == []
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    adam_cell = next(
        p for p in done if pd.read_parquet(p.with_suffix(".summary.parquet"))["optimizer"].item() == "adam"
    )
    adam_cell.unlink()  # as if killed while adam was training
    assert run(*args).exit_code == 0
    assert trained == ["adam"]
    again = tables_of(tmp_path)
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
    assert summary["optimizer"].tolist() == ["sgd", "adam"]


def test_a_different_run_into_the_same_folder_is_refused_unless_forced(tmp_path):
    base = ["--task", "linreg", "--optimizer", "sgd", "--out", str(tmp_path), "--format", "png"]
    assert run(*base).exit_code == 0
    before = (tmp_path / "regression.parquet").read_bytes()
    refused = CliRunner().invoke(main, ["train", *base, "--epochs", "1"])
    assert refused.exit_code == 2
    assert "holds a different train (epochs: 3 -> 1)" in refused.output and "--force" in refused.output
    assert (tmp_path / "regression.parquet").read_bytes() == before
    forced = run(*base, "--epochs", "1", "--force")
    assert forced.exit_code == 0, forced.output
    assert len(pd.read_parquet(tmp_path / "regression.parquet")) == 100  # one epoch of 10-sample batches
    assert len(list((tmp_path / "cells").glob("*.done"))) == 2  # the old run's cell stays, unread
    assert read_metadata(tmp_path)["spec"]["epochs"] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizer", "sgd", "--optimizer", "sgd"], "optimizer 'sgd' is given twice"),
        (["--epochs", "0"], "epochs must be at least 1, got 0"),
        (["--batch-size", "0"], "batch size must be at least 1, got 0"),
        (["--nproc", "0"], "nproc must be at least 1, got 0"),
        (["--task", "linreg", "--model", "mlp"], "model does not apply to task 'linreg'"),
        (["--task", "scalar", "--batch-size", "4"], "batch size does not apply to task 'scalar'"),
        (
            ["--task", "linreg", "--batch-size", "5000"],
            "batch size 5000 is larger than the 1000 regression samples",
        ),
        (["--task", "surface:elliptic"], "use `optbench compare --surface`"),
    ],
)
def test_settings_that_cannot_apply_are_refused_before_anything_is_written(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
