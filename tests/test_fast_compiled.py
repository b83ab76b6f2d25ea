"""The compiled fast path: the readable `update()` compiled by torch.compile, equal to torch.optim.

The default suite compiles two algorithms (Adam and RAdam, float32) once each; the certificate of
every compiled algorithm in both dtypes (what `optbench verify --compiled` runs) is marked slow:

    pytest -m slow tests/test_fast_compiled.py
"""

import pytest
import torch

from optbench import verify
from optbench.optimizers import ALGORITHMS, fast, fast_path
from optbench.optimizers.fast_path import FAST_ALGORITHMS, compiled

pytestmark = pytest.mark.skipif(
    not compiled.compiler_available(torch.device("cpu")), reason="torch.compile needs a C++ compiler on CPU"
)


def test_the_path_is_chosen_once_and_shown():
    large = [torch.zeros(fast_path.COMPILE_FROM_NUMEL, requires_grad=True)]
    small = [torch.zeros(3, requires_grad=True)]
    assert fast(ALGORITHMS["adam"].ours)(large).fast_path == "compiled"
    assert fast(ALGORITHMS["adam"].ours)(small).fast_path == "eager slices"
    assert fast(ALGORITHMS["adam"].ours, compiled=True)(small).fast_path == "compiled"
    assert fast(ALGORITHMS["adam"].ours, compiled=False)(large).fast_path == "eager slices"
    assert fast(ALGORITHMS["radam"].ours)(large).fast_path == "compiled"
    assert fast(ALGORITHMS["asgd"].ours)(large).fast_path == "compiled"
    with pytest.raises(TypeError, match="has no fast path"):
        fast(ALGORITHMS["adafactor"].ours, compiled=True)


def test_compiled_adam_equals_torch_skips_missing_gradients_and_never_recompiles_for_lr():
    """Issue 11's example (b in the loss every third step) with an lr schedule, float32: the
    compiled path equals torch.optim.Adam; after the first steps no lr change recompiles."""
    runs = []
    for cls in (fast(ALGORITHMS["adam"].ours, compiled=True), torch.optim.Adam):
        a = torch.tensor([0.5, -1.0, 0.25], requires_grad=True)
        b = torch.tensor([[0.3, -1.2], [0.7, 0.1]], requires_grad=True)
        optimizer = cls([a, b], lr=0.1)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.8)
        for step in range(12):
            with torch._dynamo.config.patch(error_on_recompile=step >= 4):
                optimizer.zero_grad()
                loss = (a**2).sum() + torch.sin(3 * a).sum()
                if step % 3 == 0:
                    loss = loss + (b**2).sum() + torch.sin(3 * b).sum()
                loss.backward()
                optimizer.step()
                scheduler.step()
        runs.append((optimizer, [a.detach(), b.detach()]))
    (ours, ours_params), (theirs, theirs_params) = runs
    assert ours.fast_path == "compiled" and ours.flat_group_steps == 12
    assert verify.relative_deviation(ours_params, theirs_params) <= verify.TOLERANCE[torch.float32]
    assert (
        verify.relative_deviation(ours.state_dict()["state"], theirs.state_dict()["state"])
        <= verify.TOLERANCE[torch.float32]
    )
    assert [s["step"].item() for s in ours.state_dict()["state"].values()] == [12.0, 4.0]


def test_compiled_radam_equals_torch_across_its_rectification_threshold_in_one_graph():
    """RAdam's "if ρ_t > 5" (ρ_t a number computed from the step; here it passes 5 at step 6) is
    taken inside the graph: the compiled update equals torch.optim.RAdam before and after the
    threshold, and no step after the first recompiles, whatever ρ_t is."""
    runs = []
    for cls in (fast(ALGORITHMS["radam"].ours, compiled=True), torch.optim.RAdam):
        theta = torch.linspace(-1.0, 1.0, 7, requires_grad=True)
        optimizer = cls([theta], lr=0.05, betas=(0.8, 0.9), weight_decay=0.01)
        for step in range(10):
            with torch._dynamo.config.patch(error_on_recompile=step >= 1):
                optimizer.zero_grad()
                (torch.sin(3 * theta).sum() + (theta**2).sum()).backward()
                optimizer.step()
        runs.append((optimizer, theta.detach()))
    (ours, ours_theta), (theirs, theirs_theta) = runs
    assert ours.fast_path == "compiled" and ours.flat_group_steps == 10
    assert verify.relative_deviation([ours_theta], [theirs_theta]) <= verify.TOLERANCE[torch.float32]
    assert (
        verify.relative_deviation(ours.state_dict()["state"], theirs.state_dict()["state"])
        <= verify.TOLERANCE[torch.float32]
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST_ALGORITHMS)
def test_compiled_certificate(name):
    """Every flag combination in float64 and float32 against torch.optim (two groups, lr scheduler,
    state_dict round trip), and compiled vs the eager slices."""
    checks = verify.certify_fast([name], compiled=True)
    failed = [(c.flags, c.dtype, c.error, c.deviation) for c in checks if not c.passed]
    assert not failed
    assert len(checks) == 2 * len(ALGORITHMS[name].combinations()) + 2


@pytest.mark.slow
def test_past_the_recompile_limit_it_raises_instead_of_switching(monkeypatch, request):
    monkeypatch.setattr(compiled, "RECOMPILE_LIMIT", 1)
    torch._dynamo.reset()
    # an algorithm's wrapper takes the limit when it is made: none made before or during this test stays
    compiled.compiled_update.cache_clear()
    request.addfinalizer(compiled.compiled_update.cache_clear)
    optimizer = fast(ALGORITHMS["adagrad"].ours, compiled=True)(
        [
            {"params": [torch.ones(4, requires_grad=True)]},
            {"params": [torch.ones(4, dtype=torch.float64, requires_grad=True)]},
        ],
        lr=0.1,
    )
    for group in optimizer.param_groups:
        group["params"][0].grad = torch.ones_like(group["params"][0])
    with pytest.raises(RuntimeError, match="limit of 1 graphs"):
        optimizer.step()
