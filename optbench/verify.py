"""The equivalence certificate: ours and torch.optim run side by side and must agree.

For one algorithm and one combination of its flags, `compare_with_torch` builds identical
parameters for both implementations (two param groups with different learning rates), steps a
non-quadratic objective, halves the learning rate mid-run through a `torch.optim.lr_scheduler`,
checkpoints and restores both optimizers (and schedulers) through `state_dict`, and reports the
worst relative deviation of parameters and optimizer state seen at any step.

`certify` runs that for every combination in the registry's flag table; the pytest suite and
`optbench verify` are both thin callers of it. `certify_fast` does the same for the fast path
(`optbench.optimizers.fast_path`): fast == torch.optim for every combination in float64 and float32,
and fast == our readable path; with `compiled=True`, the same for the compiled fast path and its
bound against the eager slices. `optbench.certificate` runs every check for one algorithm and decides
whether it is equivalent.
`optbench.verify_classes` runs the same certificate for any optimizer class against any reference
class (a user's class, a zoo package's).
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass

import torch

from .optimizers.fast_path import FAST_ALGORITHMS, fast
from .optimizers.registry import ALGORITHMS, Algorithm

TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.complex128: 1e-9}
STEPS = 12
LR_MILESTONES = (3, 9)  # the scheduler halves lr after these steps
CHECKPOINT_AFTER = 6  # state_dict save / fresh optimizer / load_state_dict here


@dataclass
class Check:
    algorithm: str
    flags: dict
    dtype: str
    deviation: float  # worst relative deviation over steps, parameters and state
    tolerance: float
    error: str | None = None  # set when one side raised and the other did not

    @property
    def passed(self) -> bool:
        return self.error is None and self.deviation <= self.tolerance


def relative_deviation(ours, theirs) -> float:
    """max|a - b| / max|b| (normwise), recursing into lists, tuples and dicts; 0 for equal non-tensors."""
    if isinstance(theirs, torch.Tensor):
        if not isinstance(ours, torch.Tensor) or ours.shape != theirs.shape:
            return float("inf")
        if theirs.is_sparse:
            ours, theirs = ours.to_dense(), theirs.to_dense()
        # on the CPU: torch keeps `step` on the device where ours keeps it on the CPU (capturable, fused)
        wide = torch.complex128 if theirs.is_complex() else torch.float64
        a, b = ours.detach().to("cpu", wide), theirs.detach().to("cpu", wide)
        if torch.equal(a, b):
            return 0.0
        scale = b.abs().max().item() if b.numel() else 0.0
        return (a - b).abs().max().item() / max(scale, 1e-300)
    if isinstance(theirs, dict):
        if not isinstance(ours, dict) or set(ours) != set(theirs):
            return float("inf")
        return max([relative_deviation(ours[k], theirs[k]) for k in theirs], default=0.0)
    if isinstance(theirs, (list, tuple)):
        if not isinstance(ours, (list, tuple)) or len(ours) != len(theirs):
            return float("inf")
        return max([relative_deviation(a, b) for a, b in zip(ours, theirs, strict=False)], default=0.0)
    if isinstance(theirs, float) and isinstance(ours, (int, float)):
        return abs(ours - theirs) / max(abs(theirs), 1e-300) if ours != theirs else 0.0
    return 0.0 if ours == theirs else float("inf")


def objective(params: list[torch.Tensor], maximize: bool) -> torch.Tensor:
    """Smooth, non-quadratic, bounded below; couples coordinates within each tensor.

    With `maximize` the optimizer climbs -f, so both directions stay bounded.
    """
    total = 0
    for k, p in enumerate(params):
        x = torch.view_as_real(p) if p.is_complex() else p
        target = torch.linspace(-1.0, 1.5, x.numel(), dtype=x.dtype, device=x.device).reshape(x.shape)
        total = (
            total
            + torch.log(torch.cosh(1.3 * x - target)).sum()
            + 0.05 * (x**4).sum()
            + 0.1 * torch.sin(x.sum()) * (k + 1)
        )
    return -total if maximize else total


def initial_params(algorithm: Algorithm, dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
        for shape in algorithm.param_shapes
    ]


def param_groups(params: list[torch.Tensor], algorithm: Algorithm, lr: float) -> list[dict]:
    if algorithm.param_groups == 1:
        return [{"params": params, "lr": lr}]
    half = (len(params) + 1) // 2
    ratio = getattr(algorithm, "second_group_lr_ratio", 0.4)
    return [{"params": params[:half], "lr": lr}, {"params": params[half:], "lr": lr * ratio}]


class _Side:
    """One implementation's parameters, optimizer and scheduler, stepped in lockstep with the other."""

    def __init__(self, cls, algorithm, start, hparams, maximize_objective):
        self.cls, self.algorithm, self.hparams = cls, algorithm, hparams
        self.maximize_objective = maximize_objective
        self.params = [p.clone().requires_grad_(True) for p in start]
        lr = hparams.get("lr", algorithm.defaults().get("lr"))
        self.groups_lr = lr
        self.optimizer = ready(quietly(cls, param_groups(self.params, algorithm, lr), hparams))
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(LR_MILESTONES), 0.5)
        self.step_index = 0

    def closure(self):
        self.optimizer.zero_grad()
        loss = objective(self.params, self.maximize_objective)
        loss.backward()
        if self.algorithm.sparse_grad:
            for p in self.params:
                p.grad = _sparsify(p.grad, self.step_index)
        return loss

    def step(self):
        self.optimizer.step(self.closure)
        self.scheduler.step()
        self.step_index += 1

    def checkpoint_and_restore(self):
        """Save, rebuild from scratch, load: what a resumed training run does."""
        saved = copy.deepcopy((self.optimizer.state_dict(), self.scheduler.state_dict()))
        self.optimizer = quietly(
            self.cls, param_groups(self.params, self.algorithm, self.groups_lr), self.hparams
        )
        self.optimizer.load_state_dict(saved[0])
        ready(self.optimizer)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(LR_MILESTONES), 0.5)
        self.scheduler.load_state_dict(saved[1])


def quietly(cls, params, hparams: dict):
    """cls(params, **hparams) with anything it prints discarded (prodigyopt prints on construction,
    which would corrupt `optbench verify --json`)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return cls(params, **hparams)


def ready(optimizer):
    """Put an optimizer with a train/eval mode (Schedule-Free) in train mode; others unchanged."""
    if callable(getattr(optimizer, "train", None)):
        optimizer.train()
    return optimizer


def _sparsify(grad: torch.Tensor, step: int) -> torch.Tensor:
    """Keep a step-dependent subset of rows, as an embedding's gradient would."""
    rows = torch.arange(grad.shape[0], device=grad.device)
    keep = ((rows + step) % 3 != 0).to(grad.dtype).reshape(-1, *([1] * (grad.dim() - 1)))
    return (grad * keep).to_sparse(sparse_dim=1)


def compare_with_torch(
    algorithm: Algorithm,
    flags: dict,
    dtype=torch.float64,
    steps: int = STEPS,
    ours_cls=None,
    ours_hparams=None,
    reference_cls=None,
    device: str | torch.device = "cpu",
) -> Check:
    """Run ours and torch.optim (or `reference_cls`) in lockstep; return the worst relative deviation.

    device: where both sides' parameters live ('cuda' certifies ours against torch's CUDA kernels);
    the starting point is drawn on the CPU, so it is the same on every device.
    """
    hparams = {**algorithm.test_hparams, **flags}
    maximize = bool(hparams.get("maximize", False))
    start = [p.to(device) for p in initial_params(algorithm, dtype)]
    check = Check(algorithm.name, flags, str(dtype).replace("torch.", ""), 0.0, TOLERANCE[dtype])
    try:
        theirs = _Side(reference_cls or algorithm.theirs, algorithm, start, hparams, maximize)
        ours = _Side(
            ours_cls or algorithm.ours, algorithm, start, {**hparams, **(ours_hparams or {})}, maximize
        )
        for step in range(steps):
            theirs.step()
            ours.step()
            if step + 1 == CHECKPOINT_AFTER:
                theirs.checkpoint_and_restore()
                ours.checkpoint_and_restore()
            deviation = max(
                relative_deviation(o.detach(), t.detach())
                for o, t in zip(ours.params, theirs.params, strict=False)
            )
            if getattr(algorithm, "compare_state", True):
                deviation = max(
                    deviation,
                    _state_deviation(ours.optimizer, theirs.optimizer, getattr(algorithm, "group_state", ())),
                )
            check.deviation = max(check.deviation, deviation)
            if deviation != deviation:  # NaN: no point going on
                break
    except Exception as error:  # noqa: BLE001 - a certificate reports failures, it does not crash
        check.error = f"{type(error).__name__}: {error}"
    return check


def _state_deviation(ours, theirs, group_state=()) -> float:
    a, b = ours.state_dict(), theirs.state_dict()
    if "state" not in b:  # a wrapper's own layout (Lookahead): compare all of it
        return relative_deviation(a, b)
    deviation = relative_deviation(a["state"], b["state"])
    keys = ("lr",) + tuple(group_state)
    groups_ours = [[g.get(k) for k in keys] for g in a["param_groups"]]
    groups_theirs = [[g.get(k) for k in keys] for g in b["param_groups"]]
    return max(deviation, relative_deviation(groups_ours, groups_theirs))


def certify(names=None, dtypes=(torch.float64,), progress=None) -> list[Check]:
    """Every flag combination of every named algorithm (all by default), in each dtype."""
    checks = []
    for name in names or ALGORITHMS:
        algorithm = ALGORITHMS[name]
        for dtype in dtypes:
            combos = algorithm.combinations() if dtype == torch.float64 else [{}]
            for flags in combos:
                checks.append(compare_with_torch(algorithm, flags, dtype))
                if progress:
                    progress(checks[-1])
    return checks


def certify_fast(
    names=None, dtypes=(torch.float64, torch.float32), progress=None, chunk: int = 7, compiled: bool = False
) -> list[Check]:
    """The certificate for the fast path, for every named algorithm that has one (all by default).

    Eager slices (compiled=False): float64, every flag combination, fast vs torch.optim, with the
    buffers cut into slices of `chunk` elements so slices straddle parameter boundaries; other
    dtypes, default flags, whole buffers; plus fast vs our readable path in float64 (flag
    `reference=readable`). compiled=True: the compiled path (algorithms that have one), every flag
    combination in every dtype, plus compiled vs the eager slices in each dtype (flag
    `reference=eager slices`: the compiled-vs-eager bound). A check fails if the path was not taken.
    """
    checks = []
    for name in names or FAST_ALGORITHMS:
        algorithm = ALGORITHMS[name]
        for dtype in dtypes:
            combos = algorithm.combinations() if dtype == torch.float64 or compiled else [{}]
            for flags in combos:
                sliced = chunk if dtype == torch.float64 and not compiled else 1 << 20
                checks.append(_compare_fast(algorithm, flags, dtype, sliced, compiled))
                if progress:
                    progress(checks[-1])
        references = (
            [(torch.float64, algorithm.ours, "readable")]
            if not compiled
            else [(dtype, _fast_class(algorithm, 1 << 20, False, []), "eager slices") for dtype in dtypes]
        )
        for dtype, reference_cls, label in references:
            checks.append(_compare_fast(algorithm, {}, dtype, chunk, compiled, reference_cls=reference_cls))
            checks[-1].flags = {"reference": label}
            if progress:
                progress(checks[-1])
    return checks


def _fast_class(algorithm: Algorithm, chunk: int, compiled: bool, built: list):
    """fast(algorithm) on the eager slices of `chunk` elements or compiled; records its instances."""

    class Recorded(fast(algorithm.ours, compiled=compiled)):
        chunk_size = chunk

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    return Recorded


def _compare_fast(
    algorithm: Algorithm, flags: dict, dtype, chunk: int, compiled: bool, reference_cls=None
) -> Check:
    built = []
    ours_cls = _fast_class(algorithm, chunk, compiled, built)
    check = compare_with_torch(algorithm, flags, dtype, ours_cls=ours_cls, reference_cls=reference_cls)
    expected = "compiled" if compiled else "eager slices"
    if check.error is None and not any(
        getattr(o, "flat_group_steps", 0) and o.fast_path == expected for o in built
    ):
        check.error = f"the fast path ({expected}) was not taken"
    return check


# Trial values for the batched check: three settings per hyperparameter, all valid for every
# algorithm that uses the name. Tuples (betas, etas, step_sizes) become tuples of tensors.
TRIAL_VALUES = {
    "lr": (1.0, 0.5, 1.5),  # multiplies the algorithm's test lr
    "betas": ((0.8, 0.95), (0.9, 0.999), (0.5, 0.9)),
    "momentum": (0.9, 0.5, 0.7),
    "dampening": (0.0, 0.1, 0.3),
    "weight_decay": (0.0, 0.1, 0.05),
    "eps": (1e-8, 1e-3, 1e-6),
    "alpha": (0.9, 0.99, 0.5),
    "lr_decay": (0.0, 0.05, 0.01),
    "rho": (0.9, 0.5, 0.95),
    "momentum_decay": (0.004, 0.05, 0.01),
    "lambd": (1e-4, 0.05, 0.01),
    "t0": (1e6, 4.0, 2.0),
    "etas": ((0.5, 1.2), (0.3, 1.5), (0.6, 1.1)),
    "step_sizes": ((1e-6, 50.0), (1e-3, 0.05), (1e-4, 1.0)),
}


def rowwise_objective(x: torch.Tensor) -> torch.Tensor:
    """Non-quadratic and coupling the coordinates of each row, but never two rows (two trials)."""
    target = torch.linspace(-1.0, 1.5, x.shape[-1], dtype=x.dtype)
    return (torch.log(torch.cosh(1.3 * x - target)) + 0.05 * x**4).sum() + 0.1 * torch.sin(x.sum(-1)).sum()


def _trial_setting(algorithm: Algorithm, name: str, trial: int):
    value = TRIAL_VALUES[name][trial]
    return value * algorithm.test_hparams.get("lr", 1.0) if name == "lr" else value


def batched_equals_separate(algorithm: Algorithm, trials: int = 3, steps: int = STEPS) -> Check:
    """Tensor hyperparameters of shape [trials, 1] on a [trials, 2] parameter == `trials` separate runs."""
    names = algorithm.tensor_hparams
    check = Check(algorithm.name, {"tensor": ",".join(names)}, "float64", 0.0, TOLERANCE[torch.float64])
    if not names:
        check.error = "not element-wise: trials need separate parameters"
        return check
    start = torch.randn(trials, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    base = {k: v for k, v in algorithm.test_hparams.items() if k not in names}

    def as_column(values):
        return torch.tensor(values, dtype=torch.float64).reshape(-1, 1)

    batched = {}
    for name in names:
        values = [_trial_setting(algorithm, name, i) for i in range(trials)]
        batched[name] = (
            tuple(as_column(v) for v in zip(*values, strict=False))
            if isinstance(values[0], tuple)
            else as_column(values)
        )
    try:
        together = _run_alone(
            algorithm.ours, start.clone(), {**base, **batched}, steps, algorithm.sparse_grad
        )
        for i in range(trials):
            single = {name: _trial_setting(algorithm, name, i) for name in names}
            alone = _run_alone(
                algorithm.theirs, start[i : i + 1].clone(), {**base, **single}, steps, algorithm.sparse_grad
            )
            check.deviation = max(check.deviation, relative_deviation(together[i : i + 1], alone))
    except Exception as error:  # noqa: BLE001
        check.error = f"{type(error).__name__}: {error}"
    return check


def _run_alone(cls, x: torch.Tensor, hparams: dict, steps: int, sparse: bool = False) -> torch.Tensor:
    x.requires_grad_(True)
    optimizer = ready(quietly(cls, [x], hparams))
    for _ in range(steps):
        optimizer.zero_grad()
        rowwise_objective(x).backward()
        if sparse:  # every row present: the same rows whether a trial runs alone or batched
            x.grad = x.grad.to_sparse(sparse_dim=1)
        optimizer.step()
    return x.detach()
