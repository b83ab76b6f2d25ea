"""The newer optimizers (Lion, Schedule-Free, Lookahead, LAMB, Prodigy, ADOPT) == their reference packages.

Every flag combination in float64 (two param groups, an lr scheduler, a state_dict round trip), float32,
and the batched tensor-hyperparameter check, through the same machinery as the torch certificate.
A reference that is not installed skips its tests (`pip install "optbench[zoo]"`).
"""

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
import torch

from optbench import verify, verify_classes
from optbench.errors import OptbenchError
from optbench.optimizers.registry import ALGORITHMS, REFERENCED_ALGORITHMS, TORCH_ALGORITHMS


def _need_reference(algorithm):
    module = algorithm.reference.split(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{algorithm.distribution} not installed")


CASES = [(a.name, flags) for a in REFERENCED_ALGORITHMS.values() for flags in a.combinations()]


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{n}[{','.join(f'{k}={v}' for k, v in f.items())}]" for n, f in CASES]
)
def test_float64_every_flag_combination_matches_the_reference(case):
    name, flags = case
    algorithm = ALGORITHMS[name]
    _need_reference(algorithm)
    check = verify.compare_with_torch(algorithm, flags, torch.float64)
    assert check.error is None, check.error
    assert check.deviation <= 1e-9, f"relative deviation {check.deviation:.2e}"


@pytest.mark.parametrize("name", list(REFERENCED_ALGORITHMS))
def test_float32_matches_the_reference(name):
    algorithm = ALGORITHMS[name]
    _need_reference(algorithm)
    check = verify.compare_with_torch(algorithm, {}, torch.float32)
    assert check.error is None, check.error
    assert check.deviation <= 1e-4


@pytest.mark.parametrize("name", [a.name for a in REFERENCED_ALGORITHMS.values() if a.tensor_hparams])
def test_tensor_hyperparameters_equal_separate_reference_runs(name):
    algorithm = ALGORITHMS[name]
    _need_reference(algorithm)
    check = verify.batched_equals_separate(algorithm)
    assert check.error is None, check.error
    assert check.deviation <= 1e-9


@pytest.mark.parametrize("name", [a.name for a in REFERENCED_ALGORITHMS.values() if a.complex_ok])
def test_complex_parameters_match_the_reference(name):
    algorithm = ALGORITHMS[name]
    _need_reference(algorithm)
    start = torch.randn(3, 2, dtype=torch.complex128, generator=torch.Generator().manual_seed(3))
    results = []
    for cls in (algorithm.ours, algorithm.theirs):
        z = start.clone().requires_grad_(True)
        optimizer = cls([z], **algorithm.test_hparams)
        for _ in range(8):
            optimizer.zero_grad()
            verify.objective([z], maximize=False).backward()
            optimizer.step()
        results.append(z.detach())
    assert verify.relative_deviation(*results) <= 1e-9


def _broken(name):
    """One wrong detail per algorithm, each of which the certificate must catch."""
    from optbench.optimizers import adopt, lamb, lion, lookahead, prodigy, schedule_free, soap

    class LionSwappedBetas(lion.Lion):
        def update(self, theta, g, state, group):
            β1, β2 = group["betas"]
            super().update(theta, g, state, {**group, "betas": (β2, β1)})

    class ScheduleFreeAveragingOneStepLate(schedule_free.AdamWScheduleFree):
        def update_y_z(self, theta, g, state, group, t, γ_t, c):
            super().update_y_z(theta, g, state, group, t, γ_t, 1 / (t + 1))

    class SGDScheduleFreeWrongSum(schedule_free.SGDScheduleFree):
        def step_group(self, group):
            super().step_group(group)
            group["weight_sum"] *= 1 + 1e-6  # only the per-group state differs

    class ADOPTUsingCurrentV(adopt.ADOPT):
        def update(self, theta, g, state, group):
            if group["step"] > 1:
                state["exp_avg_sq"].mul_(group["betas"][1]).addcmul_(g, g, value=1 - group["betas"][1])
            super().update(theta, g, state, group)

    class LambWithoutTrustRatio(lamb.Lamb):
        def update(self, x, g, state, group):
            super().update(x, g, state, {**group, "adam": True})

    class ProdigyWithOldD(prodigy.Prodigy):
        @staticmethod
        def _update_parameter(x, g, state, group, η, d, β1):
            prodigy.Prodigy._update_parameter(x, g, state, group, η, group["d0"], β1)

    class LookaheadWrongAlpha(lookahead.Lookahead):
        def _outer_update(self, group):
            self.alpha, saved = self.alpha * 0.9, self.alpha
            super()._outer_update(group)
            self.alpha = saved

    class SOAPWithoutEigenbasisRefresh(soap.SOAP):
        @staticmethod
        def _update_preconditioner(g, state, t, group):
            soap.SOAP._update_preconditioner(g, state, t if t % state["precondition_frequency"] else 0, group)

    import functools

    return {
        "soap": SOAPWithoutEigenbasisRefresh,
        "lion": LionSwappedBetas,
        "adamwschedulefree": ScheduleFreeAveragingOneStepLate,
        "sgdschedulefree": SGDScheduleFreeWrongSum,
        "adopt": ADOPTUsingCurrentV,
        "lamb": LambWithoutTrustRatio,
        "prodigy": ProdigyWithOldD,
        "lookahead": functools.partial(
            lookahead.over_inner, LookaheadWrongAlpha, TORCH_ALGORITHMS["sgd"].ours
        ),
    }[name]


@pytest.mark.parametrize("name", list(REFERENCED_ALGORITHMS))
def test_certificate_catches_a_wrong_detail(name):
    algorithm = ALGORITHMS[name]
    _need_reference(algorithm)
    check = verify.compare_with_torch(algorithm, {}, ours_cls=_broken(name))
    assert not check.passed and check.deviation > 1e-8, check


def test_adopt_clipping_is_certified_where_it_acts():
    """The default clip t^¼ never binds on the certificate's objective; a tight one must, and still match."""
    algorithm = ALGORITHMS["adopt"]
    _need_reference(algorithm)

    def tight(t):
        return 0.3

    clipped = verify.compare_with_torch(algorithm, {"clip_lambda": tight})
    assert clipped.passed, clipped
    unclipped = verify.compare_with_torch(algorithm, {"clip_lambda": None})
    assert unclipped.passed, unclipped
    from optbench.optimizers.adopt import ADOPT

    differs = verify.compare_with_torch(
        algorithm, {"clip_lambda": tight}, ours_cls=ADOPT, ours_hparams={"clip_lambda": None}
    )
    assert differs.deviation > 1e-3  # so the tight clip did act


def test_schedule_free_average_is_the_paper_uniform_average():
    """Constant lr, r = 0, no warmup: c_{t+1} = 1/t, so x_{T+1} = mean(z_2, ..., z_{T+1}) (paper, §2)."""
    from optbench.optimizers.schedule_free import SGDScheduleFree

    y = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    optimizer = SGDScheduleFree([y], lr=0.1, momentum=0.8)
    optimizer.train()
    zs = []
    for _ in range(7):
        optimizer.zero_grad()
        verify.rowwise_objective(y).backward()
        optimizer.step()
        zs.append(optimizer.state[y]["z"].clone())
    optimizer.eval()
    assert torch.allclose(y.detach(), torch.stack(zs).mean(0), rtol=1e-12, atol=1e-14)
    optimizer.train()
    with torch.no_grad():
        x = torch.stack(zs).mean(0)
        expected_y = x + (1 - 0.8) * (zs[-1] - x)  # y = (1 - β) z + β x
    assert torch.allclose(y.detach(), expected_y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["adamwschedulefree", "sgdschedulefree"])
def test_schedule_free_eval_matches_the_reference_and_step_needs_train_mode(name):
    algorithm = ALGORITHMS[name]
    _need_reference(algorithm)
    start = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    evaluated = []
    for cls in (algorithm.ours, algorithm.theirs):
        x = start.clone().requires_grad_(True)
        optimizer = cls([x], **algorithm.test_hparams)
        optimizer.train()
        for _ in range(5):
            optimizer.zero_grad()
            verify.rowwise_objective(x).backward()
            optimizer.step()
        optimizer.eval()
        evaluated.append(x.detach().clone())
        with pytest.raises(Exception, match="train mode"):
            optimizer.step()
    assert verify.relative_deviation(*evaluated) <= 1e-12


def test_lookahead_closed_forms():
    """α = 1 is the inner optimizer alone; α = 0 pulls the weights back to the start every k steps."""
    from optbench.optimizers.lookahead import Lookahead

    def run(alpha, steps, k=3):
        x = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
        optimizer = (
            Lookahead(torch.optim.SGD([x], lr=0.1, momentum=0.5), k=k, alpha=alpha)
            if alpha is not None
            else torch.optim.SGD([x], lr=0.1, momentum=0.5)
        )
        for _ in range(steps):
            optimizer.zero_grad()
            verify.rowwise_objective(x).backward()
            optimizer.step()
        return x.detach()

    assert torch.equal(run(1.0, 7), run(None, 7))
    assert torch.equal(run(0.0, 6), torch.tensor([1.0, -2.0], dtype=torch.float64))
    assert not torch.equal(run(0.0, 5), torch.tensor([1.0, -2.0], dtype=torch.float64))


def test_lookahead_wraps_any_inner_optimizer_like_the_reference():
    algorithm = ALGORITHMS["lookahead"]
    _need_reference(algorithm)
    import functools

    from optbench.optimizers.lookahead import Lookahead, over_inner

    reference = importlib.import_module("pytorch_optimizer").Lookahead
    check = verify.compare_with_torch(
        algorithm,
        {"k": 2, "betas": (0.8, 0.95)},
        ours_cls=functools.partial(over_inner, Lookahead, TORCH_ALGORITHMS["adam"].ours),
        reference_cls=functools.partial(over_inner, reference, torch.optim.Adam),
    )
    assert check.passed, check


@pytest.mark.parametrize("name", list(REFERENCED_ALGORITHMS))
def test_each_module_has_pseudocode_discrepancies_and_reference_names(name):
    algorithm = ALGORITHMS[name]
    module = importlib.import_module(f"optbench.optimizers.{algorithm.module}")
    assert "←" in module.__doc__
    assert (
        algorithm.reference.split(":")[0].split(".")[0] in module.__doc__.replace("-", "_")
        or algorithm.distribution in module.__doc__
    )
    assert module.DOC_DISCREPANCIES, "each algorithm lists where the paper and the reference differ"
    assert issubclass(getattr(module, algorithm.class_name), torch.optim.Optimizer)


def test_reductions_get_one_optimizer_per_trial():
    for name in ("lamb", "prodigy", "soap"):
        assert not ALGORITHMS[name].elementwise and not ALGORITHMS[name].tensor_hparams
    for name in ("lion", "adamwschedulefree", "sgdschedulefree", "adopt"):
        assert ALGORITHMS[name].elementwise and "lr" in ALGORITHMS[name].tensor_hparams


def test_zoo_extra_pins_every_reference():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    zoo = re.search(r"^zoo = \[(.*)\]", pyproject, re.MULTILINE).group(1)
    pinned = dict(re.findall(r'"([\w-]+)==([\w.]+)"', zoo))
    for algorithm in REFERENCED_ALGORITHMS.values():
        assert algorithm.distribution in pinned
        if algorithm.reference_version is not None:
            assert algorithm.reference_version == pinned[algorithm.distribution]


def test_missing_reference_is_one_clear_error():
    import dataclasses

    missing = dataclasses.replace(
        ALGORITHMS["lion"], reference="no_such_reference_pkg:Lion", distribution="no-such-reference"
    )
    with pytest.raises(OptbenchError, match=r"needs no-such-reference.*optbench\[zoo\]"):
        missing.theirs  # noqa: B018 (the property raises)
    check = verify.compare_with_torch(missing, {})
    assert not check.passed and "not installed" in check.error


def test_certify_classes_introspects_the_shared_flags():
    from optbench.optimizers.adam import Adam
    from optbench.optimizers.adamw import AdamW

    checks = verify_classes.certify_classes(Adam, torch.optim.Adam, hparams={"lr": 0.05})
    flags = verify_classes.introspect_flags(Adam, torch.optim.Adam)
    assert set(flags) == {"amsgrad", "maximize", "decoupled_weight_decay", "weight_decay"}
    assert len(checks) == 16 and all(c.passed for c in checks)
    wrong = verify_classes.certify_classes(
        AdamW, torch.optim.Adam, flags={"weight_decay": (0.1,)}, hparams={"lr": 0.05}
    )
    assert not wrong[0].passed  # AdamW's decay is decoupled, Adam's is not


def test_certify_classes_against_a_zoo_reference():
    pytest.importorskip("lion_pytorch")
    import lion_pytorch

    from optbench.optimizers.lion import Lion

    checks = verify_classes.certify_classes(Lion, lion_pytorch.Lion, hparams={"lr": 0.01})
    assert {tuple(sorted(c.flags)) for c in checks} == {("decoupled_weight_decay", "weight_decay")}
    assert len(checks) == 4 and all(c.passed for c in checks)


@pytest.mark.parametrize("name", sorted(REFERENCED_ALGORITHMS))
def test_a_pickled_optimizer_resumes_like_the_uninterrupted_one(name):
    """torch.save(optimizer) mid-run, load, go on: the same parameters as a run never saved."""
    import io

    algorithm = REFERENCED_ALGORITHMS[name]
    torch.manual_seed(0)
    start = torch.randn(4, 3, dtype=torch.float64)
    saved_side, straight = (torch.nn.Parameter(start.clone()) for _ in range(2))
    optimizers = [
        verify.ready(algorithm.ours([theta], **algorithm.test_hparams)) for theta in (saved_side, straight)
    ]
    gradients = [torch.randn(4, 3, dtype=torch.float64) for _ in range(8)]
    for step, g in enumerate(gradients):
        if step == 4:
            buffer = io.BytesIO()
            torch.save(optimizers[0], buffer)
            buffer.seek(0)
            optimizers[0] = torch.load(buffer, weights_only=False)
            saved_side = optimizers[0].param_groups[0]["params"][0]
        for theta, optimizer in zip((saved_side, straight), optimizers, strict=False):
            theta.grad = g.clone()
            optimizer.step()
    assert torch.equal(saved_side.detach(), straight.detach())
