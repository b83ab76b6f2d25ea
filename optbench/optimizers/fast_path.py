"""The fast path: the same readable update, run once per param group over contiguous buffers.

    from optbench.optimizers import Adam, fast
    optimizer = fast(Adam)(model.parameters(), lr=1e-3)     # or: FastAdam = fast(Adam)

`fast(Adam)` is a subclass of our `Adam` with the same constructor, state keys and maths. On its first
step it moves each param group's parameters, gradients and per-parameter state into one contiguous
buffer each (every tensor you passed becomes a view into its buffer: same object, same values), and
from then on calls the algorithm's own `update()` on the group's buffers, in slices of `CHUNK`
(2^20) elements. Every line of the pseudocode is then one kernel over a slice of all parameters
instead of one per tensor, which removes the per-tensor overhead that dominates small models, and a
slice stays in the CPU's cache from one line to the next, which saves memory traffic on large ones.
It is the readable code, not a second implementation, so it computes the same numbers; `optbench.verify.certify_fast` checks that it
equals torch.optim (and the readable path) in float64 and float32 for every flag combination.

Why a class factory and not a `fast=True` keyword: our constructors keep torch's exact signatures
(a drop-in, tested); `fast(Adam)` keeps them too.

What a user should know:
- `zero_grad()` zeroes the gradient buffer in place whatever `set_to_none` says (the gradients live
  in it; `backward()` then accumulates into the views). A parameter that receives no gradient is
  therefore stepped with g = 0, exactly as torch.optim does after `zero_grad(set_to_none=False)`.
  If a gradient is replaced (`p.grad = ...`, `model.zero_grad()`), it is copied into the buffer
  (correct, one extra copy); a parameter whose gradient is None makes its group take the readable
  per-parameter path for that step, as torch skips such a parameter.
- A group takes the readable per-parameter path whenever flattening cannot be exact: complex or
  sparse parameters, mixed dtypes or devices, non-contiguous parameters, tensor hyperparameters
  with more than one element (a `[trials, 1]` lr broadcasts against a `[trials, d]` parameter,
  not against a flat buffer), or parameters whose step counters differ after `load_state_dict`.
- Element-wise algorithms only (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam,
  ASGD, Rprop). Adafactor (per-tensor RMS and row/column statistics), LBFGS (dot products over all
  parameters), Muon (orthogonalises each matrix) and SparseAdam (sparse rows) reduce within each
  tensor, so flattening would change their maths: they keep the readable path only.
- torch.compile, opt-in, for Adam, AdamW, RMSprop (plain, centered, momentum), Adagrad and NAdam:
  `fast(cls, compiled=True)` runs each group's steady-state steps as one compiled kernel per
  algorithm (`adam_kernel`, `rmsprop_kernel`, ... below: the same lines, fused by inductor into one
  pass over the buffers), run by one mixin, `CompiledKernel`. The per-step numbers (-γ/(1-β1^t),
  √(1-β2^t), γ̃, NAdam's μ_t and ∏μ_i, ...) are computed in Python from the readable formulas and
  passed as 0-d tensors, flags too, so the graph is the same at every step, learning rate and flag
  combination: no recompilation when lr changes (RMSprop's optional buffers, centered and momentum,
  select one of four graphs). Costs: the first compiled step compiles (about 10 s cold on a 2-core
  CPU, 0.1-1 s with inductor's on-disk cache warm; one compile per group size, dtype and buffer set,
  as the kernel is compiled with dynamic=False; past torch's recompile limit, 8 per kernel, a group
  falls back to the eager slices) and needs a C++ compiler. Adam's amsgrad and tensor
  hyperparameters take the eager slices.
  Measured: benchmarks/README.md, "Why the fast path does not use torch.compile" (by default).
  Compiling the readable `update()` itself was slower than the slices (same section).
"""

from __future__ import annotations

import torch

from .base import PseudocodeOptimizer

FAST_ALGORITHMS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
                   "radam", "asgd", "rprop")

_FAST_CLASSES: dict[tuple, type] = {}

# Elements per slice of the buffers that `update()` runs on at a time (see step_in_chunks).
CHUNK = 1 << 20


def fast(cls: type, compiled: bool = False) -> type:
    """`cls` (one of our element-wise optimizer classes) with the flat-buffer fast path.

    compiled=True (opt-in; Adam, AdamW, RMSprop, Adagrad, NAdam): steps run as one torch.compile'd
    kernel per group, see the module docstring for the compile cost."""
    if (cls, compiled) in _FAST_CLASSES:
        return _FAST_CLASSES[cls, compiled]
    from .registry import ALGORITHMS

    supported = {ALGORITHMS[name].ours for name in FAST_ALGORITHMS}
    if cls not in supported:
        raise TypeError(f"{cls.__name__} has no fast path (element-wise algorithms only: "
                        f"{', '.join(c.__name__ for c in supported)})")
    if compiled:
        compilable = {ALGORITHMS[name].ours for name in COMPILED_ALGORITHMS}
        if cls not in compilable:
            raise TypeError(f"{cls.__name__} has no compiled fast path (only "
                            f"{', '.join(c.__name__ for c in compilable)})")
        name = next(n for n in COMPILED_ALGORITHMS if ALGORITHMS[n].ours is cls)
        fast_cls = type(f"FastCompiled{cls.__name__}", (CompiledKernel, FlatBuffers, cls),
                        {"__doc__": f"{cls.__name__} on the compiled fast path (optbench.optimizers.fast_path).",
                         "compiled_kernel": COMPILED[name]})
    else:
        fast_cls = type(f"Fast{cls.__name__}", (FlatBuffers, cls),
                        {"__doc__": f"{cls.__name__} on the flat-buffer fast path (optbench.optimizers.fast_path)."})
    _FAST_CLASSES[cls, compiled] = fast_cls
    return fast_cls


class FlatBuffers(PseudocodeOptimizer):
    """Mixin: `step_group` runs `update()` once on a group's contiguous buffers when it can."""

    def step_group(self, group: dict) -> None:
        buffers = self._buffers(group)
        if buffers is None:
            super().step_group(group)
        else:
            buffers.step(self, group)
            self.flat_group_steps = getattr(self, "flat_group_steps", 0) + 1

    def zero_grad(self, set_to_none: bool = True) -> None:
        for buffers in getattr(self, "_flat", {}).values():
            buffers.grad.zero_()
        flat_params = {id(p) for b in getattr(self, "_flat", {}).values() for p in b.params}
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) not in flat_params and p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:  # as torch.optim.Optimizer.zero_grad does
                        if p.grad.grad_fn is not None:
                            p.grad.detach_()
                        else:
                            p.grad.requires_grad_(False)
                        p.grad.zero_()

    def _buffers(self, group: dict) -> GroupBuffers | None:
        flat = self.__dict__.setdefault("_flat", {})
        buffers = flat.get(id(group))
        if buffers is not None:
            if buffers.still_valid(self, group):
                return buffers
            buffers.release(self)
            del flat[id(group)]
        if not flattenable(self, group):
            return None
        buffers = GroupBuffers.gather(self, group)
        if buffers is not None:
            flat[id(group)] = buffers
        return buffers


def flattenable(optimizer, group: dict) -> bool:
    params = group["params"]
    if not params or any(p.grad is None or p.grad.is_sparse or p.is_complex() or not p.is_contiguous()
                         for p in params):
        return False
    if len({(p.dtype, p.device) for p in params}) != 1:
        return False
    hyperparameters = [v for value in group.values() if value is not params
                       for v in (value if isinstance(value, (tuple, list)) else (value,))]
    return not any(isinstance(v, torch.Tensor) and v.numel() > 1 for v in hyperparameters)


def _shaped_like_buffer(value, numel: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 1 and value.numel() == numel


class GroupBuffers:
    """One param group's parameters, gradients and state, each as one contiguous buffer.

    `state` is what `update()` sees: buffers for the per-element state, and one shared object
    for each per-parameter scalar (the step counter...), which every parameter's state holds too.
    """

    def __init__(self, params, theta, grad, state, offsets):
        self.params, self.theta, self.grad, self.state, self.offsets = params, theta, grad, state, offsets
        self.grad_views = [self.view(grad, i) for i in range(len(params))]
        self.data_ptrs = [p.data_ptr() for p in params]
        self.distributed: dict = {}

    def view(self, buffer: torch.Tensor, i: int) -> torch.Tensor:
        start, stop = self.offsets[i], self.offsets[i + 1]
        return buffer[start:stop].view(self.params[i].shape)

    @classmethod
    def gather(cls, optimizer, group: dict) -> GroupBuffers | None:
        params = list(group["params"])
        offsets = [0]
        for p in params:
            offsets.append(offsets[-1] + p.numel())
        states = [optimizer.state.get(p, {}) for p in params]
        keys = {tuple(sorted(s)) for s in states}
        if len(keys) != 1:
            return None
        state = {}
        for key in next(iter(keys)):
            values = [s[key] for s in states]
            if all(isinstance(v, torch.Tensor) and v.shape == p.shape for v, p in zip(values, params)) \
                    and not all(v.dim() == 0 for v in values):
                state[key] = torch.cat([v.detach().reshape(-1) for v in values])
            elif all(_equal(v, values[0]) for v in values):
                state[key] = values[0]
            else:
                return None  # e.g. step counters that differ: the readable path steps them apart
        with torch.no_grad():
            theta = torch.cat([p.detach().reshape(-1) for p in params])
            grad = torch.cat([p.grad.detach().reshape(-1) for p in params])
        buffers = cls(params, theta, grad, state, offsets)
        for i, p in enumerate(params):
            p.data = buffers.view(theta, i)
            p.grad = buffers.grad_views[i]
        buffers.data_ptrs = [p.data_ptr() for p in params]
        buffers.distribute(optimizer)
        return buffers

    def distribute(self, optimizer) -> None:
        """Give every parameter's state a view of each buffer and the shared scalars."""
        if not self.state:
            for p in self.params:
                optimizer.state.pop(p, None)  # stateless (SGD without momentum), as torch keeps it
            self.distributed = {}
            return
        numel = self.offsets[-1]
        for i, p in enumerate(self.params):
            optimizer.state[p] = {key: self.view(value, i) if _shaped_like_buffer(value, numel) else value
                                  for key, value in self.state.items()}
        self.distributed = dict(self.state)

    def still_valid(self, optimizer, group: dict) -> bool:
        """Cheap per-step check that nobody replaced a parameter, a gradient or the state."""
        params = group["params"]
        if len(params) != len(self.params) or any(p is not q for p, q in zip(params, self.params)):
            return False
        for i, p in enumerate(params):
            if p.data_ptr() != self.data_ptrs[i] or p.grad is None:
                return False
            if p.grad is not self.grad_views[i]:
                if p.grad.is_sparse or p.grad.shape != p.shape:
                    return False
                self.grad_views[i].copy_(p.grad)   # a replaced gradient: copied into the buffer
                p.grad = self.grad_views[i]
            state = optimizer.state.get(p)
            if self.state and (state is None or state.get("step", None) is not self.state.get("step", None)):
                return False
        if self.state:
            numel = self.offsets[-1]
            first = optimizer.state[params[0]]
            for key, value in self.state.items():
                if _shaped_like_buffer(value, numel) and first.get(key) is not None \
                        and first[key].data_ptr() != value.data_ptr():
                    return False
        return True

    def release(self, optimizer) -> None:
        """Give each parameter its own copy of the shared scalars before the per-parameter path runs,
        which steps each parameter's counter on its own."""
        numel = self.offsets[-1]
        for p in self.params:
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if value is self.state.get(key) and isinstance(value, torch.Tensor) \
                        and not _shaped_like_buffer(value, numel):
                    state[key] = value.clone()

    def step(self, optimizer, group: dict) -> None:
        if not self.state or not self.distributed:
            # first step: whole buffers, so state the update creates lazily (SGD's b_1 ← g_1) is whole
            if not self.state:
                self.state.update(optimizer.init_state(self.theta, group))
            optimizer.update(self.theta, self.grad, self.state, group)
        elif not getattr(optimizer, "step_compiled", lambda buffers, group: False)(self, group):
            self.step_in_chunks(optimizer, group)
        if any(self.distributed.get(k) is not v for k, v in self.state.items()) \
                or len(self.distributed) != len(self.state):
            self.distribute(optimizer)

    def step_in_chunks(self, optimizer, group: dict) -> None:
        """`update()` on consecutive slices of the buffers, each small enough to stay in cache
        between the pseudocode's lines (and to keep the lines' temporaries small).

        Element-wise maths makes slices independent; the per-parameter scalars (step counter...)
        are the same for every slice, so each slice steps its own copy and the first slice's
        result is kept.
        """
        numel = self.offsets[-1]
        kept = None
        for start in range(0, numel, CHUNK):
            stop = min(start + CHUNK, numel)
            chunk = {key: value[start:stop] if _shaped_like_buffer(value, numel)
                     else value.clone() if isinstance(value, torch.Tensor) else value
                     for key, value in self.state.items()}
            optimizer.update(self.theta[start:stop], self.grad[start:stop], chunk, group)
            if kept is None:
                kept = chunk
        for key, value in kept.items():
            shared = self.state[key]
            if _shaped_like_buffer(shared, numel):
                continue
            if isinstance(shared, torch.Tensor) and isinstance(value, torch.Tensor) \
                    and shared.shape == value.shape and shared.dtype == value.dtype:
                shared.copy_(value)       # in place: every parameter's state holds this object
            else:
                self.state[key] = value

def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    return a == b


# ---- The opt-in compiled kernels (fast(cls, compiled=True)) -------------------------------------
#
# One small kernel per algorithm over a group's flat buffers, and one `*_arguments` function per
# algorithm that computes every per-step number in Python from the readable formulas. The kernels
# take those numbers as 0-d tensors (flags too: ±1 signs, 0-d bools read by torch.where), so one
# graph serves every step, learning rate and flag combination; only the set of state buffers (e.g.
# RMSprop's momentum_buffer and grad_avg, passed as None when absent) selects a different graph.
# `CompiledKernel` is the one mechanism running them; `COMPILED` maps an algorithm to its pair.


def adam_kernel(theta, g, m, v, sign, coupled, weight_decay, theta_scale, one_minus_beta1, beta2,
                one_minus_beta2, bias_correction2_sqrt, eps, step_size):
    """Adam's lines (optbench/optimizers/adam.py) on whole buffers. Every argument after the buffers
    is a 0-d tensor computed by `adam_arguments`, flags included (sign = ±1, coupled a bool,
    theta_scale = 1 without decoupled decay: exact), so one graph serves every flag combination,
    step and learning rate."""
    g = sign * g                                        # g_t ← ±∇f_t(θ_{t-1})  (maximize: -)
    theta.mul_(theta_scale)                             # θ_{t-1} ← θ_{t-1} - γλθ_{t-1}  (decoupled: 1 - γλ)
    g = torch.where(coupled, g + weight_decay * theta, g)   # g_t ← g_t + λ θ_{t-1}  (coupled decay only)
    m.lerp_(g, one_minus_beta1)                         # m_t ← β1 m_{t-1} + (1 - β1) g_t
    v.mul_(beta2).add_(one_minus_beta2 * g * g)         # v_t ← β2 v_{t-1} + (1 - β2) g_t²
    denominator = v.sqrt() / bias_correction2_sqrt + eps   # √v̂_t + ε, v̂_t ← v_t / (1 - β2^t)
    theta.add_(step_size * m / denominator)             # θ_t ← θ_{t-1} - γ m̂_t / (√v̂_t + ε), m̂_t folded


def adam_arguments(state, group, t):
    if group["amsgrad"]:
        return None                                     # the eager slices handle amsgrad
    γ, (β1, β2), ε, λ = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    decoupled = bool(group.get("decoupled_weight_decay", False)) and λ != 0
    return ((state["exp_avg"], state["exp_avg_sq"]),
            dict(sign=-1.0 if group["maximize"] else 1.0, coupled=λ != 0 and not decoupled,
                 weight_decay=λ, theta_scale=1 - γ * λ if decoupled else 1.0,
                 one_minus_beta1=1 - β1, beta2=β2, one_minus_beta2=1 - β2,
                 bias_correction2_sqrt=(1 - β2 ** t) ** 0.5, eps=ε,
                 step_size=-γ / (1 - β1 ** t)), {})


def rmsprop_kernel(theta, g, v, g_ave, b, sign, coupled, weight_decay, alpha, one_minus_alpha, eps,
                   momentum, minus_lr):
    """RMSprop's lines (optbench/optimizers/rmsprop.py). g_ave is None unless centered, b None
    unless μ > 0 (each a graph of its own); the numbers are 0-d tensors from `rmsprop_arguments`."""
    g = sign * g                                        # g_t ← ±∇f_t(θ_{t-1})  (maximize: -)
    g = torch.where(coupled, g + weight_decay * theta, g)   # g_t ← g_t + λ θ_{t-1}  (λ ≠ 0)
    v.mul_(alpha).add_(one_minus_alpha * g * g)         # v_t ← α v_{t-1} + (1 - α) g_t²
    if g_ave is not None:                               # centered:
        g_ave.lerp_(g, one_minus_alpha)                 # g^ave_t ← α g^ave_{t-1} + (1 - α) g_t
        denominator = (v - g_ave * g_ave).sqrt() + eps  # √ṽ_t + ε, ṽ_t ← v_t - (g^ave_t)²
    else:
        denominator = v.sqrt() + eps                    # √ṽ_t + ε, ṽ_t ← v_t
    if b is not None:                                   # μ > 0:
        b.mul_(momentum).add_(g / denominator)          # b_t ← μ b_{t-1} + g_t / (√ṽ_t + ε)
        theta.add_(minus_lr * b)                        # θ_t ← θ_{t-1} - γ b_t
    else:
        theta.add_(minus_lr * (g / denominator))        # θ_t ← θ_{t-1} - γ g_t / (√ṽ_t + ε)


def rmsprop_arguments(state, group, t):
    γ, α, ε, λ, μ = group["lr"], group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
    if (μ != 0 and "momentum_buffer" not in state) or (group["centered"] and "grad_avg" not in state):
        return None                                     # the readable update says what is missing
    return ((state["square_avg"], state["grad_avg"] if group["centered"] else None,
             state["momentum_buffer"] if μ != 0 else None),
            dict(sign=-1.0 if group["maximize"] else 1.0, coupled=λ != 0, weight_decay=λ, alpha=α,
                 one_minus_alpha=1 - α, eps=ε, momentum=μ, minus_lr=-γ), {})


def adagrad_kernel(theta, g, state_sum, sign, coupled, weight_decay, eps, minus_lr):
    """Adagrad's lines (optbench/optimizers/adagrad.py); minus_lr = -γ̃ from `adagrad_arguments`."""
    g = sign * g                                        # g_t ← ±∇f_t(θ_{t-1})  (maximize: -)
    g = torch.where(coupled, g + weight_decay * theta, g)   # g_t ← g_t + λ θ_{t-1}  (λ ≠ 0)
    state_sum.add_(g * g)                               # state_sum_t ← state_sum_{t-1} + g_t²
    theta.add_(minus_lr * (g / (state_sum.sqrt() + eps)))   # θ_t ← θ_{t-1} - γ̃ g_t / (√state_sum_t + ε)


def adagrad_arguments(state, group, t):
    γ, η, λ, ε = group["lr"], group["lr_decay"], group["weight_decay"], group["eps"]
    return ((state["sum"],),
            dict(sign=-1.0 if group["maximize"] else 1.0, coupled=λ != 0, weight_decay=λ, eps=ε,
                 minus_lr=-γ / (1 + (t - 1) * η)), {})      # γ̃ ← γ / (1 + (t - 1) η)


def nadam_kernel(theta, g, m, v, sign, coupled, weight_decay, theta_scale, one_minus_beta1, beta2,
                 one_minus_beta2, bias_correction2, eps, g_step, m_step):
    """NAdam's lines (optbench/optimizers/nadam.py); μ_t, ∏μ_i and the two step sizes of m̂_t's
    terms are computed in Python by `nadam_arguments`."""
    g = sign * g                                        # g_t ← ±∇f_t(θ_{t-1})  (maximize: -)
    theta.mul_(theta_scale)                             # θ_t ← θ_{t-1} - γλθ_{t-1}  (decoupled only)
    g = torch.where(coupled, g + weight_decay * theta, g)   # g_t ← g_t + λ θ_{t-1}  (coupled only)
    m.lerp_(g, one_minus_beta1)                         # m_t ← β1 m_{t-1} + (1 - β1) g_t
    v.mul_(beta2).add_(one_minus_beta2 * g * g)         # v_t ← β2 v_{t-1} + (1 - β2) g_t²
    denominator = (v / bias_correction2).sqrt() + eps   # √v̂_t + ε, v̂_t ← v_t / (1 - β2^t)
    theta.add_(g_step * (g / denominator))              # θ_t ← θ_t - γ (1 - μ_t) g_t / (1 - ∏^t μ_i) / (...)
    theta.add_(m_step * (m / denominator))              #       - γ μ_{t+1} m_t / (1 - ∏^{t+1} μ_i) / (...)


def nadam_arguments(state, group, t):
    γ, (β1, β2), ε, λ, ψ = (group["lr"], group["betas"], group["eps"], group["weight_decay"],
                            group["momentum_decay"])
    decoupled = bool(group["decoupled_weight_decay"]) and λ != 0
    μ = β1 * (1 - 0.5 * 0.96 ** (t * ψ))                # μ_t ← β1 (1 - ½·0.96^(tψ))
    μ_next = β1 * (1 - 0.5 * 0.96 ** ((t + 1) * ψ))      # μ_{t+1}
    product = state["mu_product"]                       # rounded as in NAdam.update
    product = product * torch.as_tensor(μ, dtype=product.dtype)   # ∏_{i=1}^{t} μ_i
    Π = product.item()
    Π_next = Π * μ_next                                 # ∏_{i=1}^{t+1} μ_i
    return ((state["exp_avg"], state["exp_avg_sq"]),
            dict(sign=-1.0 if group["maximize"] else 1.0, coupled=λ != 0 and not decoupled,
                 weight_decay=λ, theta_scale=1 - γ * λ if decoupled else 1.0,
                 one_minus_beta1=1 - β1, beta2=β2, one_minus_beta2=1 - β2,
                 bias_correction2=1 - β2 ** t, eps=ε,
                 g_step=-γ * (1 - μ) / (1 - Π), m_step=-γ * μ_next / (1 - Π_next)),
            {"mu_product": product})


# algorithm -> (kernel, arguments(state, group, t) -> (buffers, numbers, state updates) or None)
COMPILED = {"adam": (adam_kernel, adam_arguments), "adamw": (adam_kernel, adam_arguments),
            "rmsprop": (rmsprop_kernel, rmsprop_arguments), "adagrad": (adagrad_kernel, adagrad_arguments),
            "nadam": (nadam_kernel, nadam_arguments)}
COMPILED_ALGORITHMS = tuple(COMPILED)

_COMPILED_KERNELS: dict = {}


def _compiled(kernel):
    if kernel not in _COMPILED_KERNELS:
        _COMPILED_KERNELS[kernel] = torch.compile(kernel, backend="inductor", dynamic=False, fullgraph=True)
    return _COMPILED_KERNELS[kernel]


def _has_tensor(value) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_has_tensor(x) for x in value)
    return isinstance(value, torch.Tensor)


class CompiledKernel:
    """Mixin for fast(cls, compiled=True): a group's steady-state step is one compiled kernel,
    `compiled_kernel = (kernel, arguments)` from `COMPILED` (set by `fast`)."""

    compiled_kernel: tuple

    def step_compiled(self, buffers: GroupBuffers, group: dict) -> bool:
        if getattr(buffers, "compile_failed", False) \
                or any(_has_tensor(v) for k, v in group.items() if k != "params"):
            return False                                # tensor hyperparameters: the eager slices
        kernel, arguments = self.compiled_kernel
        state = buffers.state
        call = arguments(state, group, state["step"].item() + 1)
        if call is None:
            return False
        tensors, numbers, updates = call
        dtype = buffers.theta.dtype
        numbers = {k: torch.tensor(x, dtype=torch.bool if isinstance(x, bool) else dtype)
                   for k, x in numbers.items()}
        try:
            _compiled(kernel)(buffers.theta, buffers.grad, *tensors, **numbers)
        except (torch._dynamo.exc.TorchDynamoException,          # e.g. no C++ compiler
                torch._dynamo.exc.FailOnRecompileLimitHit):      # more than 8 group sizes and dtypes
            buffers.compile_failed = True   # compilation fails before the kernel touches the buffers
            return False
        state.update(updates)
        state["step"] += 1
        self.compiled_group_steps = getattr(self, "compiled_group_steps", 0) + 1
        return True
