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
    result = run("--model", "mlp", "--optimizer", "momentum:lr=0.05", "--optimizer", "sgd:lr=1e4",
                 "--epochs", "2", "--device", "cpu", "--out", str(tmp_path), "--format", "png,svg")
    assert result.exit_code == 0, result.output
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert summary["optimizer"].tolist() == ["momentum:lr=0.05", "sgd:lr=1e4"]
    assert summary["diverged"].tolist() == [False, True]
    assert summary["final_val_accuracy"].iloc[0] > 0.8
    epochs = pd.read_parquet(tmp_path / "epochs.parquet")
    assert set(epochs.columns) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time",
                                   "samples_per_s", "diverged", "lr"}
    steps = pd.read_parquet(tmp_path / "steps.parquet")
    assert set(steps.columns) >= {"optimizer", "step", "loss", "lr"}
    assert (tmp_path / "training.png").exists() and (tmp_path / "training.svg").exists()
    meta = read_metadata(tmp_path)
    assert meta["kind"] == "train" and meta["seed"] == 0
    assert meta["spec"]["runs"][0]["optimizer_hparams"]["momentum"] == 0.9
    assert "diverged" in result.output


def test_plot_redraws_a_training_folder(tmp_path):
    run("--task", "linreg", "--optimizer", "sgd", "--optimizer", "adam:lr=0.05", "--out", str(tmp_path),
        "--format", "png")
    (tmp_path / "regression.png").unlink()
    result = CliRunner().invoke(main, ["plot", str(tmp_path), "--format", "pdf"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "regression.pdf").exists()


def test_linreg_prints_recovered_parameters(tmp_path):
    result = run("--task", "linreg", "--out", str(tmp_path), "--format", "png")
    assert result.exit_code == 0
    assert "least squares" in result.output and "2.000" in result.output and "4.19" in result.output


@pytest.mark.parametrize("args, message", [
    (["--task", "imagenet"], "unknown task 'imagenet'"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--schedule", "cosin"], "unknown schedule 'cosin'"),
    (["--batch-size", "4096"], "batch size 4096 is larger than the 1438 training samples"),
    (["--task", "mnist", "--data-dir", "/nonexistent/folder"], "data folder not found"),
    (["--task", "cifar10"], "needs --data-dir"),
    (["--optimizer", "adma"], "did you mean 'adam'"),
    (["--trace"], "--trace applies to --task scalar"),
    (["--format", "gif"], "unknown figure format"),
])
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
    process = subprocess.run([sys.executable, "-c", "from optbench.cli import entry; entry()", "train",
                              "--device", "cuda", "--out", str(tmp_path)], capture_output=True, text=True)
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0]


def test_eval_every_writes_the_evaluations_table(tmp_path):
    result = run("--optimizer", "adam", "--epochs", "1", "--eval-every", "5", "--out", str(tmp_path),
                 "--format", "png")
    assert result.exit_code == 0, result.output
    evaluations = pd.read_parquet(tmp_path / "evaluations.parquet")
    assert evaluations["step"].tolist() == [5, 10, 15, 20, 22]   # every 5 steps, and the epoch's end
    epochs = pd.read_parquet(tmp_path / "epochs.parquet")
    assert evaluations["val_accuracy"].iloc[-1] == epochs["val_accuracy"].iloc[-1]
