"""Per-trial hyperparameters meet a float32 parameter in float32 (`optimizers.base.update_dtype`).

torch.optim reads a number lr in a float32 kernel as float32; a float64 `[trials, 1, 1]` lr that met
float32 tensors as float64 made every update line promote: full-size float64 temporaries and a copy
back (a third of the batched digits step), and an Adam with a per-trial weight decay stopped with a
dtype error. Watched here op by op (a dispatch mode), for every flag combination of every element-wise
algorithm with every per-trial hyperparameter it accepts, so no update line can slip back.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from optbench.optimizers.base import update_dtype
from optbench.optimizers.registry import ALGORITHMS

TRIALS = 6
SHAPE = (TRIALS, 5, 3)


class Float64Watch(TorchDispatchMode):
    """Names the ops that make a float64 tensor the size of the parameter, or mix float64 with a
    full-size float32 tensor (an in-place op whose promotion happens inside the kernel)."""

    def __init__(self, size: int):
        super().__init__()
        self.size, self.seen = size, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [a for a in (*args, *(kwargs or {}).values()) if isinstance(a, torch.Tensor)]
        outputs = [
            o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, torch.Tensor)
        ]
        if any(o.dtype == torch.float64 and o.numel() >= self.size for o in outputs):
            self.seen.add(f"{func} made a full-size float64 tensor")
        if any(a.dtype == torch.float32 and a.numel() >= self.size for a in tensors) and any(
            a.dtype == torch.float64 for a in tensors
        ):
            self.seen.add(f"{func} mixed float64 into a full-size float32 tensor")
        return out


def per_trial(value) -> torch.Tensor:
    """A float64 `[trials, 1, 1]` tensor of distinct values around `value`."""
    return torch.linspace(0.5, 1.0, TRIALS, dtype=torch.float64).reshape(TRIALS, 1, 1) * float(value)


def settings(algorithm, combo: dict) -> dict:
    values = {**algorithm.defaults(), **algorithm.test_hparams, **combo}
    keywords = dict(algorithm.test_hparams, **combo)
    for name in algorithm.tensor_hparams:
        value = values.get(name)
        if isinstance(value, tuple):
            keywords[name] = tuple(torch.full((TRIALS, 1, 1), float(v), dtype=torch.float64) for v in value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0:
            keywords[name] = per_trial(value)
    return keywords


CASES = [
    pytest.param(name, combo, id=f"{name}-{i}")
    for name, algorithm in ALGORITHMS.items()
    if algorithm.elementwise and algorithm.tensor_hparams and not algorithm.sparse_grad
    for i, combo in enumerate(algorithm.combinations())
]


@pytest.mark.parametrize(("name", "combo"), CASES)
def test_float64_per_trial_hyperparameters_step_float32_parameters_in_float32(name, combo):
    algorithm = ALGORITHMS[name]
    torch.manual_seed(0)
    theta = torch.randn(SHAPE, requires_grad=True)
    optimizer = algorithm.ours([theta], **settings(algorithm, combo))
    if hasattr(optimizer, "train"):
        optimizer.train()  # Schedule-Free steps in train mode
    watch = Float64Watch(theta.numel())
    for _ in range(3):
        theta.grad = torch.randn(SHAPE)
        with watch:
            optimizer.step()
    assert watch.seen == set()
    assert theta.dtype == torch.float32 and torch.isfinite(theta).all()


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (torch.float64, torch.float64),
        (torch.complex128, torch.float64),
        (torch.float32, torch.float32),
        (torch.complex64, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float16, torch.float32),
    ],
)
def test_update_dtype_is_torchs_opmath_type(dtype, expected):
    # torch's kernels compute a float16/bfloat16 update in float32 ("opmath"), so a per-trial value is
    # not rounded to the parameter's 8 or 11 bits before it is used
    assert update_dtype(dtype) == expected
