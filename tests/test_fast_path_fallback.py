"""The fast path where a user's code could see that it moved the parameters (issue 22): torch's result
in every such situation, either because the fast path gives it or because it detects the situation,
says so once and steps that group on the readable path; and the fast path stays on everywhere else."""

import io
import warnings

import pytest
import torch
import torch.multiprocessing as mp

from optbench.optimizers import SGD, Adam, fast


def eager(cls):
    return fast(cls, compiled=False)


def _step(optimizer, params, k):
    optimizer.zero_grad()
    sum(((0.5 * (i + k + 1)) * p**2 + torch.sin(3 * p)).sum() for i, p in enumerate(params)).backward()
    optimizer.step()


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    ).double()


def _train(model, optimizer, steps=3, between=None):
    torch.manual_seed(1)
    for k in range(steps):
        x, y = torch.randn(8, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (8,))
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if between is not None:
            between(model, optimizer, k)


# ---- the situations that fall back ---------------------------------------------------------------


def _hogwild_worker(model, fast_path):
    cls = eager(SGD) if fast_path else torch.optim.SGD
    _train(model, cls(model.parameters(), lr=0.1, momentum=0.9), steps=4)


@pytest.mark.slow  # two spawned processes
@pytest.mark.parametrize("fast_path", [False, True])
def test_hogwild_workers_move_the_shared_weights_as_torch(fast_path):
    """torch's Hogwild recipe: the model in shared memory, the optimizer in a worker process."""
    expected = _model()
    _hogwild_worker(expected, fast_path=False)  # what torch.optim does to the weights, in this process
    model = _model()
    model.share_memory()
    worker = mp.get_context("spawn").Process(target=_hogwild_worker, args=(model, fast_path))
    worker.start()
    worker.join(timeout=120)
    assert worker.exitcode == 0
    for a, b in zip(model.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (model[0].weight - _model()[0].weight).abs().max() > 0.01


def test_shared_memory_falls_back_and_says_so_once():
    model = _model()
    model.share_memory()
    optimizer = eager(SGD)(model.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="shared memory") as caught:
        _train(model, optimizer, steps=3)
    assert len([w for w in caught if "readable path" in str(w.message)]) == 1
    assert not optimizer.__dict__.get("_flat") and model[0].weight.is_shared()


def _two_views(base):
    return [torch.nn.Parameter(base[:6].view(2, 3)), torch.nn.Parameter(base[6:])]


def test_two_parameters_viewing_one_storage_step_as_torch():
    bases = [
        torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) for _ in range(2)
    ]
    runs = []
    for cls, base in zip((eager(Adam), torch.optim.Adam), bases, strict=True):
        params = _two_views(base)
        optimizer = cls(params, lr=0.1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for k in range(3):
                _step(optimizer, params, k)
        runs.append((params, [str(w.message) for w in caught]))
    (ours, our_warnings), (theirs, their_warnings) = runs
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(bases[0], bases[1], rtol=0, atol=0)  # the tensor they view moved too
    assert their_warnings == [] and len(our_warnings) == 1 and "shares its memory" in our_warnings[0]


def test_a_parameter_listed_twice_is_stepped_twice_as_torch():
    runs = []
    for cls in (eager(SGD), torch.optim.SGD):
        p, q = (torch.nn.Parameter(torch.full((3,), v, dtype=torch.float64)) for v in (1.0, 2.0))
        with pytest.warns(UserWarning, match="duplicate parameters"):  # torch's own warning
            optimizer = cls([p, q, p], lr=0.1, momentum=0.9)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for k in range(3):
                _step(optimizer, [p, q], k)
        runs.append(([p, q], optimizer.state_dict(), [str(w.message) for w in caught]))
    (ours, our_state, our_warnings), (theirs, their_state, _) = runs
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert our_state["param_groups"] == their_state["param_groups"]
    assert len(our_warnings) == 1 and "listed twice" in our_warnings[0]


def test_saving_one_layer_after_a_fast_step_writes_that_layer_only():
    sizes = []
    for cls in (eager(Adam), torch.optim.Adam):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 80), torch.nn.Linear(80, 2048)).double()
        optimizer = cls(model.parameters(), lr=1e-3)
        model(torch.randn(4, 64, dtype=torch.float64)).sum().backward()
        optimizer.step()
        assert getattr(optimizer, "flat_group_steps", 1) == 1  # ours stepped on the fast path
        layer = _bytes(model[0].state_dict())  # 5,200 float64 numbers: about 42 kB, of 1.4 MB in all
        sizes.append((len(layer), len(_bytes(model.state_dict()))))
        loaded = torch.load(io.BytesIO(layer))
        torch.testing.assert_close(loaded["weight"], model[0].weight.detach(), rtol=0, atol=0)
    assert sizes[0] == sizes[1] and sizes[0][0] < 50_000


def _bytes(obj) -> bytes:
    stream = io.BytesIO()
    torch.save(obj, stream)
    return stream.getvalue()


# ---- and everywhere else the fast path stays on ------------------------------------------------


def _save_everything(model, optimizer, k):
    _bytes({"model": model.state_dict(), "optimizer": optimizer.state_dict()})


def _reload_optimizer(model, optimizer, k):
    optimizer.load_state_dict(optimizer.state_dict())


def _evaluate(model, optimizer, k):
    model.eval()
    with torch.no_grad():
        model(torch.ones(2, 1, 8, 8, dtype=torch.float64))
    model.train()


def _zero_to_zeros(model, optimizer, k):
    optimizer.zero_grad(set_to_none=False)


ORDINARY = {
    "plain": lambda model: model.parameters(),
    "two param groups (decay / no decay)": lambda model: [
        {"params": [p for p in model.parameters() if p.dim() > 1]},
        {"params": [p for p in model.parameters() if p.dim() <= 1], "weight_decay": 0.0},
    ],
    "a list of named parameters' values": lambda model: [p for _, p in model.named_parameters()],
}
BETWEEN = {
    "nothing": None,
    "saving model and optimizer": _save_everything,
    "reloading the optimizer's state_dict": _reload_optimizer,
    "evaluating in eval mode": _evaluate,
    "zero_grad(set_to_none=False)": _zero_to_zeros,
}


@pytest.mark.parametrize("between", BETWEEN)
@pytest.mark.parametrize("params", ORDINARY)
def test_the_fast_path_stays_on_in_ordinary_training(params, between):
    model = _model()
    optimizer = eager(Adam)(ORDINARY[params](model), lr=1e-3, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    reference = _model()
    torch_optimizer = torch.optim.Adam(ORDINARY[params](reference), lr=1e-3, weight_decay=1e-2)
    torch_scheduler = torch.optim.lr_scheduler.StepLR(torch_optimizer, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fall-back warning
        _train(
            model,
            optimizer,
            steps=4,
            between=lambda m, o, k: (BETWEEN[between] or (lambda *a: 0))(m, o, k) or scheduler.step(),
        )
    _train(reference, torch_optimizer, steps=4, between=lambda m, o, k: torch_scheduler.step())
    assert optimizer.flat_group_steps == 4 * len(optimizer.param_groups)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_frozen_layer_keeps_the_fast_path():
    model = _model()
    model[0].requires_grad_(False)
    optimizer = eager(SGD)(model.parameters(), lr=0.1, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _train(model, optimizer, steps=3)
    assert optimizer.flat_group_steps == 3


def test_a_graph_kept_across_the_first_step_falls_back():
    """backward(retain_graph=True) keeps tensors on the parameters' memory (torch raises if that graph
    is used after the step changed them): the group steps on the readable path, as torch."""
    model = _model()
    optimizer = eager(SGD)(model.parameters(), lr=0.1)
    loss = model(torch.ones(2, 1, 8, 8, dtype=torch.float64)).sum()
    loss.backward(retain_graph=True)
    with pytest.warns(UserWarning, match="shares its memory"):
        optimizer.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
