"""torch's own optimizer database drives this test: every config torch tests, through ours and torch's.

`torch.testing._internal.common_optimizers.optim_db` holds one `OptimizerInfo` per algorithm: the
flag combinations torch tests (`optim_inputs_func`, crossed with the implementation switches each
algorithm supports) and the bad arguments with their exact exception (`optim_error_inputs_func`).
Each config runs on ours and on torch.optim side by side, from the same parameters and the same
objective, and after every step we compare parameters, state, param_groups, `repr` and what
`step()` returned. The run includes a parameter that gets a gradient only every third step
(`zero_grad()` leaves it None in between) and a frozen one (never a gradient), two param groups
where the algorithm allows them, and steps with and without a closure.
Dtypes: float32, float64, complex64 (where torch supports complex), float16 and bfloat16, and sparse
gradients where torch supports them; tolerances are `torch.testing.assert_close`'s per-dtype
defaults (torch's own).
"""

from __future__ import annotations

import copy
import math
import os
import re
import warnings

import pytest
import torch

pytest.importorskip("expecttest")  # torch's testing internals import it (the `test` extra)
from torch.testing._internal.common_optimizers import (
    OptimizerErrorEnum,
    _get_optim_inputs_including_global_cliquey_kwargs,
    optim_db,
)

import optbench.optimizers as ours

STEPS = 4
# The device both sides run on: the CPU here; the GPU check script sets it to run the same configs on CUDA.
DEVICE = os.environ.get("OPTBENCH_TEST_DEVICE", "cpu")
DTYPES = (torch.float32, torch.float64, torch.complex64, torch.float16, torch.bfloat16)


def configs():
    """(OptimizerInfo, dtype, sparse gradients?, kwargs) for every config torch tests on the CPU, and
    in float32/float64 its CUDA-only ones."""
    cases = []
    for info in optim_db:
        for dtype in DTYPES:
            if dtype.is_complex and not info.supports_complex:
                continue
            for sparse in (
                (True,)
                if info.only_supports_sparse_grads
                else (False, True)
                if info.supports_sparse and dtype == torch.float64
                else (False,)
            ):
                base = {c.desc: c.kwargs for c in info.optim_inputs_func(DEVICE, dtype)}
                for config in _get_optim_inputs_including_global_cliquey_kwargs(DEVICE, dtype, info):
                    # the dtype-specific settings (e.g. eps for float16) of the config it derives from
                    base_desc = config.desc.split(" & ")[0]
                    kwargs = {**base.get(base_desc, {}), **config.kwargs}
                    if sparse and not info.only_supports_sparse_grads:
                        kwargs = {**kwargs, **info.metadata_for_sparse[0]}
                    cases.append(
                        pytest.param(
                            info, dtype, sparse, kwargs, id=_case_id(info, dtype, sparse, config.desc)
                        )
                    )
                if sparse or dtype not in (torch.float32, torch.float64) or DEVICE != "cpu":
                    continue
                # torch tests more configs on CUDA (tensor lr and betas of odd shapes...); they run on
                # the CPU too once `capturable`, a CUDA-graph switch, is dropped
                for config in info.optim_inputs_func("cuda", dtype):
                    if config.desc not in base:
                        kwargs = {k: v for k, v in config.kwargs.items() if k != "capturable"}
                        cases.append(
                            pytest.param(
                                info,
                                dtype,
                                sparse,
                                kwargs,
                                id=_case_id(
                                    info, dtype, sparse, f"{config.desc} (CUDA config, capturable dropped)"
                                ),
                            )
                        )
    return cases


def _case_id(info, dtype, sparse, desc):
    return f"{info.name}-{str(dtype).removeprefix('torch.')}{'-sparse' if sparse else ''}-{desc}"


def make_params(info, dtype, sparse):
    """Leaf tensors: [trained every step, trained every step, trained every third step, frozen]."""
    generator = torch.Generator().manual_seed(0)
    matrices_only = info.name == "Muon"  # Muon orthogonalises 2-D parameters only
    shapes = [(4, 3), (3, 2) if matrices_only or sparse else (3,), (2, 5), (2, 2)]
    real_dtype = torch.float32 if dtype == torch.complex64 else dtype
    params = []
    for shape in shapes:
        value = torch.randn(
            shape + ((2,) if dtype.is_complex else ()), generator=generator, dtype=torch.float64
        ).to(real_dtype)
        params.append(torch.view_as_complex(value) if dtype.is_complex else value)
    params = [torch.nn.Parameter(p.to(DEVICE)) for p in params]
    params[-1].requires_grad_(False)
    return params


def loss_and_grads(params, step, sparse):
    """Σ ½cθ² + sin(3θ) over the parameters in play at `step` (a fixed, curved objective)."""
    in_play = params[:2] + ([params[2]] if step % 3 == 0 else [])
    loss = 0
    for c, p in enumerate(in_play, start=1):
        x = torch.view_as_real(p) if p.is_complex() else p
        loss = loss + (0.5 * c * x * x + torch.sin(3 * x)).sum()
    loss.backward()
    if sparse:
        for p in in_play:  # rows step % rows and the last row: a different subset each step
            rows = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)
            rows[step % p.shape[0]] = rows[-1] = True
            dense = p.grad * rows.view(-1, *([1] * (p.dim() - 1)))
            p.grad = dense.to_sparse()
    return loss.detach()


def build(cls, info, params, kwargs):
    if info.supports_param_groups:
        return cls([{"params": params[:2]}, {"params": params[2:]}], **kwargs)
    return cls(params, **kwargs)


def run_step(optimizer, params, step, sparse, info):
    optimizer.zero_grad()
    if step % 2 or info.step_requires_closure:
        return optimizer.step(lambda: (optimizer.zero_grad(), loss_and_grads(params, step, sparse))[1])
    loss_and_grads(params, step, sparse)
    return optimizer.step()


def numbers_reference_kwargs(dtype, kwargs):
    """The torch config whose numbers ours must equal. In float16/bfloat16 torch's fused kernels
    compute each line in float32 and round once, which ours (like torch's for-loop) does not:
    there ours equals torch's for-loop, and the fused flag's other effects are checked against
    torch's fused optimizer (documented in optbench/optimizers/base.py)."""
    if kwargs.get("fused") and dtype in (torch.float16, torch.bfloat16):
        return {**kwargs, "fused": False}
    return kwargs


def assert_same(ours_value, theirs_value, where):
    if isinstance(theirs_value, torch.Tensor):
        assert isinstance(ours_value, torch.Tensor), f"{where}: {ours_value!r} is not a tensor"
        torch.testing.assert_close(ours_value, theirs_value, equal_nan=True, msg=lambda m: f"{where}: {m}")
    elif isinstance(theirs_value, dict):
        assert set(ours_value) == set(theirs_value), f"{where}: keys {set(ours_value)} != {set(theirs_value)}"
        for key in theirs_value:
            assert_same(ours_value[key], theirs_value[key], f"{where}[{key!r}]")
    elif isinstance(theirs_value, (list, tuple)):
        assert type(ours_value) is type(theirs_value) and len(ours_value) == len(theirs_value), (
            f"{where}: {ours_value!r} != {theirs_value!r}"
        )
        for i, (a, b) in enumerate(zip(ours_value, theirs_value, strict=False)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs_value, float) and math.isnan(theirs_value):
        assert isinstance(ours_value, float) and math.isnan(ours_value), f"{where}: {ours_value!r} != nan"
    else:
        assert ours_value == theirs_value, f"{where}: {ours_value!r} != {theirs_value!r}"


def outcome(action):
    """(result, exception type, message, warning messages) of action()."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = action(), None
        except Exception as exc:  # compared with torch's: type and message
            result, error = None, exc
    # torch's sparse Adagrad builds sparse tensors internally, and torch warns (once per process)
    # that it skips their invariant checks: a note on torch's implementation, not on the optimizer
    messages = sorted(
        {
            str(w.message)
            for w in caught
            if not str(w.message).startswith("Sparse invariant checks are implicitly disabled")
        }
    )
    # autograd names the tensor it refuses to change in place: ours updates a complex parameter
    # through its real view wherever torch does, and sometimes where torch changes it directly
    message = error and str(error).replace("a view of a leaf Variable", "a leaf Variable")
    return result, error and type(error), message, messages


@pytest.mark.parametrize("info, dtype, sparse, kwargs", configs())
def test_config_matches_torch(info, dtype, sparse, kwargs):
    our_cls = getattr(ours, info.name)
    params_theirs = make_params(info, dtype, sparse)
    params_ours = [
        torch.nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad) for p in params_theirs
    ]
    theirs = outcome(lambda: build(info.optim_cls, info, params_theirs, copy.deepcopy(kwargs)))
    mine = outcome(lambda: build(our_cls, info, params_ours, copy.deepcopy(kwargs)))
    assert mine[1:] == theirs[1:], "construction differs"
    if theirs[1] is not None:
        return
    our_optimizer, theirs_at_construction = mine[0], repr(theirs[0])
    assert repr(our_optimizer) == theirs_at_construction
    reference_kwargs = numbers_reference_kwargs(dtype, kwargs)
    torch_optimizer = (
        theirs[0]
        if reference_kwargs is kwargs
        else build(info.optim_cls, info, params_theirs, copy.deepcopy(reference_kwargs))
    )
    param_groups = copy.deepcopy(theirs[0].state_dict()["param_groups"])
    for step in range(STEPS):
        theirs = outcome(lambda: run_step(torch_optimizer, params_theirs, step, sparse, info))
        mine = outcome(lambda: run_step(our_optimizer, params_ours, step, sparse, info))
        assert mine[1:] == theirs[1:], f"step {step}: outcome (exception, warnings) differs"
        if theirs[1] is not None:
            return
        assert_same(mine[0], theirs[0], f"step {step}: step()'s return value")
        for i, (a, b) in enumerate(zip(params_ours, params_theirs, strict=False)):
            assert_same(a.detach(), b.detach(), f"step {step}: parameter {i}")
        expected = {**torch_optimizer.state_dict(), "param_groups": param_groups}
        assert_same(our_optimizer.state_dict(), expected, f"step {step}: state_dict")
        assert repr(our_optimizer) == theirs_at_construction


def error_configs():
    cases = []
    for info in optim_db:
        for dtype in (torch.float32,):
            for i, error in enumerate(
                info.optim_error_inputs_func(DEVICE, dtype) if info.optim_error_inputs_func else []
            ):
                cases.append(
                    pytest.param(info, dtype, i, id=f"{info.name}-{error.optimizer_error_input.desc}")
                )
    return cases


@pytest.mark.parametrize("info, dtype, index", error_configs())
def test_error_input_matches_torch(info, dtype, index):
    """torch's bad arguments, run as torch's `TestOptimRenewed.test_errors` runs them (`params` as the
    database gives them, `None` included): ours raises (or warns) what torch does, same type and message."""

    def attempt(cls):
        error = info.optim_error_inputs_func(DEVICE, dtype)[index]  # fresh parameters for each side
        config = error.optimizer_error_input
        optimizer = cls(config.params, **config.kwargs)
        if error.error_on == OptimizerErrorEnum.STEP_ERROR:
            optimizer.step()

    error = info.optim_error_inputs_func(DEVICE, dtype)[index]
    _, their_error, their_message, their_warnings = outcome(lambda: attempt(info.optim_cls))
    _, our_error, our_message, our_warnings = outcome(lambda: attempt(getattr(ours, info.name)))
    if issubclass(error.error_type, Warning):
        assert any(re.search(error.error_regex, w) for w in their_warnings)  # the database describes torch
        assert any(re.search(error.error_regex, w) for w in our_warnings), (
            f"expected a warning matching {error.error_regex!r}, got {our_warnings}"
        )
        return
    assert their_error is error.error_type and re.search(error.error_regex, their_message)
    assert our_error is their_error, f"{our_error} ({our_message}) != {their_error} ({their_message})"
    assert our_message == their_message
