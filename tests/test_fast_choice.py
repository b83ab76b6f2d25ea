"""The fast path's choice between compiling and the eager slices, from the run's declared length.

Only the choice is tested (`optimizer.fast_path`, which compiles nothing): no clock is involved; and
that the runners which know a run's length (the training runner) declare it.
"""

from __future__ import annotations

import pytest
import torch

from optbench.data import load
from optbench.optimizers import fast
from optbench.optimizers.adam import Adam
from optbench.optimizers.fast_path import COMPILE_FROM_NUMEL
from optbench.optimizers.fast_path.compiled import (
    BREAK_EVEN_STEPS,
    compiler_available,
    passes_over_memory,
    worth_compiling,
)
from optbench.optimizers.sgd import SGD
from optbench.runners import training
from optbench.runners.recipes import build_optimizer
from optbench.specs import parse_optimizer

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


@pytest.mark.skipif(not COMPILES_HERE, reason="no C++ compiler for inductor here")
def test_a_one_pass_update_takes_the_eager_slices_and_one_of_several_passes_compiles():
    """Plain SGD (θ ← θ - γg) leaves compiling nothing to fuse; momentum, weight decay in any
    group, or another algorithm's update make several passes."""
    large = [torch.zeros(COMPILE_FROM_NUMEL, requires_grad=True)]
    assert fast(SGD)(large, lr=0.1).fast_path == "eager slices"
    assert fast(SGD, compiled=True)(large, lr=0.1).fast_path == "compiled"
    assert fast(SGD)(large, lr=0.1, momentum=0.9).fast_path == "compiled"
    no_decay = [torch.zeros(3, requires_grad=True)]
    assert (
        fast(SGD)([{"params": large, "weight_decay": 1e-4}, {"params": no_decay}], lr=0.1).fast_path
        == "compiled"
    )
    assert large_optimizer().fast_path == "compiled"


def test_passes_over_memory_counts_the_full_size_operations_of_one_step():
    def passes(cls, **hparams):
        optimizer = cls([torch.zeros(5, requires_grad=True)], **hparams)
        return passes_over_memory(optimizer, optimizer.param_groups[0])

    assert passes(SGD, lr=0.1) == 1  # θ ← θ - γg
    assert passes(SGD, lr=0.1, weight_decay=0.1) == 2  # g ← g + λθ, then θ ← θ - γg
    assert passes(Adam) > 2


def test_the_break_even_rule():
    assert worth_compiling(None) and worth_compiling(BREAK_EVEN_STEPS)
    assert not worth_compiling(BREAK_EVEN_STEPS - 1)
    assert BREAK_EVEN_STEPS > 1


def large_network() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(1024, 1024), torch.nn.Linear(1024, 8))  # > 2^20 elements


@pytest.mark.parametrize("recipe", [None, "no-decay"])
def test_build_optimizer_passes_the_runs_length_to_the_fast_path(recipe):
    adam = parse_optimizer("adam")
    short = build_optimizer(adam, recipe, large_network(), lambda spec: {}, fast=True, expected_steps=10)
    assert short.expected_steps == 10 and short.fast_path == "eager slices"
    unknown = build_optimizer(adam, recipe, large_network(), lambda spec: {}, fast=True)
    assert unknown.expected_steps is None
    assert unknown.fast_path == ("compiled" if COMPILES_HERE else "eager slices")


@pytest.mark.parametrize(("epochs", "max_steps", "steps"), [(2, None, 2 * (1438 // 64)), (3, 30, 30)])
def test_the_training_runner_tells_the_fast_path_how_many_steps_it_will_take(
    monkeypatch, epochs, max_steps, steps
):
    built = []

    def recording(*args, **kwargs):
        built.append(build_optimizer(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(training, "build_optimizer", recording)
    digits = load("digits")
    assert len(digits.train[1]) == 1438
    spec = training.TrainSpec(
        optimizer="adam",
        model="mlp",
        epochs=epochs,
        max_steps=max_steps,
        batch_size=64,
        device="cpu",
        fast=True,
    )
    result = training.train(spec, digits)
    assert len(built) == 1 and built[0].expected_steps == steps
    assert len(result.steps) == steps
