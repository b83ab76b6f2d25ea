"""`--threads` in train and compare: torch's thread count for the runs, restored after, recorded."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import optbench
from optbench.cli import main
from optbench.errors import OptbenchError


def test_compare_runs_at_the_given_threads_restores_torch_and_records_it():
    before = torch.get_num_threads()
    result = optbench.compare(["sgd"], "elliptic", steps=5, threads=1)
    assert result.meta["threads"] == 1
    assert torch.get_num_threads() == before
    assert optbench.compare(["sgd"], "elliptic", steps=5).meta["threads"] == before


def test_train_records_the_threads_and_numbers_do_not_depend_on_the_default(tmp_path):
    args = dict(task="digits", model="mlp", epochs=1)
    one = optbench.train("sgd", threads=1, **args)
    assert one.meta["threads"] == 1
    out = tmp_path / "run"
    done = CliRunner().invoke(
        main,
        ["train", "--model", "mlp", "--epochs", "1", "--threads", "1", "--out", str(out), "--format", "png"],
    )
    assert done.exit_code == 0, done.output
    assert json.loads((out / "meta.json").read_text())["spec"]["threads"] == 1


@pytest.mark.parametrize("bad", [0, -2, 2000, 1.5, True])
def test_bad_thread_counts_are_user_errors(bad):
    with pytest.raises(OptbenchError, match="threads must be"):
        optbench.compare(["sgd"], "elliptic", steps=5, threads=bad)


def test_threads_do_not_apply_to_the_regression_examples():
    with pytest.raises(OptbenchError, match="threads does not apply to task 'scalar'"):
        optbench.train("sgd", "scalar", threads=2)
