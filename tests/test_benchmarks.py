"""The benchmark scripts run to the end with only the base install (no optional reference package)."""

from __future__ import annotations

import sys

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
