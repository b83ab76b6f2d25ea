"""Faithful to torch.optim beyond the certificate's flag grid: checkpoints, switches, tensor
hyperparameters, low precision, and the objects themselves. Every expected value comes from
torch.optim run side by side."""

import copy
import inspect
import pickle
import pydoc

import pytest
import torch

import optbench.optimizers as ours
from optbench.optimizers.registry import TORCH_ALGORITHMS as ALGORITHMS

NAMES = sorted(ALGORITHMS)
# the param-group keys torch has added over the years; an older checkpoint may lack any of them
LATER_KEYS = (
    "maximize",
    "foreach",
    "capturable",
    "differentiable",
    "fused",
    "amsgrad",
    "decoupled_weight_decay",
    "nesterov",
    "momentum",
    "centered",
)


def make_params(algorithm, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype).requires_grad_()
        for shape in algorithm.param_shapes[:2]
    ]


def train(optimizer, params, algorithm, steps, start=0):
    """`steps` steps on Σ ½(k+1)θ² + sin(3θ) (k: the step's index), torch's usual loop."""
    for k in range(start, start + steps):

        def closure():
            optimizer.zero_grad()
            loss = sum(((0.5 * (k + 1)) * p.float() ** 2 + torch.sin(3 * p.float())).sum() for p in params)
            loss.backward()
            if algorithm.sparse_grad:
                for p in params:
                    p.grad = p.grad.to_sparse()
            return loss

        if algorithm.name == "lbfgs":
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()


def assert_same_run(our_params, their_params, our_optimizer, their_optimizer):
    for a, b in zip(our_params, their_params, strict=False):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)
    torch.testing.assert_close(our_optimizer.state_dict(), their_optimizer.state_dict(), rtol=0, atol=0)


def as_old_checkpoint(state_dict, keys):
    """`state_dict` as an older torch saved it: without `keys` in its param groups, numbers for `step`."""
    old = copy.deepcopy(state_dict)
    for group in old["param_groups"]:
        for key in keys:
            group.pop(key, None)
    for state in old["state"].values():
        if torch.is_tensor(state.get("step")):
            state["step"] = state["step"].item()
    return old


def keys_torch_fills(algorithm, state_dict):
    """The later keys torch's own load_state_dict can do without, for this algorithm."""
    fillable = []
    for key in LATER_KEYS:
        if key not in state_dict["param_groups"][0]:
            continue
        params = make_params(algorithm)
        optimizer = algorithm.theirs(params, **algorithm.test_hparams)
        try:
            optimizer.load_state_dict(as_old_checkpoint(state_dict, [key]))
            train(optimizer, params, algorithm, 1)
        except (KeyError, AttributeError):
            continue
        fillable.append(key)
    return fillable


@pytest.mark.parametrize("name", NAMES)
def test_older_checkpoint_resumes_like_torch(name):
    algorithm = ALGORITHMS[name]
    params = make_params(algorithm)
    trained = algorithm.theirs(params, **algorithm.test_hparams)
    train(trained, params, algorithm, 3)
    keys = keys_torch_fills(algorithm, trained.state_dict())
    checkpoint = as_old_checkpoint(trained.state_dict(), keys)
    runs = []
    for cls in (algorithm.ours, algorithm.theirs):
        resumed_params = [p.detach().clone().requires_grad_() for p in params]
        optimizer = cls(resumed_params, **algorithm.test_hparams)
        optimizer.load_state_dict(copy.deepcopy(checkpoint))
        train(optimizer, resumed_params, algorithm, 3, start=3)
        runs.append((resumed_params, optimizer))
    (our_params, our_optimizer), (their_params, their_optimizer) = runs
    assert_same_run(our_params, their_params, our_optimizer, their_optimizer)
    if name in ("sgd", "adam", "rmsprop", "adagrad"):  # the issue's examples: torch fills some keys
        assert keys


def test_adam_checkpoint_into_adamw_stays_decoupled_as_in_torch():
    algorithm = ALGORITHMS["adam"]
    params = make_params(algorithm)
    adam = torch.optim.Adam(params, lr=0.05, weight_decay=0.1)
    train(adam, params, algorithm, 2)
    runs = []
    for cls in (ours.AdamW, torch.optim.AdamW):
        resumed = [p.detach().clone().requires_grad_() for p in params]
        optimizer = cls(resumed, lr=0.05, weight_decay=0.1)
        optimizer.load_state_dict(copy.deepcopy(adam.state_dict()))
        train(optimizer, resumed, algorithm, 5, start=2)
        runs.append((resumed, optimizer))
    assert runs[1][1].param_groups[0]["decoupled_weight_decay"] is True
    assert_same_run(runs[0][0], runs[1][0], runs[0][1], runs[1][1])


@pytest.mark.parametrize("name", NAMES)
def test_pickled_optimizer_resumes_like_the_original(name):
    """torch.save(optimizer) pickles the whole object; the copy continues exactly as the original."""
    algorithm = ALGORITHMS[name]
    params = make_params(algorithm)
    optimizer = algorithm.ours(params, **algorithm.test_hparams)
    train(optimizer, params, algorithm, 2)
    clone = pickle.loads(pickle.dumps(optimizer))
    clone_params = [p for group in clone.param_groups for p in group["params"]]
    train(optimizer, params, algorithm, 2, start=2)
    train(clone, clone_params, algorithm, 2, start=2)
    assert_same_run(clone_params, params, clone, optimizer)


# ---- differentiable=True -------------------------------------------------------------------------


def takes(cls, argument):
    return argument in inspect.signature(cls.__init__).parameters


DIFFERENTIABLE = [name for name in NAMES if takes(ALGORITHMS[name].theirs, "differentiable")]


def gradients_through_steps(cls, algorithm, combo, steps, lr_requires_grad):
    """d(Σ_i w_i θ_i after `steps` steps) / d(θ_0, g_1..g_steps[, lr]) with differentiable=True."""
    generator = torch.Generator().manual_seed(3)
    theta_0 = torch.randn(3, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    grads = [
        torch.randn(3, 2, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(steps)
    ]
    hparams = {**algorithm.test_hparams, **combo}
    lr = (
        torch.tensor(hparams["lr"], dtype=torch.float64, requires_grad=True)
        if lr_requires_grad
        else hparams["lr"]
    )
    theta = theta_0.clone()  # not a leaf: the step changes it in place, autograd records it
    optimizer = cls([theta], **{**hparams, "lr": lr}, differentiable=True)
    for g in grads:
        theta.grad = g
        optimizer.step()
    weights = torch.arange(1.0, 7.0, dtype=torch.float64).view(3, 2)
    inputs = [theta_0, *grads] + ([lr] if lr_requires_grad else [])
    return torch.autograd.grad((weights * theta).sum(), inputs, allow_unused=True)


@pytest.fixture
def float64_default():
    """torch's differentiable path computes with the `step` tensor, in its dtype (float32 under the
    usual default): under a float64 default both sides compute in float64, so they agree closely."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_differentiable_step_gives_torchs_gradients(name, float64_default):
    algorithm = ALGORITHMS[name]
    combos = algorithm.combinations()
    compared = 0
    for combo in [combos[0], combos[len(combos) // 2], combos[-1]]:
        for steps in (1, 2):
            for lr_requires_grad in (False, True):
                try:
                    expected = gradients_through_steps(
                        algorithm.theirs, algorithm, combo, steps, lr_requires_grad
                    )
                except (RuntimeError, TypeError):
                    continue  # torch cannot differentiate this case (e.g. a tensor lr its kernel refuses)
                got = gradients_through_steps(algorithm.ours, algorithm, combo, steps, lr_requires_grad)
                for e, o in zip(expected, got, strict=False):
                    assert (e is None) == (o is None)
                    if e is not None:
                        torch.testing.assert_close(o, e)
                compared += 1
    assert compared >= 3  # at least the three flag combinations, one step each


def test_differentiable_sgd_example_from_the_issue():
    """SGD, lr 0.1, two coordinates: dΣθ/dlr and dΣθ/dg as torch gives them."""
    results = []
    for cls in (ours.SGD, torch.optim.SGD):
        lr = torch.tensor(0.1, requires_grad=True)
        g = torch.tensor([-0.2, -0.3], requires_grad=True)
        theta = torch.tensor([1.0, 2.0], requires_grad=True).clone()
        optimizer = cls([theta], lr=lr, differentiable=True)
        theta.grad = g
        optimizer.step()
        results.append(torch.autograd.grad(theta.sum(), (lr, g)))
    (d_lr, d_g), (torch_d_lr, torch_d_g) = results
    torch.testing.assert_close(d_lr, torch_d_lr)
    torch.testing.assert_close(d_g, torch_d_g)
    torch.testing.assert_close(d_g, torch.tensor([-0.1, -0.1]))


@pytest.mark.parametrize("name", [n for n in NAMES if n not in DIFFERENTIABLE])
def test_differentiable_refused_where_torch_refuses(name):
    algorithm = ALGORITHMS[name]
    for cls in (algorithm.theirs, algorithm.ours):
        with pytest.raises(TypeError, match="differentiable"):
            cls(make_params(algorithm), differentiable=True)


# ---- fused=True ---------------------------------------------------------------------------------

FUSED = [name for name in NAMES if takes(ALGORITHMS[name].theirs, "fused")]


def outcome(action):
    try:
        action()
    except Exception as error:  # compared with torch's: type and message
        return type(error), str(error)
    return None


@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize(
    "device, dtype", [("meta", torch.float32), ("cpu", torch.complex64), ("cpu", torch.int64)]
)
def test_fused_refuses_what_torch_refuses(name, device, dtype):
    algorithm = ALGORITHMS[name]

    def attempt(cls):
        theta = torch.zeros(3, 2, device=device, dtype=dtype)
        theta.grad = torch.zeros_like(theta)
        cls([theta], fused=True).step()

    expected = outcome(lambda: attempt(algorithm.theirs))
    assert expected is not None and expected[0] is RuntimeError
    assert outcome(lambda: attempt(algorithm.ours)) == expected


@pytest.mark.parametrize("name", FUSED)
def test_fused_keeps_step_as_torch_under_a_float64_default(name):
    algorithm = ALGORITHMS[name]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        runs = []
        for cls in (algorithm.ours, algorithm.theirs):
            params = make_params(algorithm, torch.float64)
            optimizer = cls(params, **algorithm.test_hparams, fused=True)
            train(optimizer, params, algorithm, 3)
            runs.append((params, optimizer))
    finally:
        torch.set_default_dtype(previous)
    (our_params, our_optimizer), (their_params, their_optimizer) = runs
    for a, b in zip(our_params, their_params, strict=False):
        torch.testing.assert_close(a, b)
    steps = [(s["step"].dtype, s["step"].device) for s in our_optimizer.state.values() if "step" in s]
    assert steps == [
        (s["step"].dtype, s["step"].device) for s in their_optimizer.state.values() if "step" in s
    ]


@pytest.mark.parametrize("name", FUSED)
def test_fused_with_differentiable_or_foreach_refused_as_torch(name):
    algorithm = ALGORITHMS[name]
    for other in ("differentiable", "foreach"):
        expected = outcome(lambda: algorithm.theirs(make_params(algorithm), fused=True, **{other: True}))
        assert expected is not None
        assert (
            outcome(lambda: algorithm.ours(make_params(algorithm), fused=True, **{other: True})) == expected
        )


CAPTURABLE = [name for name in NAMES if takes(ALGORITHMS[name].theirs, "capturable")]


@pytest.mark.parametrize("name", CAPTURABLE)
def test_capturable_on_the_cpu_refused_as_torch(name):
    """capturable=True is for CUDA-graph capture: torch's for-loop path refuses CPU tensors at step()."""
    algorithm = ALGORITHMS[name]

    def attempt(cls):
        params = make_params(algorithm)
        train(cls(params, **algorithm.test_hparams, capturable=True), params, algorithm, 1)

    expected = outcome(lambda: attempt(algorithm.theirs))
    assert expected is not None and expected[0] is AssertionError
    assert outcome(lambda: attempt(algorithm.ours)) == expected


# ---- tensor hyperparameters ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_one_element_lr_of_any_shape_is_a_number_as_in_torch(name):
    algorithm = ALGORITHMS[name]
    lr = torch.tensor([[algorithm.test_hparams["lr"]]])  # shape [1, 1], on every parameter
    runs = []
    for cls in (algorithm.ours, algorithm.theirs):
        params = make_params(algorithm)
        result = outcome(
            lambda: runs.append((params, cls(params, **{**algorithm.test_hparams, "lr": lr.clone()})))
        )
        if result is None:
            result = outcome(lambda: train(runs[-1][1], params, algorithm, 3))
        runs.append(result)
    our_result, their_result = runs[1], runs[3]
    assert our_result == their_result
    if their_result is None:
        assert_same_run(runs[0][0], runs[2][0], runs[0][1], runs[2][1])


@pytest.mark.parametrize("name", [n for n in NAMES if "lr" in ALGORITHMS[n].tensor_hparams])
def test_a_tensor_that_cannot_broadcast_is_refused_at_construction(name):
    algorithm = ALGORITHMS[name]
    params = make_params(algorithm)
    bad = torch.full((7, 1), 0.01)
    shape = list(params[0].shape)
    with pytest.raises(ValueError, match=rf"Tensor lr must be 1-element or broadcast .* \[7, 1\] .* {shape}"):
        algorithm.ours(params, **{**algorithm.test_hparams, "lr": bad})
    optimizer = algorithm.ours(params[:1], **algorithm.test_hparams)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element or broadcast"):
        optimizer.add_param_group({"params": params[1:], "lr": bad})


@pytest.mark.parametrize("name", [n for n in NAMES if "lr" in ALGORITHMS[n].tensor_hparams])
def test_a_per_trial_lr_is_checked_where_torch_checks_a_tensor_lr(name):
    """torch refuses a multi-element lr first, before reading `params`; ours
    accepts it only as a per-trial shape, so with no parameter to broadcast against (params=None) it
    raises torch's exception, and an iterator of parameters is read once and still trained."""
    algorithm = ALGORITHMS[name]
    lr = torch.full((2, 1), 0.01)
    outcomes = []
    for cls in (algorithm.ours, algorithm.theirs):
        with pytest.raises(ValueError) as caught:
            cls(None, **{**algorithm.test_hparams, "lr": lr})
        outcomes.append(str(caught.value))
    assert outcomes[0] == outcomes[1] == "Tensor lr must be 1-element"
    params = [torch.nn.Parameter(torch.randn(2, 3, dtype=torch.float64))]
    optimizer = algorithm.ours(iter(params), **{**algorithm.test_hparams, "lr": lr})
    assert optimizer.param_groups[0]["params"] == params


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_betas_must_be_both_floats_or_both_tensors_as_in_torch(name):
    algorithm = ALGORITHMS[name]
    params = [torch.nn.Parameter(torch.randn(3, 2, dtype=torch.float64))]
    for betas in [(torch.tensor(0.9), 0.999), (0.9, torch.tensor([0.999])), (0, 0.999)]:
        messages = []
        for cls in (algorithm.ours, algorithm.theirs):
            with pytest.raises(ValueError) as caught:
                cls(params, betas=betas)
            messages.append(str(caught.value))
        assert messages[0] == messages[1] == "betas must be either both floats or both Tensors"
    # the per-trial shape: a [trials, 1] β1 with β2 a tensor too (torch fails on a [trials, 1] β1 with
    # "Boolean value of Tensor with more than one value is ambiguous", ours accepts it; alone it is refused)
    with pytest.raises(ValueError, match="^betas must be either both floats or both Tensors$"):
        algorithm.ours(params, betas=(torch.full((3, 1), 0.9), 0.999))
    algorithm.ours(params, betas=(torch.full((3, 1), 0.9), torch.tensor(0.999, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"^Tensor betas\[0\] must be 1-element or broadcast .* \[4, 1\]"):
        algorithm.ours(params, betas=(torch.full((4, 1), 0.9), torch.tensor(0.999)))


# ---- low precision --------------------------------------------------------------------------------


@pytest.mark.parametrize("lr_kind", ["number", "tensor"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", NAMES)
def test_low_precision_equals_torch_bit_for_bit(name, dtype, lr_kind):
    """Every flag combination, 6 steps, lr a number or a one-element tensor: parameters and state
    bit for bit as torch's for-loop path (foreach=False) computes them, so every line rounds as
    torch's does, operand order included (`d.mul(t)` and `t * d` round differently in bfloat16)."""
    algorithm = ALGORITHMS[name]
    for combo in algorithm.combinations():
        hparams = {**algorithm.test_hparams, **combo}
        if lr_kind == "tensor":
            hparams["lr"] = torch.tensor(hparams["lr"])
        runs = []
        for cls in (algorithm.ours, algorithm.theirs):
            params = make_params(algorithm, dtype, seed=1)
            kwargs = dict(hparams)
            if cls is algorithm.theirs and "foreach" in inspect.signature(cls).parameters:
                kwargs.setdefault("foreach", False)
            optimizer = cls(params, **kwargs)
            error = outcome(lambda: train(optimizer, params, algorithm, 6))  # noqa: B023 (called at once)
            runs.append((error, params, optimizer.state_dict()["state"]))
        (our_error, our_params, our_state), (their_error, their_params, their_state) = runs
        assert our_error == their_error, combo
        for a, b in zip(our_params, their_params, strict=False):
            torch.testing.assert_close(
                a.detach(), b.detach(), rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{combo}: {m}"
            )
        assert_bitwise(our_state, their_state, f"{combo}: state")


def assert_bitwise(ours_value, theirs_value, where):
    """Equal bit for bit (NaN equals NaN), through dicts and lists of tensors (L-BFGS's history)."""
    if torch.is_tensor(theirs_value):
        torch.testing.assert_close(
            ours_value, theirs_value, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{where}: {m}"
        )
    elif isinstance(theirs_value, dict):
        assert set(ours_value) == set(theirs_value), where
        for key in theirs_value:
            assert_bitwise(ours_value[key], theirs_value[key], f"{where}[{key!r}]")
    elif isinstance(theirs_value, (list, tuple)):
        assert len(ours_value) == len(theirs_value), where
        for i, (a, b) in enumerate(zip(ours_value, theirs_value, strict=True)):
            assert_bitwise(a, b, f"{where}[{i}]")
    elif isinstance(theirs_value, float) and theirs_value != theirs_value:
        assert ours_value != ours_value, f"{where}: {ours_value!r} is not nan"
    else:
        assert ours_value == theirs_value, f"{where}: {ours_value!r} != {theirs_value!r}"


def test_muon_nesterov_bfloat16_matches_torch_after_ten_steps():
    algorithm = ALGORITHMS["muon"]
    runs = []
    for cls in (ours.Muon, torch.optim.Muon):
        params = make_params(algorithm, torch.bfloat16, seed=2)
        train(cls(params, lr=0.02, momentum=0.9, nesterov=True), params, algorithm, 10)
        runs.append(params)
    for a, b in zip(*runs, strict=False):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)


# ---- the objects themselves -----------------------------------------------------------------------


def test_help_shows_the_pseudocode_and_dir_lists_the_classes():
    text = pydoc.render_doc(ours.Adam, renderer=pydoc.plaintext)
    assert "v_t ← β2 v_{t-1} + (1 - β2) g_t²" in text
    assert "AdamW" in ours.AdamW.__doc__ and "θ_t ← θ_{t-1} - γ λ θ_{t-1}" in ours.AdamW.__doc__
    for algorithm in ALGORITHMS.values():
        assert algorithm.class_name in dir(ours)
        assert algorithm.ours.__doc__.startswith(
            algorithm.ours.__module__ and inspect.getmodule(algorithm.ours).__doc__[:40]
        )
