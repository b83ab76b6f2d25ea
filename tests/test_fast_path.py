"""The fast path (`optbench.optimizers.fast`): certified equal to torch.optim and to the readable path.

No torch.compile is involved (the fast path is the readable update on contiguous buffers), so
every test here is quick: the whole file runs in a few seconds.
"""

import copy

import pytest
import torch

from optbench import verify
from optbench.optimizers import ALGORITHMS, FAST_ALGORITHMS, fast, fast_path


@pytest.mark.parametrize("name", FAST_ALGORITHMS)
def test_fast_path_certificate(name):
    """Every flag combination in float64 (sliced buffers), float32, and fast == readable."""
    checks = verify.certify_fast([name])
    failed = [(c.flags, c.dtype, c.error, c.deviation) for c in checks if not c.passed]
    assert not failed
    assert len(checks) == len(ALGORITHMS[name].combinations()) + 2


def _loss(params):
    return sum((torch.sin(3 * p) + p ** 2).sum() for p in params)


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
    optimizer = _run(fast(ALGORITHMS["adam"].ours), params, lr=0.1)
    (buffers,) = optimizer._flat.values()
    for i, p in enumerate(params):
        assert p.data_ptr() == buffers.theta[buffers.offsets[i]:].data_ptr()
        assert p.grad is buffers.grad_views[i]          # backward accumulated into the view
        assert optimizer.state[p]["exp_avg"].data_ptr() == buffers.state["exp_avg"][buffers.offsets[i]:].data_ptr()
    assert optimizer.flat_group_steps == 5


def _fast_and_torch_parameters(name, before_step, **hparams):
    """The final parameters of fast(ours) and of torch.optim, from the same start and interventions."""
    algorithm = ALGORITHMS[name]
    start = _start()
    results = []
    for cls in (fast(algorithm.ours), algorithm.theirs):
        params = [p.clone().requires_grad_() for p in start]
        _run(cls, params, before_step=before_step, **hparams)
        results.append([p.detach() for p in params])
    return results


def test_a_parameter_without_gradient_is_skipped_like_torch():
    """A parameter whose gradient is None sends its group down the readable path for that step."""
    def drop_grad(step, params):
        if step == 2:
            params[1].grad = None
    results = _fast_and_torch_parameters("adam", drop_grad, lr=0.1)
    assert verify.relative_deviation(*results) <= 1e-12


def test_a_replaced_gradient_is_copied_into_the_buffer():
    def replace_grad(step, params):
        params[0].grad = params[0].grad * 2.0
    results = _fast_and_torch_parameters("rmsprop", replace_grad, lr=0.01, momentum=0.9)
    assert verify.relative_deviation(*results) <= 1e-12


def test_tensor_hyperparameters_take_the_readable_path_and_stay_exact():
    x_fast = torch.tensor([[1.0, -2.0], [0.5, 0.3], [-1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    x_readable = x_fast.detach().clone().requires_grad_()
    lr = torch.tensor([[0.1], [0.05], [0.01]], dtype=torch.float64)
    fast_optimizer = _run(fast(ALGORITHMS["sgd"].ours), [x_fast], lr=lr, momentum=0.9)
    _run(ALGORITHMS["sgd"].ours, [x_readable], lr=lr, momentum=0.9)
    assert not getattr(fast_optimizer, "_flat", {})
    assert torch.equal(x_fast, x_readable)


def test_loading_a_torch_state_dict_regathers_the_buffers():
    start = _start()
    theirs_params = [p.clone().requires_grad_() for p in start]
    theirs = _run(torch.optim.Adam, theirs_params, lr=0.1, amsgrad=True)
    ours_params = [p.detach().clone().requires_grad_() for p in theirs_params]
    ours = _run(fast(ALGORITHMS["adam"].ours), ours_params, steps=1, lr=0.1, amsgrad=True)
    for p, q in zip(ours_params, theirs_params):
        p.data.copy_(q.detach())
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))  # same-dtype tensors are not copied
    for optimizer, params in ((ours, ours_params), (theirs, theirs_params)):
        optimizer.zero_grad()
        _loss(params).backward()
        optimizer.step()
    assert verify.relative_deviation([p.detach() for p in ours_params],
                                     [p.detach() for p in theirs_params]) <= 1e-12
    assert verify.relative_deviation(ours.state_dict()["state"], theirs.state_dict()["state"]) <= 1e-12
    assert ours.state[ours_params[0]]["step"] is ours.state[ours_params[1]]["step"]  # shared again


def test_slices_straddle_parameters_and_keep_one_step_counter(monkeypatch):
    monkeypatch.setattr(fast_path, "CHUNK", 5)
    params = [p.requires_grad_() for p in _start(dtype=torch.float32)]
    optimizer = _run(fast(ALGORITHMS["nadam"].ours), params, steps=4, lr=0.05)
    assert all(optimizer.state[p]["step"].item() == 4 for p in params)
    assert len({id(optimizer.state[p]["mu_product"]) for p in params}) == 1


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
    from dataclasses import replace

    from optbench.runners.training import TrainSpec, train

    spec = TrainSpec(optimizer="adam", task="digits", model="mlp", epochs=1, max_steps=15, seed=3)
    readable, fast = train(spec), train(replace(spec, fast=True))
    assert readable.steps["loss"].tolist() == fast.steps["loss"].tolist()
