"""Spec parsing, list parsing and the results folder: the shared input/output plumbing."""

import json

import pandas as pd
import pytest
import torch

from optbench import results
from optbench.errors import OptbenchError
from optbench.optimizers import SGD, Adam
from optbench.specs import parse_optimizer
from optbench.values import parse_number_list, parse_range


def test_spec_with_inline_hyperparameters_builds_our_class():
    spec = parse_optimizer("adam:lr=0.5,betas=0.9/0.99,amsgrad=true")
    optimizer = spec.build([torch.zeros(2, requires_grad=True)])
    assert isinstance(optimizer, Adam)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["amsgrad"]) == (0.5, (0.9, 0.99), True)


def test_torch_prefix_builds_torch_class_and_presets_resolve():
    assert type(parse_optimizer("torch:adam").build([torch.zeros(1, requires_grad=True)])) is torch.optim.Adam
    momentum = parse_optimizer("momentum:lr=0.01").build([torch.zeros(1, requires_grad=True)])
    assert isinstance(momentum, SGD) and momentum.param_groups[0]["momentum"] == 0.9
    assert parse_optimizer("nesterov").resolved()["nesterov"] is True


@pytest.mark.parametrize(
    "text, message",
    [
        ("adma", "did you mean 'adam'"),
        ("adam:lr=abc", "not a number"),
        ("adam:lr", "expected name=value"),
        ("adam:lrr=0.1", "did you mean 'lr'"),
        ("sgd:momentum=0.9,", "an empty item between commas"),  # a trailing comma is refused like ",,"
    ],
)
def test_malformed_specs_are_user_errors(text, message):
    if message is None:
        assert parse_optimizer(text).hparams == {"momentum": 0.9}
        return
    with pytest.raises(OptbenchError, match=message):
        parse_optimizer(text)


def test_torch_argument_errors_become_one_line_user_errors():
    with pytest.raises(OptbenchError, match="Invalid learning rate: -1"):
        parse_optimizer("sgd:lr=-1").build([torch.zeros(1, requires_grad=True)])
    with pytest.raises(OptbenchError, match="Nesterov momentum requires"):
        parse_optimizer("sgd:nesterov=true").build([torch.zeros(1, requires_grad=True)])


def test_number_lists_and_ranges():
    assert parse_number_list("16,64,256", int, "batch size", positive=True) == [16, 64, 256]
    for bad in ("16,,64", "0", "a,2", "1.5"):
        with pytest.raises(OptbenchError):
            parse_number_list(bad, int, "batch size", positive=True)
    lrs = parse_range("1e-4:1:5")
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])  # log by default over decades
    assert parse_range("0:0.9:4") == pytest.approx([0, 0.3, 0.6, 0.9])  # linear from zero
    for bad in ("1:0:5", "0:1:1", "a:b:3", "1:2", "0:1:3:cubic"):
        with pytest.raises(OptbenchError):
            parse_range(bad)


def test_tables_round_trip_and_corrupt_files_are_user_errors(tmp_path):
    table = pd.DataFrame({"step": [0, 1], "loss": [1.0, float("nan")]})
    path = results.write_table(table, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(results.read_table(path, ["step", "loss"]), table)
    with pytest.raises(OptbenchError, match="lacks column"):
        results.read_table(path, ["trial"])
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(OptbenchError, match="corrupt results file"):
        results.read_table(tmp_path / "bad.parquet")
    with pytest.raises(OptbenchError, match="not found"):
        results.read_table(tmp_path / "missing.parquet")


def test_metadata_records_what_made_the_folder(tmp_path):
    results.write_metadata(tmp_path, "compare", {"surface": "elliptic"}, seed=3)
    meta = results.read_metadata(tmp_path)
    assert meta["kind"] == "compare" and meta["seed"] == 3 and meta["torch"] == torch.__version__
    (tmp_path / "meta.json").write_text("{broken")
    with pytest.raises(OptbenchError, match="corrupt"):
        results.read_metadata(tmp_path)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    results.atomic_write_json(target, {"a": 1})

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, "replace", explode)
    with pytest.raises(KeyboardInterrupt):
        results.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_unwritable_output_folder_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OptbenchError, match="cannot write to output folder"):
        results.output_folder(blocker / "sub", "compare")


@pytest.mark.parametrize(
    "text",
    [
        "sgd",
        "momentum:lr=0.05",
        "torch:adam:betas=0.9/0.99,lr=1e-3,amsgrad=true",
        "lbfgs:line_search_fn=strong_wolfe,history_size=5",
        "adagrad:lr=1e-2,eps=1e-10",
    ],
)
def test_to_text_parses_back_to_the_same_optimizer(text):
    spec = parse_optimizer(text)
    again = parse_optimizer(spec.to_text())
    assert (again.algorithm.name, dict(again.hparams), again.use_torch) == (
        spec.algorithm.name,
        dict(spec.hparams),
        spec.use_torch,
    )
    assert (
        again.build([torch.zeros(2, requires_grad=True)]).defaults
        == spec.build([torch.zeros(2, requires_grad=True)]).defaults
    )


def test_a_spec_is_frozen_hashable_and_pickles_for_spawned_processes():
    import dataclasses
    import pickle

    spec = parse_optimizer("momentum:lr=0.05")
    assert spec.to_text() == "sgd:lr=0.05,momentum=0.9"
    assert {spec: 1}[parse_optimizer("momentum:lr=0.05")] == 1
    assert spec != parse_optimizer("momentum:lr=0.06") and spec != parse_optimizer("torch:momentum:lr=0.05")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.text = "adam"
    with pytest.raises(TypeError):
        spec.hparams["lr"] = 1.0
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert dataclasses.replace(spec, hparams={"lr": 0.2}).hparams == {"lr": 0.2}
