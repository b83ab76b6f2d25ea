"""What every readable optimizer shares, so each algorithm's module holds only its maths.

`PseudocodeOptimizer.step()` walks the param groups, hands each parameter with a gradient to
the subclass's `update(theta, g, state, group)`, and takes care of the plumbing that is not part
of any pseudocode: closures, lazy state, complex parameters (updated as their real view,
exactly as torch.optim does) and `torch.no_grad()`.

Hyperparameters may be Python numbers or tensors that broadcast against the parameter
(`lr` of shape `[trials, 1]` for a `[trials, 2]` parameter). Update lines run in place, one kernel
each and without full-size temporaries where the pseudocode allows, as torch's own for-loop path
does; the maths helpers below (`add_scaled_`, `add_scaled`, `add_product_`, `add_quotient_`, `lerp_`,
`as_number`) make that work for both kinds. `check_range` validates either kind.
"""

from __future__ import annotations

import torch

# Implementation switches torch.optim accepts. They choose *how* torch computes an update
# (for-loop, foreach, fused kernels, CUDA-graph capture, autograd through the step), never
# *what* it computes, so ours accepts and records them and always runs the readable path.
IMPLEMENTATION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim uses for its `step` counters (float64 only under a float64 default)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def new_step_counter() -> torch.Tensor:
    """`state['step']` as torch.optim stores it: a 0-d CPU tensor, so state_dicts compare directly."""
    return torch.tensor(0.0, dtype=scalar_dtype())


def zeros(theta: torch.Tensor) -> torch.Tensor:
    """A state tensor initialised to 0, laid out like θ (torch's `preserve_format`)."""
    return torch.zeros_like(theta, memory_format=torch.preserve_format)


def _all(condition) -> bool:
    return bool(torch.all(condition)) if isinstance(condition, torch.Tensor) else bool(condition)


def check_range(value, message: str, low=None, high=None, high_inclusive=False, low_inclusive=True):
    """Raise ValueError(message.format(value)) unless low <= value (<|<=) high, elementwise for tensors.

    Same messages and exception type as torch.optim, so misuse reads the same with either.
    """
    ok = True
    if low is not None:
        ok = _all(value >= low) if low_inclusive else _all(value > low)
    if ok and high is not None:
        ok = _all(value <= high) if high_inclusive else _all(value < high)
    if not ok:
        raise ValueError(message.format(value))


def is_zero(value) -> bool:
    """`value == 0` for a number; for a tensor hyperparameter, zero everywhere.

    Pseudocode branches such as "if λ ≠ 0" take the general path as soon as any trial needs it;
    with λ = 0 in the other trials that path computes the same numbers.
    """
    if isinstance(value, torch.Tensor):
        if _traced_number(value):
            return False    # the compiled fast path passes zero hyperparameters as the number 0
        return bool(torch.all(value == 0))
    return value == 0


# The update helpers. torch's one-kernel forms (`x.add_(y, alpha=a)`, `x.addcmul_(y, z, value=a)`,
# `x.addcdiv_(y, z, value=a)`) take `a` only as a Python number; these take a number or a tensor
# broadcasting against x, in one kernel either way (a tensor `a` costs one small extra product).
# A 0-d tensor is read as a number, as torch.optim reads tensor hyperparameters, except while
# torch.compile traces the update for the compiled fast path, which passes every nonzero number
# as a 0-d tensor so that one graph serves every value (an lr schedule does not recompile).

def _traced_number(a: torch.Tensor) -> bool:
    return a.dim() == 0 and torch.compiler.is_compiling()


def as_number(a):
    """A 0-d tensor as a Python number at full precision (torch.optim's `.item()`); a tensor with
    a trial dimension as float64; anything else unchanged."""
    if isinstance(a, torch.Tensor):
        if _traced_number(a):
            return a.double()
        return a.item() if a.dim() == 0 else a.double()
    return a


def add_scaled_(x: torch.Tensor, y: torch.Tensor, a) -> torch.Tensor:
    """x ← x + a·y, in place."""
    if isinstance(a, torch.Tensor):
        if a.dim() or _traced_number(a):
            return x.addcmul_(y, a)
        a = a.item()
    return x.add_(y, alpha=a)


def add_scaled(x: torch.Tensor, y: torch.Tensor, a) -> torch.Tensor:
    """x + a·y as a new tensor (for g_t ← g_t + λθ, which must not touch the gradient)."""
    if isinstance(a, torch.Tensor):
        if a.dim() or _traced_number(a):
            return torch.addcmul(x, y, a)
        a = a.item()
    return torch.add(x, y, alpha=a)


def weight_decayed(g: torch.Tensor, theta: torch.Tensor, γ, λ, decoupled: bool) -> torch.Tensor:
    """The Adam family's "if λ ≠ 0" line, in either form; returns g_t.

    decoupled: θ ← θ - γλθ (in place; g_t unchanged), else g_t ← g_t + λθ (a new tensor).
    """
    if is_zero(λ):
        return g
    if decoupled:
        theta.mul_(1 - γ * λ)
        return g
    return add_scaled(g, theta, λ)


def add_product_(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, a=1) -> torch.Tensor:
    """x ← x + a·y·z, in place."""
    if isinstance(a, torch.Tensor):
        if a.dim() or _traced_number(a):
            return x.addcmul_(y, z * a)
        a = a.item()
    return x.addcmul_(y, z, value=a)


def add_quotient_(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, a=1) -> torch.Tensor:
    """x ← x + a·y/z, in place."""
    if isinstance(a, torch.Tensor):
        if a.dim() or _traced_number(a):
            return x.addcdiv_(y * a, z)
        a = a.item()
    return x.addcdiv_(y, z, value=a)


def lerp_(x: torch.Tensor, y: torch.Tensor, w) -> torch.Tensor:
    """x ← (1 - w)·x + w·y, in place (an exponential moving average of y with weight w)."""
    if isinstance(w, torch.Tensor):
        w = w.to(x.dtype) if w.dim() or _traced_number(w) else w.item()
    return x.lerp_(y, w)


def real_view(tensor):
    """A complex tensor as its real view `[..., 2]`; anything else unchanged."""
    if isinstance(tensor, torch.Tensor) and torch.is_complex(tensor):
        return torch.view_as_real(tensor)
    return tensor


class PseudocodeOptimizer(torch.optim.Optimizer):
    """Base for optbench's hand-written optimizers.

    Subclasses implement `update(theta, g, state, group)` (one parameter, in place) and may
    override `init_state(theta, group)` (the pseudocode's "initialize" line, run once per
    parameter) and `supports_complex`.
    """

    supports_complex = True

    def __init__(self, params, defaults: dict, switches: dict | None = None):
        defaults = dict(defaults)
        for name, value in (switches or {}).items():
            if name not in IMPLEMENTATION_SWITCHES:
                raise TypeError(f"unexpected keyword argument '{name}'")
            defaults[name] = value
        super().__init__(params, defaults)

    def init_state(self, theta: torch.Tensor, group: dict) -> dict:
        return {}

    def update(self, theta: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    def prepare_group(self, group: dict) -> None:
        """Hook run once per group per step before its parameters (e.g. group-wide checks)."""

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self.prepare_group(group)
            self.step_group(group)
        return loss

    def step_group(self, group: dict) -> None:
        """One parameter at a time, as the pseudocode reads (the fast path overrides this)."""
        for p in group["params"]:
            if p.grad is None:
                continue
            self._step_one(p, group)

    def _step_one(self, p: torch.Tensor, group: dict) -> None:
        if p.grad.is_sparse and not getattr(self, "supports_sparse", False):
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        state = self.state.get(p)
        stored = state is not None
        if not stored:
            state = {}
        if p.is_complex():
            if not self.supports_complex:
                raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
            self._step_complex(p, state, group)
        else:
            if not state:
                state.update(self.init_state(p, group))
            self.update(p, p.grad, state, group)
        # stateless (e.g. SGD without momentum) keeps no entry, so state_dict is torch's
        if state and not stored:
            self.state[p] = state
        elif not state and stored:
            del self.state[p]

    def _step_complex(self, p: torch.Tensor, state: dict, group: dict) -> None:
        # torch.optim treats a complex number as a pair of reals (view_as_real); so do we.
        # States shaped like p are viewed too; a state the update replaces is stored back as complex.
        if len(state) == 0:
            state.update(self.init_state(p, group))
        viewed = {key: real_view(value) if _shaped_like(value, p) else value
                  for key, value in state.items()}
        before = dict(viewed)
        self.update(torch.view_as_real(p), torch.view_as_real(p.grad), viewed, group)
        for key, value in viewed.items():
            if value is not before.get(key):
                complex_shaped = isinstance(value, torch.Tensor) and value.shape == p.shape + (2,)
                state[key] = torch.view_as_complex(value) if complex_shaped else value


def _shaped_like(value, p) -> bool:
    return isinstance(value, torch.Tensor) and value.shape == p.shape and torch.is_complex(value)
