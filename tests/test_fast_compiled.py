"""The opt-in compiled fast path, fast(cls, compiled=True) for Adam, AdamW, RMSprop, Adagrad and NAdam,
certified against torch.optim.

Skipped unless OPTBENCH_TEST_COMPILE=1: torch.compile takes ~10 s per kernel cold on a 2-core CPU
(benchmarks/README.md, "Why the fast path does not use torch.compile"), too slow for the suite.

    OPTBENCH_TEST_COMPILE=1 .venv/bin/pytest tests/test_fast_compiled.py
"""

import os

import pytest
import torch

from optbench import verify
from optbench.optimizers import ALGORITHMS, fast

pytestmark = pytest.mark.skipif(os.environ.get("OPTBENCH_TEST_COMPILE") != "1",
                                reason="compiles with torch.compile; set OPTBENCH_TEST_COMPILE=1")

TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-5}


def _spy(cls):
    """cls, counting the group steps that ran the compiled kernel."""
    calls = []

    class Spy(cls):
        def step_compiled(self, buffers, group):
            taken = super().step_compiled(buffers, group)
            calls.append(taken)
            return taken

    return Spy, calls


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "adagrad", "nadam"])
def test_compiled_equals_torch(name):
    """Every flag combination in float64 and float32 through optbench.verify's lockstep run: two
    groups, lr halved twice by a scheduler, state_dict checkpoint and restore."""
    algorithm = ALGORITHMS[name]
    for dtype in (torch.float64, torch.float32):
        for flags in algorithm.combinations():
            torch._dynamo.reset()   # RMSprop's state sets are graphs of their own: stay under the limit
            cls, calls = _spy(fast(algorithm.ours, compiled=True))
            check = verify.compare_with_torch(algorithm, flags, dtype, ours_cls=cls)
            assert check.error is None, check.error
            assert check.deviation <= TOLERANCE[dtype], (flags, dtype, check.deviation)
            if not flags.get("amsgrad"):
                assert any(calls), (flags, dtype, "the compiled kernel was not used")


@pytest.mark.parametrize("name, flags, compiled_before", [
    ("adam", dict(lr=0.01), 1),              # step 1 is the readable update, step 2 compiles
    ("rmsprop", dict(centered=True, momentum=0.9, lr=0.01), None),
    ("adagrad", dict(lr_decay=0.05, lr=0.1), None),   # compiled from step 1: its state is eager
    ("nadam", dict(lr=0.01), None),
])
def test_lr_change_does_not_recompile(name, flags, compiled_before):
    torch.manual_seed(0)
    params = [torch.randn(1000, requires_grad=True), torch.randn(10, 100, requires_grad=True)]
    optimizer = fast(ALGORITHMS[name].ours, compiled=True)(params, **flags)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)

    def step():
        optimizer.zero_grad()
        sum((p ** 2).sum() for p in params).backward()
        optimizer.step()
        scheduler.step()

    step()
    step()
    before = optimizer.compiled_group_steps
    if compiled_before is not None:
        assert before == compiled_before
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(5):
            step()
    assert optimizer.compiled_group_steps == before + 5


def test_compiled_rejects_other_algorithms():
    with pytest.raises(TypeError):
        fast(ALGORITHMS["sgd"].ours, compiled=True)


def test_past_the_recompile_limit_falls_back_to_the_eager_slices():
    torch.manual_seed(0)
    start = [torch.randn(n, dtype=torch.float64) for n in (17, 23, 31)]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    cls, calls = _spy(fast(ALGORITHMS["adam"].ours, compiled=True))
    optimizers = [cls([{"params": [p]} for p in ours], lr=0.1),
                  torch.optim.Adam([{"params": [p]} for p in theirs], lr=0.1)]
    with torch._dynamo.config.patch(recompile_limit=1):
        for _ in range(4):
            for params, optimizer in zip((ours, theirs), optimizers):
                optimizer.zero_grad()
                sum((p ** 3).sum() for p in params).backward()
                optimizer.step()
    assert not all(calls)                    # some groups could not compile a new graph
    for a, b in zip(ours, theirs):
        assert verify.relative_deviation(a, b) <= 1e-9
