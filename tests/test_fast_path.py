"""The fast path (`optbench.optimizers.fast`) on its eager slices: certified equal to torch.optim
and to the readable path, in the ways training scripts really use torch.optim (issue 11).

No torch.compile is involved here (`fast(cls, compiled=False)`; the compiled path has its own file),
so the whole file runs in seconds.
"""

import copy
import io
import pickle

import pytest
import torch

from optbench import verify
from optbench.optimizers import ALGORITHMS, FAST_ALGORITHMS, fast


def eager(name):
    return fast(ALGORITHMS[name].ours, compiled=False)


@pytest.mark.parametrize("name", FAST_ALGORITHMS)
def test_fast_path_certificate(name):
    """Every flag combination in float64 (sliced buffers), float32, and fast == readable."""
    checks = verify.certify_fast([name])
    failed = [(c.flags, c.dtype, c.error, c.deviation) for c in checks if not c.passed]
    assert not failed
    assert len(checks) == len(ALGORITHMS[name].combinations()) + 2


def _two_parameters_b_every_third_step(cls, steps=12, **hparams):
    """Issue 11's example: a and b of shape [2], b in the loss only every third step, in the usual
    zero_grad(); backward(); step() loop (zero_grad sets gradients to None)."""
    a = torch.tensor([0.5, -1.0], requires_grad=True)
    b = torch.tensor([0.3, -1.2], requires_grad=True)
    optimizer = cls([a, b], **hparams)
    for step in range(steps):
        optimizer.zero_grad()
        loss = (a**2).sum() + torch.sin(3 * a).sum()
        if step % 3 == 0:
            loss = loss + (b**2).sum() + torch.sin(3 * b).sum()
        loss.backward()
        optimizer.step()
    return optimizer, a.detach(), b.detach()


@pytest.mark.parametrize("name", FAST_ALGORITHMS)
def test_a_parameter_without_gradient_is_skipped_like_torch(name):
    algorithm = ALGORITHMS[name]
    hparams = dict(algorithm.test_hparams, lr=0.1)
    if name == "sgd":
        hparams["momentum"] = 0.9
    theirs, a_t, b_t = _two_parameters_b_every_third_step(algorithm.theirs, **hparams)
    ours, a_o, b_o = _two_parameters_b_every_third_step(eager(name), **hparams)
    assert ours.flat_group_steps == 12
    assert torch.allclose(a_o, a_t, rtol=1e-6, atol=1e-7) and torch.allclose(b_o, b_t, rtol=1e-6, atol=1e-7)
    b = ours.param_groups[0]["params"][1]
    if "step" in theirs.state[theirs.param_groups[0]["params"][1]]:
        assert ours.state[b]["step"] == theirs.state[theirs.param_groups[0]["params"][1]]["step"] == 4


def test_issue_11_example_values():
    """The numbers quoted in issue 11, from torch.optim.Adam: b ends at [0.16953, -1.48001]."""
    _, _, b_torch = _two_parameters_b_every_third_step(torch.optim.Adam, lr=0.1)
    _, _, b_fast = _two_parameters_b_every_third_step(eager("adam"), lr=0.1)
    assert torch.equal(b_fast, b_torch)


def _linear_run(cls, steps, state_dict=None, start=None):
    """Steps of `cls` on nn.Linear(3, 2) from `start` (weights) and an optional saved state_dict,
    which goes through torch.save/torch.load as a checkpoint does."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    if start is not None:
        model.load_state_dict(start)
    inputs, targets = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    optimizer = cls(model.parameters(), lr=0.05)
    if state_dict is not None:
        optimizer.load_state_dict(state_dict)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
    saved = io.BytesIO()
    torch.save(optimizer.state_dict(), saved)
    saved.seek(0)
    return copy.deepcopy(model.state_dict()), torch.load(saved), optimizer


ADAM = {"fast": eager("adam"), "readable": ALGORITHMS["adam"].ours, "torch": torch.optim.Adam}


@pytest.mark.parametrize(
    "first, second",
    [("fast", "torch"), ("torch", "fast"), ("fast", "fast"), ("readable", "fast"), ("fast", "readable")],
)
def test_checkpoints_resume_as_the_uninterrupted_torch_run(first, second):
    """3 steps, save, resume with another class for 3 more == 6 uninterrupted torch.optim steps."""
    expected_weights, expected_state, _ = _linear_run(torch.optim.Adam, 6)
    weights, state_dict, _ = _linear_run(ADAM[first], 3)
    weights, resumed_state, _ = _linear_run(ADAM[second], 3, state_dict, start=weights)
    assert verify.relative_deviation(list(weights.values()), list(expected_weights.values())) <= 1e-15
    assert verify.relative_deviation(resumed_state["state"], expected_state["state"]) <= 1e-15
    assert [s["step"].item() for s in resumed_state["state"].values()] == [6.0, 6.0]


def test_every_state_tensor_is_the_parameters_own():
    _, _, optimizer = _linear_run(ADAM["fast"], 3)
    states = list(optimizer.state_dict()["state"].values())
    steps = [s["step"] for s in states]
    assert len({id(step) for step in steps}) == len(steps)
    steps[0] += 1  # torch.optim increments each parameter's own
    assert steps[1].item() == 3.0


def test_the_whole_optimizer_pickles_and_resumes():
    """torch.save(optimizer), as many training scripts do, then training goes on as torch's would."""
    expected_weights, _, _ = _linear_run(torch.optim.Adam, 6)
    _, _, optimizer = _linear_run(ADAM["fast"], 3)
    saved = io.BytesIO()
    torch.save(optimizer, saved)
    saved.seek(0)
    loaded = torch.load(saved, weights_only=False)
    assert type(loaded) is type(optimizer) and loaded.fast_path == "eager slices"
    weight, bias = loaded.param_groups[0]["params"]
    torch.manual_seed(0)
    torch.nn.Linear(3, 2)
    inputs, targets = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    for _ in range(3):
        loaded.zero_grad()
        torch.nn.functional.mse_loss(inputs @ weight.T + bias, targets).backward()
        loaded.step()
    assert (
        verify.relative_deviation([weight.detach(), bias.detach()], list(expected_weights.values())) <= 1e-15
    )
    assert pickle.loads(pickle.dumps(fast(ALGORITHMS["rmsprop"].ours))) is fast(ALGORITHMS["rmsprop"].ours)


def _loss(params):
    return sum((torch.sin(3 * p) + p**2).sum() for p in params)


def _run(cls, params, steps=5, before_step=None, **hparams):
    optimizer = cls(params, **hparams)
    for step in range(steps):
        optimizer.zero_grad()
        _loss([p for p in params if p.requires_grad]).backward()
        if before_step:
            before_step(step, params)
        optimizer.step()
    return optimizer


def _start(shapes=((4, 3), (5,), (2, 3, 2)), dtype=torch.float64):
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=generator, dtype=dtype) for s in shapes]


def test_parameters_gradients_and_state_become_views_of_one_buffer():
    params = [p.requires_grad_() for p in _start()]
    optimizer = _run(eager("adam"), params, lr=0.1)
    (buffers,) = optimizer._flat.values()
    for i, p in enumerate(params):
        assert p.data_ptr() == buffers.theta[buffers.offsets[i] :].data_ptr()
        assert p.grad is buffers.grad_views[i]  # the new gradient was copied into the buffer
        assert (
            optimizer.state[p]["exp_avg"].data_ptr()
            == buffers.flat["exp_avg"][buffers.offsets[i] :].data_ptr()
        )
    assert optimizer.flat_group_steps == 5


def test_zero_grad_keeps_torchs_meaning():
    params = [p.requires_grad_() for p in _start()]
    optimizer = _run(eager("adam"), params, steps=2, lr=0.1)
    optimizer.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in params)
    _loss(params).backward()
    (buffers,) = optimizer._flat.values()
    assert all(
        p.grad is view for p, view in zip(params, buffers.grad_views, strict=False)
    )  # accumulated in place
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def _fast_and_torch_parameters(name, before_step, **hparams):
    """The final parameters of fast(ours) and of torch.optim, from the same start and interventions."""
    algorithm = ALGORITHMS[name]
    start = _start()
    results = []
    for cls in (eager(name), algorithm.theirs):
        params = [p.clone().requires_grad_() for p in start]
        _run(cls, params, before_step=before_step, **hparams)
        results.append([p.detach() for p in params])
    return results


def test_a_replaced_gradient_is_copied_into_the_buffer():
    def replace_grad(step, params):
        params[0].grad = params[0].grad * 2.0

    results = _fast_and_torch_parameters("rmsprop", replace_grad, lr=0.01, momentum=0.9)
    assert verify.relative_deviation(*results) <= 1e-12


def test_a_sparse_gradient_takes_the_readable_path_for_that_step():
    def sparse_grad(step, params):
        if step == 2:
            params[1].grad = params[1].grad.to_sparse()

    results = _fast_and_torch_parameters("sgd", sparse_grad, lr=0.1, momentum=0.9)
    assert verify.relative_deviation(*results) <= 1e-12


def test_tensor_hyperparameters_take_the_readable_path_and_stay_exact():
    x_fast = torch.tensor([[1.0, -2.0], [0.5, 0.3], [-1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    x_readable = x_fast.detach().clone().requires_grad_()
    lr = torch.tensor([[0.1], [0.05], [0.01]], dtype=torch.float64)
    fast_optimizer = _run(eager("sgd"), [x_fast], lr=lr, momentum=0.9)
    _run(ALGORITHMS["sgd"].ours, [x_readable], lr=lr, momentum=0.9)
    assert not getattr(fast_optimizer, "_flat", {})
    assert torch.equal(x_fast, x_readable)


def test_loading_a_torch_state_dict_regathers_the_buffers():
    start = _start()
    theirs_params = [p.clone().requires_grad_() for p in start]
    theirs = _run(torch.optim.Adam, theirs_params, lr=0.1, amsgrad=True)
    ours_params = [p.detach().clone().requires_grad_() for p in theirs_params]
    ours = _run(eager("adam"), ours_params, steps=1, lr=0.1, amsgrad=True)
    for p, q in zip(ours_params, theirs_params, strict=False):
        p.data.copy_(q.detach())
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    for optimizer, params in ((ours, ours_params), (theirs, theirs_params)):
        optimizer.zero_grad()
        _loss(params).backward()
        optimizer.step()
    assert (
        verify.relative_deviation([p.detach() for p in ours_params], [p.detach() for p in theirs_params])
        <= 1e-12
    )
    assert verify.relative_deviation(ours.state_dict()["state"], theirs.state_dict()["state"]) <= 1e-12
    assert ours.state[ours_params[0]]["step"] is not ours.state[ours_params[1]]["step"]


def test_slices_straddle_parameters_and_each_parameter_keeps_its_scalars():
    class Sliced(eager("nadam")):
        chunk_size = 5

    params = [p.requires_grad_() for p in _start(dtype=torch.float32)]
    theirs = [p.detach().clone().requires_grad_() for p in params]
    optimizer = _run(Sliced, params, steps=4, lr=0.05)
    _run(torch.optim.NAdam, theirs, steps=4, lr=0.05)
    assert all(optimizer.state[p]["step"].item() == 4 for p in params)
    assert len({id(optimizer.state[p]["mu_product"]) for p in params}) == len(params)
    assert verify.relative_deviation([p.detach() for p in params], [p.detach() for p in theirs]) <= 1e-6


@pytest.mark.parametrize("name", ["adafactor", "lbfgs", "muon", "sparseadam"])
def test_algorithms_that_reduce_within_a_tensor_have_no_fast_path(name):
    with pytest.raises(TypeError, match="no fast path"):
        fast(ALGORITHMS[name].ours)


def test_fast_class_keeps_the_signature_and_is_cached():
    import inspect

    adam = ALGORITHMS["adam"]
    assert fast(adam.ours) is fast(adam.ours)
    assert issubclass(fast(adam.ours), adam.ours)
    assert inspect.signature(fast(adam.ours).__init__) == inspect.signature(adam.ours.__init__)


def test_training_on_the_fast_path_gives_the_same_numbers():
    """A small model takes the eager slices by default (below COMPILE_FROM_NUMEL): bit for bit."""
    from dataclasses import replace

    from optbench.runners.training import TrainSpec, train

    spec = TrainSpec(optimizer="adam", task="digits", model="mlp", epochs=1, max_steps=15, seed=3)
    readable, fast_run = train(spec), train(replace(spec, fast=True))
    assert readable.steps["loss"].tolist() == fast_run.steps["loss"].tolist()
