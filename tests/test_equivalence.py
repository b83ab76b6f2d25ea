"""The heart of optbench: every algorithm, every flag combination, ours == torch.optim.

The combinations come from the one flag table in optbench/optimizers/registry.py.
"""

import copy

import pytest
import torch

from optbench import verify
from optbench.optimizers import registry
from optbench.optimizers.registry import TORCH_ALGORITHMS as ALGORITHMS  # the zoo's: test_zoo.py

CASES = [(a.name, flags) for a in ALGORITHMS.values() for flags in a.combinations()]


def _case_id(case):
    name, flags = case
    return name + "[" + ",".join(f"{k}={v}" for k, v in flags.items()) + "]"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_float64_every_flag_combination_matches_torch(case):
    name, flags = case
    check = verify.compare_with_torch(ALGORITHMS[name], flags, torch.float64)
    assert check.error is None, check.error
    assert check.deviation <= 1e-9, f"relative deviation {check.deviation:.2e}"


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_float32_matches_torch(name):
    check = verify.compare_with_torch(ALGORITHMS[name], {}, torch.float32)
    assert check.error is None, check.error
    assert check.deviation <= 1e-4


@pytest.mark.parametrize("name", [a.name for a in ALGORITHMS.values() if a.tensor_hparams])
def test_tensor_hyperparameters_equal_separate_runs(name):
    check = verify.batched_equals_separate(ALGORITHMS[name])
    assert check.error is None, check.error
    assert check.deviation <= 1e-9


@pytest.mark.parametrize("name", [a.name for a in ALGORITHMS.values() if a.complex_ok])
def test_complex_parameters_match_torch(name):
    algorithm = ALGORITHMS[name]
    start = torch.randn(3, 2, dtype=torch.complex128, generator=torch.Generator().manual_seed(3))
    results = []
    for cls in (algorithm.ours, algorithm.theirs):
        z = start.clone().requires_grad_(True)
        optimizer = cls([z], **algorithm.test_hparams)
        for _ in range(8):

            def closure():
                optimizer.zero_grad()
                loss = verify.objective([z], maximize=False)
                loss.backward()
                return loss

            optimizer.step(closure)
        results.append(z.detach())
    assert verify.relative_deviation(*results) <= 1e-9


def test_certificate_catches_a_wrong_algorithm():
    """A check that cannot fail proves nothing: Adam without bias correction must be caught."""
    from optbench.optimizers import Adam

    class AdamWithoutBiasCorrection(Adam):
        def update(self, theta, g, state, group):
            (beta1, beta2), eps = group["betas"], group["eps"]
            state["step"] += 1
            state["exp_avg"].mul_(beta1).add_((1 - beta1) * g)
            state["exp_avg_sq"].mul_(beta2).add_((1 - beta2) * g * g)
            theta.sub_(group["lr"] * state["exp_avg"] / (state["exp_avg_sq"].sqrt() + eps))

    check = verify.compare_with_torch(
        ALGORITHMS["adam"], {}, torch.float64, ours_cls=AdamWithoutBiasCorrection
    )
    assert check.deviation > 1e-3 and not check.passed


def test_certificate_catches_a_wrong_state_key():
    from optbench.optimizers import SGD

    class RenamedBuffer(SGD):
        def update(self, theta, g, state, group):
            super().update(theta, g, state, group)
            if "momentum_buffer" in state:
                state["buf"] = state.pop("momentum_buffer")
                state["momentum_buffer"] = state["buf"]

    check = verify.compare_with_torch(ALGORITHMS["sgd"], {"momentum": 0.9}, ours_cls=RenamedBuffer)
    assert not check.passed


SCHEDULERS = [
    ("StepLR", dict(step_size=2, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 4], gamma=0.3)),
    ("ConstantLR", dict(factor=0.5, total_iters=3)),
    ("LinearLR", dict(start_factor=0.2, total_iters=4)),
    ("ExponentialLR", dict(gamma=0.8)),
    ("PolynomialLR", dict(total_iters=5, power=2.0)),
    ("CosineAnnealingLR", dict(T_max=5)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=2)),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10)),
    ("LambdaLR", dict(lr_lambda=lambda epoch: 0.9**epoch)),
    ("MultiplicativeLR", dict(lr_lambda=lambda epoch: 0.9)),
]


def _run_scheduled(cls, hparams, make_schedule, steps):
    """`steps` steps of the row-wise objective under a scheduler: (final x, lr after each step)."""
    x = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    optimizer = cls([x], **hparams)
    schedule = make_schedule(optimizer)
    lrs = []
    for _ in range(steps):
        optimizer.zero_grad()
        verify.rowwise_objective(x).backward()
        optimizer.step()
        schedule.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return x.detach().clone(), lrs


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_every_lr_scheduler_drives_ours_like_torch(name, scheduler):
    scheduler_name, kwargs = scheduler
    algorithm = ALGORITHMS[name]
    hparams = dict(algorithm.test_hparams)
    if scheduler_name == "CyclicLR" and name == "sgd":
        hparams["momentum"] = 0.9  # CyclicLR cycles momentum too

    def make_schedule(optimizer):
        return getattr(torch.optim.lr_scheduler, scheduler_name)(optimizer, **copy.copy(kwargs))

    (x_ours, lr_ours), (x_theirs, lr_theirs) = [
        _run_scheduled(cls, hparams, make_schedule, 10) for cls in (algorithm.ours, algorithm.theirs)
    ]
    assert lr_ours == pytest.approx(lr_theirs, rel=1e-12)
    assert verify.relative_deviation(x_ours, x_theirs) <= 1e-9


def test_ReduceLROnPlateau_drives_ours():
    from optbench.optimizers import SGD

    x = torch.tensor([1.0], requires_grad=True)
    optimizer = SGD([x], lr=0.1)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5)
    for _ in range(3):
        schedule.step(1.0)  # a loss that never improves
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)


def test_registry_lists_all_fifteen_torch_algorithms():
    torch_classes = {
        name
        for name in dir(torch.optim)
        if isinstance(getattr(torch.optim, name), type)
        and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
        and name != "Optimizer"
    }
    assert {a.class_name for a in ALGORITHMS.values()} == torch_classes
    assert len(ALGORITHMS) == 15


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_same_constructor_signature_and_subclass(name):
    import inspect

    algorithm = ALGORITHMS[name]
    ours, theirs = inspect.signature(algorithm.ours.__init__), inspect.signature(algorithm.theirs.__init__)
    assert issubclass(algorithm.ours, torch.optim.Optimizer)
    assert {k: (p.default, p.kind) for k, p in ours.parameters.items()} == {
        k: (p.default, p.kind) for k, p in theirs.parameters.items()
    }


def test_unknown_name_suggests_the_closest():
    from optbench.errors import OptbenchError

    with pytest.raises(OptbenchError, match="did you mean 'adam'"):
        registry.get("adma")


@pytest.mark.parametrize("composite", ["SequentialLR", "ChainedScheduler"])
def test_composite_schedulers_drive_ours_like_torch(composite):
    def make_schedule(optimizer):
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=3)
        decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.7)
        if composite == "SequentialLR":
            return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[3])
        return torch.optim.lr_scheduler.ChainedScheduler([warmup, decay])

    (_, lr_ours), (_, lr_theirs) = [
        _run_scheduled(cls, dict(lr=0.1), make_schedule, 8)
        for cls in (ALGORITHMS["adam"].ours, ALGORITHMS["adam"].theirs)
    ]
    assert lr_ours == pytest.approx(lr_theirs, rel=1e-12)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_each_module_carries_its_pseudocode_and_discrepancy_list(name):
    import importlib

    module = importlib.import_module(f"optbench.optimizers.{ALGORITHMS[name].module}")
    assert "←" in module.__doc__, "the pseudocode, with its update arrows, belongs in the docstring"
    assert isinstance(module.DOC_DISCREPANCIES, list)


@pytest.mark.parametrize("name, momentum", [("sgd", 0.0), ("sgd", 0.9), ("adagrad", 0.0)])
def test_sparse_embedding_gradients_match_torch(name, momentum):
    """SGD and Adagrad accept sparse gradients in torch (nn.Embedding(sparse=True)); so do ours."""
    algorithm = ALGORITHMS[name]
    extra = {"momentum": momentum} if name == "sgd" else {}
    weights = []
    for cls in (algorithm.ours, algorithm.theirs):
        embedding = torch.nn.Embedding(6, 3, sparse=True, dtype=torch.float64)
        embedding.weight.data = torch.linspace(-1, 1, 18, dtype=torch.float64).reshape(6, 3)
        optimizer = cls(embedding.parameters(), lr=0.1, **extra)
        for step in range(6):
            optimizer.zero_grad()
            rows = torch.tensor([step % 6, (2 * step + 1) % 6, step % 6])  # a repeated row too
            embedding(rows).sin().sum().backward()
            optimizer.step()
        weights.append(embedding.weight.detach().clone())
    assert verify.relative_deviation(*weights) <= 1e-12
