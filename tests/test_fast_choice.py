"""The fast path's choice between compiling and the eager slices, from the run's declared length.

Only the choice is tested (`optimizer.fast_path`, which compiles nothing): no clock is involved.
"""

from __future__ import annotations

import pytest
import torch

from optbench.optimizers import fast
from optbench.optimizers.adam import Adam
from optbench.optimizers.fast_path import COMPILE_FROM_NUMEL
from optbench.optimizers.fast_path.compiled import BREAK_EVEN_STEPS, compiler_available, worth_compiling

COMPILES_HERE = compiler_available(torch.device("cpu"))


def large_optimizer(compiled=None, expected_steps=None):
    optimizer = fast(Adam, compiled=compiled)([torch.zeros(COMPILE_FROM_NUMEL, requires_grad=True)])
    optimizer.expected_steps = expected_steps
    return optimizer


def test_a_run_shorter_than_the_break_even_takes_the_eager_slices():
    assert large_optimizer(expected_steps=BREAK_EVEN_STEPS - 1).fast_path == "eager slices"
    assert large_optimizer(expected_steps=1).fast_path == "eager slices"


@pytest.mark.parametrize("expected_steps", [None, "break even", 10**9])
def test_a_long_or_unknown_run_compiles_where_a_compiler_exists(expected_steps):
    steps = BREAK_EVEN_STEPS if expected_steps == "break even" else expected_steps
    expected = "compiled" if COMPILES_HERE else "eager slices"
    assert large_optimizer(expected_steps=steps).fast_path == expected


@pytest.mark.skipif(not COMPILES_HERE, reason="no C++ compiler for inductor here")
def test_asking_for_the_compiled_path_overrides_the_run_length():
    assert large_optimizer(compiled=True, expected_steps=1).fast_path == "compiled"


def test_the_break_even_rule():
    assert worth_compiling(None) and worth_compiling(BREAK_EVEN_STEPS)
    assert not worth_compiling(BREAK_EVEN_STEPS - 1)
    assert BREAK_EVEN_STEPS > 1
