"""What every readable optimizer shares, so each algorithm's module holds only its maths.

`PseudocodeOptimizer.step()` walks the param groups, hands each parameter with a gradient to
the subclass's `update(theta, g, state, group)`, and takes care of the plumbing that is not part
of any pseudocode: closures, lazy state, complex parameters (updated as their real view,
exactly as torch.optim does) and `torch.no_grad()`.

Hyperparameters may be Python numbers or tensors that broadcast against the parameter
(`lr` of shape `[trials, 1]` for a `[trials, 2]` parameter). Update lines run in place, one kernel
each and without full-size temporaries where the pseudocode allows, as torch's own for-loop path
does; the maths helpers below (`add_scaled_`, `add_scaled`, `add_product_`, `add_quotient_`, `lerp_`,
`as_number`) make that work for both kinds. `check_range` validates either kind. A one-element
tensor of any shape reads as a number, as in torch; a larger one that cannot broadcast against a
parameter of its group is refused when the group is added (ValueError naming both shapes).

Around the maths, what torch.optim does that a user can see, one mechanism for every algorithm
(parametrized by class attributes, each taken from the algorithm's torch source):
- loading an older or another class's checkpoint (`__setstate__`, run by `load_state_dict`): missing
  param-group keys get torch's defaults, a `step` saved as a number becomes a tensor, AdamW stays
  decoupled;
- differentiable=True: the step runs with autograd on, on copies of the state, so gradients flow
  through it as through torch's (one difference: where torch's kernels refuse an lr tensor that
  requires grad, with a TypeError in RMSprop, Adagrad, Adadelta, Adamax and Rprop, ours gives its
  gradient);
- fused=True: torch's refusals (meta, complex or integer tensors, sparse gradients) and its float32
  `step` on the parameter's device.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import ClassVar

import torch

# Implementation switches torch.optim accepts. They choose *how* torch computes an update
# (for-loop, foreach, fused kernels, CUDA-graph capture, autograd through the step), never
# *what* it computes, so ours records them and always runs the readable path, with the effects a
# user can see: differentiable=True steps with autograd on; fused=True refuses what torch's fused
# kernels refuse and keeps `step` in float32 on the parameter's device. In float16/bfloat16 torch's
# fused kernels round once per line from float32; ours rounds as torch's for-loop path does.
IMPLEMENTATION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")


def scalar_dtype(group: dict | None = None) -> torch.dtype:
    """The dtype torch.optim uses for its `step` counters: float32 for a fused group, else float64
    only under a float64 default dtype (torch's `_get_scalar_dtype`)."""
    if group is not None and group.get("fused"):
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def scalar_device(theta: torch.Tensor | None, group: dict | None) -> torch.device:
    """Where torch.optim keeps a `step` counter: on the parameter's device when the group is
    capturable or fused, on the CPU otherwise (torch's "special device hosting for step")."""
    if theta is not None and group is not None and (group.get("capturable") or group.get("fused")):
        return theta.device
    return torch.device("cpu")


def new_step_counter(theta: torch.Tensor | None = None, group: dict | None = None, value=0.0) -> torch.Tensor:
    """`state['step']` as torch.optim stores it (a 0-d tensor, see scalar_dtype/scalar_device), so
    state_dicts compare directly."""
    return torch.tensor(float(value), dtype=scalar_dtype(group), device=scalar_device(theta, group))


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


def if_number(condition, then, otherwise):
    """The pseudocode's "if" on a number that changes from step to step (RAdam's "if ρ_t > 5",
    ASGD's "if μ_{t-1} ≠ 1"): `then()` if condition else `otherwise()`, each returning the line's
    value. A condition with a trial dimension takes `then()` as soon as one trial does (as `is_zero`
    decides the "if λ ≠ 0" lines).

    While torch.compile traces the compiled fast path, that number is computed inside the graph
    (from the step counter, or read from the state), so the condition is not known when tracing:
    both values are computed and torch.where takes one, element by element (as torch's capturable
    RAdam does), and one graph serves every step (no guard on the number, no recompile when it
    changes side)."""
    if torch.compiler.is_compiling() and not isinstance(condition, bool):
        return torch.where(torch.as_tensor(condition), then(), otherwise())
    if isinstance(condition, torch.Tensor):
        condition = bool(condition.any())
    return then() if condition else otherwise()


# The update helpers. torch's one-kernel forms (`x.add_(y, alpha=a)`, `x.addcmul_(y, z, value=a)`,
# `x.addcdiv_(y, z, value=a)`) take `a` only as a Python number; these take a number or a tensor
# broadcasting against x, in one kernel either way (a tensor `a` costs one small extra product).
# A 0-d tensor is read as a number, as torch.optim reads tensor hyperparameters, except while
# torch.compile traces the update for the compiled fast path, which passes every nonzero number
# as a 0-d tensor so that one graph serves every value (an lr schedule does not recompile).

def _traced_number(a: torch.Tensor) -> bool:
    return a.dim() == 0 and torch.compiler.is_compiling()


# Outside tracing, a one-element tensor of any shape is read as a number too, unless autograd must
# see it (differentiable=True with a hyperparameter that requires grad).

def is_per_element(a) -> bool:
    """True for a tensor hyperparameter that must broadcast against the parameter: more than one
    element, or one element that autograd must follow."""
    return isinstance(a, torch.Tensor) and (a.numel() > 1 or (a.requires_grad and torch.is_grad_enabled()))


def as_number(a, like: torch.Tensor | None = None):
    """A one-element tensor as a Python number at full precision (torch.optim's `.item()`); a tensor
    with a trial dimension in `update_dtype` of the parameter `like` (float64 without one; one that
    requires grad as it is); anything else unchanged."""
    if isinstance(a, torch.Tensor):
        if _traced_number(a):
            return a.double()
        if is_per_element(a):
            if a.requires_grad:
                return a
            return a.to(torch.float64 if like is None else update_dtype(like.dtype))
        return a.item()
    return a


def update_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype in which a per-trial hyperparameter meets a parameter of `dtype`: float64 for float64
    (and complex128, updated as its float64 view), float32 for every other floating dtype.

    torch.optim computes a number hyperparameter in double, then its kernels read it in the
    parameter's "opmath" type (float32 for float32, float16 and bfloat16 tensors). A per-trial tensor
    cast to this dtype is read likewise, and never promotes a float32 parameter's full-size
    temporaries to float64 (which would cost a copy of every tensor an update line touches)."""
    return torch.float64 if dtype.to_real() == torch.float64 else torch.float32


def _met(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-trial hyperparameter `a` in the dtype it meets `x` in (`update_dtype`)."""
    if is_per_element(a) and a.dtype != update_dtype(x.dtype) and not a.requires_grad:
        return a.to(update_dtype(x.dtype))
    return a


def add_scaled_(x: torch.Tensor, y: torch.Tensor, a) -> torch.Tensor:
    """x ← x + a·y, in place."""
    if isinstance(a, torch.Tensor):
        if is_per_element(a) or _traced_number(a):
            return x.addcmul_(y, _met(a, x))
        a = a.item()
    return x.add_(y, alpha=a)


def add_scaled(x: torch.Tensor, y: torch.Tensor, a) -> torch.Tensor:
    """x + a·y as a new tensor (for g_t ← g_t + λθ, which must not touch the gradient)."""
    if isinstance(a, torch.Tensor):
        if is_per_element(a) or _traced_number(a):
            return torch.addcmul(x, y, _met(a, x))
        a = a.item()
    return torch.add(x, y, alpha=a)


def scale_(x: torch.Tensor, a) -> torch.Tensor:
    """x ← a·x, in place."""
    return x.mul_(_met(a, x) if isinstance(a, torch.Tensor) else a)


def weight_decayed(g: torch.Tensor, theta: torch.Tensor, γ, λ, decoupled: bool) -> torch.Tensor:
    """The Adam family's "if λ ≠ 0" line, in either form; returns g_t.

    decoupled: θ ← θ - γλθ (in place; g_t unchanged), else g_t ← g_t + λθ (a new tensor).
    """
    if is_zero(λ):
        return g
    if decoupled:
        scale_(theta, 1 - γ * λ)
        return g
    return add_scaled(g, theta, λ)


def add_product_(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, a=1) -> torch.Tensor:
    """x ← x + a·y·z, in place."""
    if isinstance(a, torch.Tensor):
        if is_per_element(a) or _traced_number(a):
            return x.addcmul_(y, z * _met(a, x))
        a = a.item()
    return x.addcmul_(y, z, value=a)


def add_quotient_(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, a=1) -> torch.Tensor:
    """x ← x + a·y/z, in place."""
    if isinstance(a, torch.Tensor):
        if is_per_element(a) or _traced_number(a):
            return x.addcdiv_(y * _met(a, x), z)
        a = a.item()
    return x.addcdiv_(y, z, value=a)


def lerp_(x: torch.Tensor, y: torch.Tensor, w) -> torch.Tensor:
    """x ← (1 - w)·x + w·y, in place (an exponential moving average of y with weight w)."""
    if isinstance(w, torch.Tensor):
        w = w.to(x.dtype) if is_per_element(w) or _traced_number(w) else w.item()
    return x.lerp_(y, w)


def real_view(tensor):
    """A complex tensor as its real view `[..., 2]`; anything else unchanged."""
    if isinstance(tensor, torch.Tensor) and torch.is_complex(tensor):
        return torch.view_as_real(tensor)
    return tensor


def state_with_attributes(optimizer: torch.optim.Optimizer) -> dict:
    """What to pickle for an optimizer that keeps settings as attributes outside its param groups (the
    reference packages' ADOPT, SOAP and Lookahead do): torch's own `__getstate__` keeps only defaults,
    state and param_groups, so `torch.save(optimizer)` would lose them. The step hooks stay out, as in
    torch (its `__setstate__` makes them anew)."""
    return {name: value for name, value in optimizer.__dict__.items() if not name.startswith("_optimizer_")}


class PseudocodeOptimizer(torch.optim.Optimizer):
    """Base for optbench's hand-written optimizers.

    Subclasses implement `update(theta, g, state, group)` (one parameter, in place) and may
    override `init_state(theta, group)` (the pseudocode's "initialize" line, run once per
    parameter) and `supports_complex`. The class attributes below carry what torch.optim does
    around the maths, per algorithm, so one mechanism here serves them all.
    """

    supports_complex = True
    # torch's __setstate__ (run by load_state_dict and unpickling): param-group keys that older
    # checkpoints lack, filled with these values; and values a class always sets (AdamW's decay).
    old_checkpoint_group_defaults: ClassVar[dict] = {}
    checkpoint_group_values: ClassVar[dict] = {}
    # per-parameter state that an older checkpoint may hold as a Python number: torch makes a
    # 0-d tensor of it (dtype and device as a new step counter; ASGD's on the parameter's device)
    scalar_state: tuple = ()
    scalar_state_on_param_device = False
    # fused=True with a sparse gradient: torch's message (None: the algorithm has no fused kernel)
    fused_sparse_error: str | None = None
    # capturable=True: what torch's check names (None: no capturable argument), and whether its list
    # of devices for CUDA-graph capture includes XLA
    capturable_checks: str | None = None
    capturable_on_xla = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # help(Adam) shows the pseudocode: an algorithm's class documents itself with its module's
        # docstring, where the pseudocode lives beside the code that implements it line by line
        if "__doc__" not in cls.__dict__ or cls.__doc__ is None:
            cls.__doc__ = sys.modules[cls.__module__].__doc__

    def __init__(self, params, defaults: dict, switches: dict | None = None):
        defaults = dict(defaults)
        for name, value in (switches or {}).items():
            if name not in IMPLEMENTATION_SWITCHES:
                raise TypeError(f"unexpected keyword argument '{name}'")
            defaults[name] = value
        if defaults.get("fused"):
            if defaults.get("differentiable"):
                raise RuntimeError("`fused` does not support `differentiable`")
            if defaults.get("foreach"):
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """torch's add_param_group, then: a tensor hyperparameter with more than one element must
        broadcast against every parameter of its group (refused here, not at step()).

        Raises ValueError naming the hyperparameter and both shapes."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for name, value in group.items():
            several = isinstance(value, (tuple, list)) and name != "params"
            for i, h in enumerate(value if several else (value,)):
                if isinstance(h, torch.Tensor) and h.numel() > 1:
                    label = f"{name}[{i}]" if several else name
                    for p in group["params"]:
                        _check_broadcasts(label, h, p)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.old_checkpoint_group_defaults.items():
                group.setdefault(key, value)
            group.update(self.checkpoint_group_values)
            for p in group["params"]:
                p_state = self.state.get(p)
                for key in self.scalar_state if p_state else ():
                    if key in p_state and not torch.is_tensor(p_state[key]):
                        counter = new_step_counter(p, group, p_state[key])
                        p_state[key] = counter.to(p.device) if self.scalar_state_on_param_device else counter

    def init_state(self, theta: torch.Tensor, group: dict) -> dict:
        return {}

    def new_state(self, theta: torch.Tensor, group: dict) -> dict:
        """The "initialize" line for one parameter, after torch's check that a fused kernel can run on it."""
        if group.get("fused"):
            check_fused_supported(theta)
        return self.init_state(theta, group)

    def update(self, theta: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    def check_capturable(self, p: torch.Tensor, state: dict) -> None:
        """torch's check before a capturable step: the parameter and its step counter on one device
        that supports CUDA-graph capture (not the CPU). Raises AssertionError with torch's message."""
        devices = ["cuda", "xpu", "hpu", torch._C._get_privateuse1_backend_name()]
        devices += ["xla"] if self.capturable_on_xla else []
        if not (p.device.type == state["step"].device.type and p.device.type in devices):
            raise AssertionError(f"If capturable=True, {self.capturable_checks} must be on supported "
                                 f"devices: {devices}.")

    def prepare_group(self, group: dict) -> None:
        """Hook run once per group per step before its parameters (e.g. group-wide checks)."""
        if group.get("fused"):
            with_grad = [p for p in group["params"] if p.grad is not None]
            for p in with_grad:
                check_fused_supported(p)
            if self.fused_sparse_error and any(p.grad.is_sparse for p in with_grad):
                raise RuntimeError(self.fused_sparse_error)

    def step(self, closure=None):
        """Perform one optimization step; `closure` re-evaluates the model and returns the loss.

        With differentiable=True the step runs with autograd on, as torch's does, so gradients flow
        through it (to the parameters before the step, the gradients, tensor hyperparameters that
        require grad); otherwise under no_grad.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            for group in self.param_groups:
                self.prepare_group(group)
                self.step_group(group)
        return loss

    def step_group(self, group: dict) -> None:
        """One parameter at a time, as the pseudocode reads (the fast path overrides this)."""
        group = with_scalar_tensors_squeezed(group)
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
        if torch.is_grad_enabled():
            # differentiable=True: autograd keeps tensors that this step reads, so the step works on
            # copies of the state and later steps cannot change what it kept (torch clones likewise)
            state.update({key: value.clone() for key, value in state.items() if torch.is_tensor(value)})
        if p.is_complex() and not self.supports_complex:
            raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
        if not state:
            state.update(self.new_state(p, group))
        if group.get("capturable") and self.capturable_checks:
            self.check_capturable(p, state)
        if p.is_complex():
            self._step_complex(p, state, group)
        else:
            self.update(p, p.grad, state, group)
        # stateless (e.g. SGD without momentum) keeps no entry, so state_dict is torch's
        if state and not stored:
            self.state[p] = state
        elif not state and stored:
            del self.state[p]

    def _step_complex(self, p: torch.Tensor, state: dict, group: dict) -> None:
        # torch.optim treats a complex number as a pair of reals (view_as_real); so do we.
        # States shaped like p are viewed too; a state the update replaces is stored back as complex.
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


def one_element_or_per_trial(name: str, value, params):
    """torch's check that a tensor hyperparameter has one element ("Tensor lr must be 1-element"), run
    where torch runs it among its argument checks, with optbench's one extension: a tensor with more
    elements is accepted when it broadcasts against every parameter that uses it (a per-trial
    hyperparameter, `[trials, 1]` against a `[trials, dim]` parameter).

    name: torch's name for the value (`lr`, `betas[0]`); params: the constructor's `params`.
    Returns `params`, read into a list when the check had to read it (an iterator is read once, here).
    Raises ValueError with torch's message when `params` is not a list of tensors or param groups (no
    parameter to broadcast against: `params=None`), and with torch's message followed by both shapes
    when the tensor does not broadcast against one of them.
    """
    if not isinstance(value, torch.Tensor) or value.numel() == 1:
        return params
    refusal = ValueError(f"Tensor {name} must be 1-element")
    if isinstance(params, (torch.Tensor, dict, str, bytes)) or not isinstance(params, Iterable):
        raise refusal
    params = [dict(item, params=_tensors(item["params"], refusal)) if isinstance(item, dict) and "params" in item
              else item for item in params]
    key = name.split("[")[0]
    for item in params:
        if isinstance(item, dict):
            tensors = [] if key in item else item["params"] if "params" in item else None
        else:
            tensors = [item] if isinstance(item, torch.Tensor) else None
        if tensors is None:
            raise refusal
        for p in tensors:
            _check_broadcasts(name, value, p)
    return params


def _tensors(params, refusal: ValueError) -> list:
    if isinstance(params, torch.Tensor):
        return [params]
    if isinstance(params, (dict, str, bytes)) or not isinstance(params, Iterable):
        raise refusal
    params = list(params)
    if not all(isinstance(p, torch.Tensor) for p in params):
        raise refusal
    return params


def _check_broadcasts(name: str, h: torch.Tensor, p: torch.Tensor) -> None:
    # a complex parameter is updated as its real view, so the hyperparameter meets that shape
    shape = p.shape + (2,) if p.is_complex() else p.shape
    try:
        fits = torch.broadcast_shapes(h.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"Tensor {name} must be 1-element or broadcast against every parameter of its "
                         f"group: shape {list(h.shape)} against a parameter of shape {list(p.shape)}")


FUSED_DEVICES = ("mps", "cuda", "xpu", "hpu", "cpu", "mtia")   # torch's _get_fused_kernels_supported_devices


def check_fused_supported(p: torch.Tensor) -> None:
    """torch's check before a fused step: floating-point parameters on a device with fused kernels
    (meta tensors and complex parameters are refused). Raises RuntimeError with torch's message."""
    devices = [*FUSED_DEVICES, torch._C._get_privateuse1_backend_name()]
    if not (p.device.type in devices and torch.is_floating_point(p)):
        raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                           f"supported devices: {devices} but {p.dtype} and {p.device.type}")


def with_scalar_tensors_squeezed(group: dict) -> dict:
    """The group as update() reads it: a one-element tensor hyperparameter of any shape (lr
    `[[1e-3]]`) as a 0-d tensor, which broadcasts against every parameter, as torch's `_to_scalar`
    makes it; a per-trial one (more elements) in `update_dtype` of the group's parameters when they
    share a dtype (a float64 lr grid over float32 trials is read as float32, as torch reads a number
    lr in a float32 kernel). The group itself, and so state_dict(), keeps the tensors as given."""
    dtypes = {p.dtype for p in group["params"]}
    met = update_dtype(dtypes.pop()) if len(dtypes) == 1 else None

    def squeezed(value):
        if isinstance(value, tuple):
            return tuple(squeezed(v) for v in value)
        if not isinstance(value, torch.Tensor):
            return value
        if value.numel() == 1:
            return value.reshape(())
        if met is not None and value.dtype != met and value.is_floating_point() and not value.requires_grad:
            return value.to(met)
        return value
    return {key: value if key == "params" else squeezed(value) for key, value in group.items()}


def kept(x: torch.Tensor) -> torch.Tensor:
    """x, or a copy of it when autograd records (differentiable=True) and may keep x for the backward
    pass (√v keeps its result): the in-place line that follows then changes the copy, same numbers."""
    return x.clone() if torch.is_grad_enabled() and x.requires_grad else x


def maximum_(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x ← max(x, y), in place; through copy_ when autograd records (out= is not differentiable),
    as torch's differentiable path does."""
    if torch.is_grad_enabled():
        return x.copy_(torch.maximum(x.clone(), y))   # maximum keeps its inputs: not x itself
    return torch.maximum(x, y, out=x)
