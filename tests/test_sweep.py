"""The sweeps package: grid expansion, lr-scaling rules, cell keys, resume, shards, analysis, noise scale."""

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch

from optbench.cells import CellStore
from optbench.errors import OptbenchError
from optbench.sweeps import SweepSpec, load, noise_scale
from optbench.sweeps import sweep as run_sweep
from optbench.sweeps.adapters import ADAPTERS
from optbench.sweeps.analysis import critical_batch_sizes, fit_critical_batch, steps_to_target
from optbench.sweeps.cells import expand, shard_cells
from optbench.sweeps.run import TABLE
from optbench.sweeps.spec import scaled_lr
from optbench.tasks import TaskKind


def cell_path(folder, key):
    return CellStore(folder).table_path(key, TABLE)


SURFACE = SweepSpec(
    batch_sizes=(1, 4, 16),
    lr_scales=("linear", "sqrt", "none"),
    optimizers=("sgd",),
    task="surface:elliptic",
    steps=60,
    noise=20.0,
    base_lr=0.005,
    target_loss=50.0,
)
VOLATILE = ["wall_time", "samples_per_s"]  # timings: the only columns allowed to differ between runs


def test_lr_rules_match_their_formulas():
    assert scaled_lr("linear", 0.1, 64, 16) == pytest.approx(0.4)
    assert scaled_lr("sqrt", 0.1, 64, 16) == pytest.approx(0.2)
    assert scaled_lr("none", 0.1, 64, 16) == 0.1
    cells = expand(SURFACE)
    assert len(cells) == 3 * 3
    for cell in cells:
        expected = {
            "linear": 0.005 * cell.batch_size,
            "sqrt": 0.005 * math.sqrt(cell.batch_size),
            "none": 0.005,
        }[cell.lr_scale]
        assert cell.lr == pytest.approx(expected)
        assert dict(cell.optimizer_hparams)["lr"] == pytest.approx(expected)


def test_grid_crosses_every_axis():
    spec = replace(SURFACE, optimizers=("sgd", "adam"), hparams={"weight_decay": [0, 0.1]}, seeds=2)
    cells = expand(spec)
    assert len(cells) == 2 * 2 * 3 * 3 * 2
    assert len({c.key for c in cells}) == len(cells)


def test_cell_keys_do_not_depend_on_order_or_spelling():
    base = expand(SURFACE)
    reordered = expand(replace(SURFACE, batch_sizes=(16, 1, 4), lr_scales=("none", "linear", "sqrt")))
    assert sorted(c.key for c in base) == sorted(c.key for c in reordered)
    # the same settings reached through a preset hash alike
    a = expand(replace(SURFACE, optimizers=("momentum",)))
    b = expand(replace(SURFACE, optimizers=("sgd:momentum=0.9",)))
    c = expand(replace(SURFACE, optimizers=("sgd",), hparams={"momentum": [0.9]}))
    assert {x.key for x in a} == {x.key for x in b} == {x.key for x in c}
    # ...while any real change makes a different cell, and a value keeps its type: 0 is not 0.0
    assert not {x.key for x in base} & {x.key for x in expand(replace(SURFACE, steps=61))}
    assert (
        expand(replace(SURFACE, hparams={"momentum": [0]}))[0].key
        != expand(replace(SURFACE, hparams={"momentum": [0.0]}))[0].key
    )


def test_seeds_at_and_above_2_to_the_54_are_cells_of_their_own():
    # float(2**54 + 1) == float(2**54): keys made from floats would merge these two seeds
    cells = expand(replace(SURFACE, seed=2**54, seeds=2, batch_sizes=(1,), lr_scales=("none",)))
    assert [c.seed for c in cells] == [2**54, 2**54 + 1]
    assert len({c.key for c in cells}) == 2


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_cover_every_cell_exactly_once(count):
    cells = expand(replace(SURFACE, seeds=2))
    keys = [c.key for i in range(1, count + 1) for c in shard_cells(cells, (i, count))]
    assert sorted(keys) == sorted(c.key for c in cells)


def test_sharded_runs_merge_to_the_whole_sweep(tmp_path):
    whole = run_sweep(SURFACE, tmp_path / "whole")
    for i in (1, 2, 3):
        part = run_sweep(SURFACE, tmp_path / "sharded", shard=(i, 3))
        assert len(part.computed) == 3
    _assert_same_table(load(tmp_path / "sharded").table, whole.table)


def test_rerun_skips_finished_cells_and_recomputes_missing_ones(tmp_path):
    first = run_sweep(SURFACE, tmp_path)
    assert len(first.computed) == 9
    victim = cell_path(tmp_path, first.cells[4].key)
    kept = cell_path(tmp_path, first.cells[0].key)
    mtime = kept.stat().st_mtime_ns
    victim.unlink()
    second = run_sweep(SURFACE, tmp_path)
    assert second.computed == [first.cells[4].key] and len(second.skipped) == 8
    assert kept.stat().st_mtime_ns == mtime
    _assert_same_table(second.table, first.table)


def test_changed_spec_is_refused_unless_forced(tmp_path):
    run_sweep(SURFACE, tmp_path)
    with pytest.raises(OptbenchError, match="different sweep .*batch_sizes.*--force"):
        run_sweep(replace(SURFACE, batch_sizes=(1, 4, 16, 64)), tmp_path)
    forced = run_sweep(replace(SURFACE, batch_sizes=(1, 4, 16, 64)), tmp_path, force=True)
    assert len(forced.computed) == 3 and len(forced.skipped) == 9  # shared cells kept
    # the target is analysis only: changing it reruns nothing
    again = run_sweep(replace(SURFACE, batch_sizes=(1, 4, 16, 64), target_loss=10.0), tmp_path)
    assert again.computed == []


def test_corrupt_cell_is_named_and_force_redoes_it(tmp_path):
    first = run_sweep(SURFACE, tmp_path)
    broken = cell_path(tmp_path, first.cells[2].key)
    broken.write_bytes(b"not parquet")
    with pytest.raises(OptbenchError, match=f"{broken.name}.*--force"):
        run_sweep(SURFACE, tmp_path)
    redone = run_sweep(SURFACE, tmp_path, force=True)
    assert redone.computed == [first.cells[2].key]
    _assert_same_table(redone.table, first.table)


def test_crashing_cell_is_not_recorded(tmp_path, monkeypatch):
    real = ADAPTERS[TaskKind.SURFACE]

    def flaky(task, cell, data_dir):
        if cell.batch_size == 4 and cell.lr_scale == "sqrt":
            raise RuntimeError("simulated crash")
        return real(task, cell, data_dir)

    monkeypatch.setitem(ADAPTERS, TaskKind.SURFACE, flaky)
    outcome = run_sweep(SURFACE, tmp_path)
    assert len(outcome.failed) == 1 and "simulated crash" in next(iter(outcome.failed.values()))
    assert not cell_path(tmp_path, next(iter(outcome.failed))).exists()
    assert len(list((tmp_path / "cells").glob("*.done"))) == 8
    monkeypatch.setitem(ADAPTERS, TaskKind.SURFACE, real)
    assert len(run_sweep(SURFACE, tmp_path).computed) == 1


def test_diverged_cell_is_a_result(tmp_path):
    outcome = run_sweep(
        replace(SURFACE, batch_sizes=(64,), lr_scales=("linear",), base_batch_size=1), tmp_path
    )
    assert outcome.failed == {} and bool(outcome.summary["diverged"].iloc[0])


def test_parallel_jobs_give_the_same_table(tmp_path):
    spec = replace(SURFACE, task="regression", steps=30, noise=1.0, target_loss=1.0, base_lr=0.01)
    serial = run_sweep(spec, tmp_path / "serial")
    parallel = run_sweep(spec, tmp_path / "parallel", jobs=2)
    _assert_same_table(parallel.table, serial.table)


def test_training_cell_on_digits(tmp_path):
    spec = SweepSpec(
        batch_sizes=(32, 128),
        lr_scales=("linear",),
        optimizers=("momentum",),
        steps=12,
        base_lr=0.01,
        target_accuracy=0.2,
        device="cpu",
    )
    outcome = run_sweep(spec, tmp_path)
    summary = outcome.summary.sort_values("batch_size")
    assert summary["steps"].tolist() == [12, 12]
    assert summary["lr"].tolist() == pytest.approx([0.01, 0.04])
    assert (summary["noise_scale_start"] > 0).all() and (summary["noise_scale_end"] > 0).all()
    evaluated = outcome.table.dropna(subset=["eval_accuracy"])
    assert set(evaluated.groupby("batch_size")["step"].max()) == {12}


def test_training_cells_evaluate_within_epochs(tmp_path):
    """Steps-to-target needs evaluations between epoch ends: `evaluations` per cell, evenly spaced,
    every step by default for short budgets; the number is part of the cell key."""
    spec = SweepSpec(
        batch_sizes=(32,),
        lr_scales=("none",),
        optimizers=("momentum",),
        steps=12,
        base_lr=0.01,
        device="cpu",
        evaluations=4,
    )
    outcome = run_sweep(spec, tmp_path)
    evaluated = outcome.table.dropna(subset=["eval_accuracy"])
    assert evaluated["step"].tolist() == [3, 6, 9, 12]
    assert evaluated["eval_loss"].notna().all()
    default = replace(spec, evaluations=None)
    assert expand(default)[0].evaluations == 400  # 12 steps: every step
    assert expand(default)[0].key != outcome.cells[0].key
    with pytest.raises(OptbenchError, match="different sweep .*evaluations"):
        run_sweep(default, tmp_path)
    with pytest.raises(OptbenchError, match="--evaluations needs a training task"):
        expand(replace(SURFACE, evaluations=10))


def test_identical_cells_share_one_computation(tmp_path, monkeypatch):
    """At the base batch size linear, sqrt and none give the same lr: one run, listed under each rule."""
    cells = expand(SURFACE)
    at_b0 = [c for c in cells if c.batch_size == 1]
    assert len({c.computation for c in at_b0}) == 1 and len({c.key for c in at_b0}) == 3
    assert len({c.computation for c in cells}) == 7
    real, calls = ADAPTERS[TaskKind.SURFACE], []

    def counted(task, cell, data_dir):
        calls.append(cell.key)
        return real(task, cell, data_dir)

    monkeypatch.setitem(ADAPTERS, TaskKind.SURFACE, counted)
    outcome = run_sweep(SURFACE, tmp_path)
    assert len(calls) == 7 and len(outcome.computed) == 9 and len(outcome.shared) == 2
    assert len(outcome.summary) == 9
    rows = outcome.table[outcome.table["batch_size"] == 1]
    assert sorted(rows["lr_scale"].unique()) == ["linear", "none", "sqrt"]
    per_rule = [
        part.drop(columns=["cell", "lr_scale"]).reset_index(drop=True) for _, part in rows.groupby("lr_scale")
    ]
    pd.testing.assert_frame_equal(per_rule[0], per_rule[1])
    pd.testing.assert_frame_equal(per_rule[0], per_rule[2])

    # a lost copy is rewritten from its finished twin, not recomputed
    copy = next(c for c in at_b0 if c.key in outcome.shared)
    cell_path(tmp_path, copy.key).unlink()
    calls.clear()
    again = run_sweep(SURFACE, tmp_path)
    assert calls == [] and again.computed == again.shared == [copy.key]
    _assert_same_table(again.table, outcome.table)


def test_shards_share_a_computation_through_the_folder(tmp_path, monkeypatch):
    real, calls = ADAPTERS[TaskKind.SURFACE], []
    monkeypatch.setitem(
        ADAPTERS,
        TaskKind.SURFACE,
        lambda task, cell, data_dir: calls.append(cell) or real(task, cell, data_dir),
    )
    first = run_sweep(SURFACE, tmp_path, shard=(1, 2))  # linear and none at B=1 (one run), and 3 more
    assert len(calls) == 4 and len(first.computed) == 5 and len(first.shared) == 1
    second = run_sweep(SURFACE, tmp_path, shard=(2, 2))  # sqrt at B=1: copied from shard 1's file
    assert len(calls) == 7 == len({c.computation for c in expand(SURFACE)})
    assert len(second.computed) == 4 and [c.lr_scale for c in second.cells if c.key in second.shared] == [
        "sqrt"
    ]
    _assert_same_table(second.table, run_sweep(SURFACE, tmp_path / "whole").table)


def test_a_failed_computation_fails_every_cell_that_shares_it(tmp_path, monkeypatch):
    real = ADAPTERS[TaskKind.SURFACE]

    def flaky(task, cell, data_dir):
        if cell.batch_size == 1:
            raise RuntimeError("simulated crash")
        return real(task, cell, data_dir)

    monkeypatch.setitem(ADAPTERS, TaskKind.SURFACE, flaky)
    outcome = run_sweep(SURFACE, tmp_path)
    assert len(outcome.failed) == 3 and len(outcome.computed) == 6
    assert not any(cell_path(tmp_path, key).exists() for key in outcome.failed)


def test_steps_to_target_interpolates_between_evaluations():
    evaluated = pd.DataFrame(
        {"step": [10, 20, 30], "eval_accuracy": [0.5, 0.7, 0.9], "eval_loss": [3, 2, 1.0]}
    )
    assert steps_to_target(evaluated, target_accuracy=0.8) == pytest.approx(25)
    assert steps_to_target(evaluated, target_loss=1.5) == pytest.approx(25)
    assert steps_to_target(evaluated, target_accuracy=0.6, target_loss=1.5) == pytest.approx(25)
    assert steps_to_target(evaluated, target_accuracy=0.4) == 10
    assert math.isnan(steps_to_target(evaluated, target_accuracy=0.95))


def test_critical_batch_fit_recovers_the_model():
    batch_sizes = [8, 16, 32, 64, 128, 256, 512, 1024]
    steps = [1000 * (1 + 100 / b) for b in batch_sizes]
    s_min, b_crit, at_edge = fit_critical_batch(batch_sizes, steps)
    assert s_min == pytest.approx(1000, rel=0.01) and b_crit == pytest.approx(100, rel=0.01) and not at_edge


def test_critical_batch_table_uses_the_best_rule_per_batch_size():
    rows = []
    for b in (1, 2, 4, 8, 16, 32):
        for rule, factor in (("linear", 1.0), ("none", 3.0)):
            rows.append(
                {
                    "cell": f"{rule}{b}",
                    "task": "t",
                    "optimizer": "sgd",
                    "family": "sgd",
                    "optimizer_spec": "sgd",
                    "lr_scale": rule,
                    "batch_size": b,
                    "base_batch_size": 1,
                    "base_lr": 0.1,
                    "lr": 0.1,
                    "seed": 0,
                    "steps_to_target": factor * 50 * (1 + 4 / b),
                    "noise_scale_start": 1.0,
                    "noise_scale_end": 2.0,
                    "diverged": False,
                }
            )
    critical = critical_batch_sizes(pd.DataFrame(rows))
    best = critical[critical["lr_scale"] == "best rule"].iloc[0]
    assert best["critical_batch_size"] == pytest.approx(4, rel=0.01) and best["s_min"] == pytest.approx(
        50, rel=0.01
    )


def test_noise_scale_estimator_matches_the_closed_form():
    """Noisy gradients G + N(0, σ²/B I): B_simple = dim σ² / |G|² exactly."""
    gradient = torch.tensor([3.0, -4.0, 1.0, 2.0], dtype=torch.float64)
    sigma = 2.0

    def batch_gradient(batch, generator):
        return gradient + sigma / math.sqrt(batch) * torch.randn(4, generator=generator, dtype=torch.float64)

    measured = noise_scale.estimate(batch_gradient, small=2, big=64, repeats=4000, seed=1)
    truth = 4 * sigma**2 / gradient.pow(2).sum().item()
    assert measured.b_simple == pytest.approx(truth, rel=0.05)
    assert measured.trace_sigma == pytest.approx(4 * sigma**2, rel=0.05)


def test_noise_scale_of_a_classifier_matches_per_sample_gradients():
    """Finite population: the estimate from batch norms equals tr(Σ)/|G|² from all per-sample gradients."""
    torch.manual_seed(0)
    network = torch.nn.Linear(5, 3).double()
    images, labels = torch.randn(40, 5, dtype=torch.float64), torch.randint(0, 3, (40,))
    per_sample = []
    for i in range(40):
        network.zero_grad()
        torch.nn.functional.cross_entropy(network(images[i : i + 1]), labels[i : i + 1]).backward()
        per_sample.append(torch.cat([p.grad.reshape(-1) for p in network.parameters()]).clone())
    per_sample = torch.stack(per_sample)
    mean = per_sample.mean(0)
    trace = per_sample.var(0, unbiased=True).sum().item()
    truth = trace / mean.pow(2).sum().item()
    measured = noise_scale.for_classifier(network, images, labels, small=8, repeats=1500)
    assert measured.b_simple == pytest.approx(truth, rel=0.1)
    assert measured.grad_norm_sq == pytest.approx(mean.pow(2).sum().item(), rel=1e-6)  # float32 loss


@pytest.mark.parametrize(
    "change, message",
    [
        ({"batch_sizes": (16, 0)}, "batch size must be a whole number >= 1, got 0"),
        ({"lr_scales": ("quadratic",)}, "unknown lr-scale rule 'quadratic'"),
        ({"seeds": 0}, "seeds must be"),
        ({"optimizers": ("adma",)}, "did you mean 'adam'"),
        ({"optimizers": ("momentum", "sgd:momentum=0.9")}, "are the same setting"),
        ({"epochs": 3}, "a surface has no epochs"),
        ({"target_accuracy": 0.9}, "has no accuracy"),
    ],
)
def test_bad_specs_are_user_errors(change, message):
    with pytest.raises(OptbenchError, match=message):
        expand(replace(SURFACE, **change))


def _assert_same_table(a: pd.DataFrame, b: pd.DataFrame):
    key = ["cell", "step"]
    a = a.drop(columns=VOLATILE).sort_values(key).reset_index(drop=True)
    b = b.drop(columns=VOLATILE).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_a_result_saved_elsewhere_loads_back(tmp_path):
    """`save(folder)` into another folder writes the tables and a meta.json that `load` reads back,
    and no figure; the sweep's own folder is not touched."""
    result = run_sweep(replace(SURFACE, batch_sizes=(1, 4)), tmp_path / "sweep")
    copy = result.save(tmp_path / "copy")
    assert sorted(p.name for p in copy.iterdir() if not p.name.startswith(".")) == [
        "critical.parquet",
        "meta.json",
        "summary.parquet",
        "sweep.parquet",
    ]
    assert not (tmp_path / "sweep" / "sweep.parquet").exists()
    loaded = load(tmp_path / "copy")
    pd.testing.assert_frame_equal(loaded.summary, result.summary)
    pd.testing.assert_frame_equal(load(tmp_path / "sweep").table, result.table)


def test_cells_are_frozen_and_typed():
    cell = expand(SURFACE)[0]
    with pytest.raises(AttributeError):
        cell.lr = 1.0
    assert {cell: 1}[replace(cell)] == 1 and replace(cell).key == cell.key
    assert replace(cell, threads=2).key != cell.key  # threads change the bits: another cell
    assert replace(cell, lr_scale="none").computation == cell.computation
