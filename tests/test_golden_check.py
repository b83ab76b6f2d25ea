"""The golden check's comparison (tests/golden/golden.py): it lets a last-bit difference through and
nothing more."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

spec = importlib.util.spec_from_file_location("golden", Path(__file__).parent / "golden" / "golden.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)


@pytest.fixture
def want():
    return pd.DataFrame(
        {"optimizer": ["sgd", "adam"], "loss": [2.0, 1e-3], "first_step": [None, 4], "steps": [100, 100]}
    )


def test_a_last_bit_difference_passes(want):
    got = want.copy()
    got["loss"] = np.nextafter(got["loss"].to_numpy(), np.inf)
    worst, difference = golden.deviation(got, want, 1e-9)
    assert difference is None and worst <= 1


def test_a_changed_number_fails(want):
    got = want.copy()
    got.loc[1, "loss"] = 1.1e-3
    worst, difference = golden.deviation(got, want, 1e-4)
    assert difference is None and worst > 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.assign(optimizer=["sgd", "adamw"]), "optimizer: text changed"),
        (lambda f: f.assign(loss=[2.0, np.nan]), "loss: NaN or inf"),
        (lambda f: f.assign(loss=[np.inf, 1e-3]), "loss: NaN or inf"),
        (lambda f: f.drop(columns="steps"), "columns"),
        (lambda f: f.iloc[:1], "2 rows -> 1"),
    ],
)
def test_a_structural_change_fails_whatever_the_tolerance(want, change, message):
    worst, difference = golden.deviation(change(want.copy()), want, 1.0)
    assert worst == np.inf and message in difference


def test_a_recorded_table_reads_back_equal(want, tmp_path, monkeypatch):
    # None among integers and empty text come back from the CSV as NaN: still equal
    monkeypatch.setattr(golden, "TABLES", tmp_path)
    golden.record("cmd", {"sub/metrics.parquet": want})
    assert golden.check("cmd", {"sub/metrics.parquet": want}) == ([], 0.0)
    assert golden.check("cmd", {}) == (["sub__metrics.csv: recorded but not written"], 0.0)
