"""The benchmark scripts run to the end with only the base install (no optional reference package)."""

from __future__ import annotations

import sys

import torch

from benchmarks import step_cost
from optbench.optimizers.registry import ALGORITHMS


def test_step_cost_skips_the_reference_it_cannot_import_and_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "lion_pytorch", None)  # importing it now raises ImportError
    skipped = []
    labels = [label for label, _, _ in step_cost.variants(ALGORITHMS["lion"], skipped)]
    assert labels == ["ours"]
    assert skipped == [
        "lion: no reference columns, the reference for 'lion' needs lion-pytorch, which is not "
        'installed: pip install "optbench[zoo]"'
    ]


def test_step_cost_finishes_a_row_without_the_reference(monkeypatch):
    monkeypatch.setitem(sys.modules, "lion_pytorch", None)
    skipped = []
    row = step_cost.measure(ALGORITHMS["lion"], [(3, 4), (5,)], "cpu", 2, bandwidth=1e10, skipped=skipped)
    assert row["ours"] > 0 and "torch for-loop" not in row
    assert step_cost.combine([row], ["ours", "torch for-loop"], [("ours", "torch for-loop")]) == [
        f"{row['ours']:.3f}",
        "-",
        "-",
    ]
    assert any("lion-pytorch" in note for note in skipped)


def test_step_cost_keeps_the_torch_columns_where_the_reference_exists():
    skipped = []
    labels = [label for label, _, _ in step_cost.variants(ALGORITHMS["adam"], skipped)]
    assert {"ours", "torch for-loop", "torch foreach", "torch fused"} <= set(labels) and skipped == []


def test_step_cost_times_every_variant_on_the_wall_and_the_cpu_clock():
    row = step_cost.measure(
        ALGORITHMS["sgd"], [(3, 4), (5,)], "cpu", 2, bandwidth={"wall": 1e10, "cpu": 2e10}, fresh_grads=True
    )
    timed = {"ours", "fast", "fast eager", "fast compiled", "torch for-loop", "torch foreach", "torch fused"}
    assert {label for label in timed if row.get(label)} == timed
    assert {label for label in timed if row["cpu"].get(label)} == timed
    assert row["floor"] == 2 * row["cpu"]["floor"]


def test_fresh_gradients_are_new_tensors_with_the_same_values():
    params = step_cost.make_params([(3, 4), (5,)], "cpu", sparse=False)
    before = [p.grad for p in params]
    regrade = step_cost._regrader(params)
    for p in params:
        p.grad = torch.zeros_like(p)  # what a step of the fast path leaves: its buffer's views
    regrade()
    assert all(p.grad is not g and torch.equal(p.grad, g) for p, g in zip(params, before, strict=True))
