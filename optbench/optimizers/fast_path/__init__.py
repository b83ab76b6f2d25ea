"""The fast path: the same readable `update()`, run once per param group over contiguous buffers.

    from optbench.optimizers import Adam, fast
    optimizer = fast(Adam)(model.parameters(), lr=1e-3)     # or: FastAdam = fast(Adam)
    optimizer.fast_path                                     # "compiled" or "eager slices"

`fast(Adam)` is a subclass of our `Adam` with the same constructor, state keys and maths. On its
first step it moves each param group's parameters, gradients and per-element state into one
contiguous buffer each (every tensor you passed becomes a view into its buffer: same object, same
values; `buffers.py`), and from then on runs the algorithm's own `update()` on runs of parameters
at once, in one of two ways, chosen once per optimizer and never switched:

- "compiled" (the default where inductor can build kernels, a C++ compiler on CPU or Triton on
  CUDA, for optimizers of at least `COMPILE_FROM_NUMEL` parameter elements whose run is not declared
  shorter than `compiled.BREAK_EVEN_STEPS` through `optimizer.expected_steps`, and whose update
  makes more than one pass over memory, `compiled.passes_over_memory`; `compiled.py`): the
  readable `update()` compiled by torch.compile into one pass over the buffers. The first step of
  each graph compiles (seconds; inductor's on-disk cache makes later processes fast); a learning-rate schedule never recompiles.
- "eager slices" (`fast(cls, compiled=False)`, small models, short runs, one-pass updates such as
  plain SGD, machines without a compiler): the readable `update()` on 2^20-element slices
  (`chunk_size`), each line one kernel over a slice that stays in cache from one line to the next.

Both are the readable code, not a second implementation; `optbench verify` certifies the eager
slices always and the compiled path with `--compiled`, each against torch.optim in float64 and
float32 (`optbench.verify.certify_fast`).

Why a class factory and not a `fast=True` keyword: our constructors keep torch's exact signatures
(a drop-in, tested); `fast(Adam)` keeps them too, and pickles (`torch.save(optimizer)`).

What a user should know:
- A parameter whose gradient is None is skipped, as torch skips it (its `step` stays); each
  parameter keeps its own `step` and other scalar state, so state_dicts move freely between
  `fast(Adam)`, `Adam` and `torch.optim.Adam`. `zero_grad()` sets gradients to None as torch does;
  the next step copies each new gradient into the group's buffer (one copy; with
  `zero_grad(set_to_none=False)` backward accumulates into the buffer directly).
- A group takes the readable per-parameter path whenever flattening cannot be exact: complex,
  sparse, 0-d or non-contiguous parameters, mixed dtypes or devices, tensor hyperparameters with
  more than one element.
- Element-wise algorithms only (FAST_ALGORITHMS), each with both ways. Adafactor, LBFGS, Muon and
  SparseAdam reduce within each tensor, so flattening would change their maths: they keep the
  readable path. The branches on a number that changes from step to step (RAdam's ρ_t > 5, ASGD's
  μ_{t-1} ≠ 1) compile into one graph: traced, `base.if_number` computes both sides and
  torch.where takes one.
"""

from __future__ import annotations

import warnings

from ..base import PseudocodeOptimizer
from .buffers import GroupBuffers, NotFlat, fall_back_reason, flattenable, in_slices
from .compiled import NumberTensors, compiled_update, compiler_available, passes_over_memory, worth_compiling

FAST_ALGORITHMS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
                   "radam", "asgd", "rprop")
# Below this many parameter elements a compiled call's fixed cost (guards, wrapper, ~0.1-0.3 ms on
# a 2-core CPU) outweighs one fused pass: at LeNet-5 shapes (62 k) the eager slices were 2x faster,
# at ResNet-18 shapes (11.7 M) the compiled update 2-4x faster (benchmarks/README.md, "Step cost").
COMPILE_FROM_NUMEL = 1 << 20

_PREFIX = {True: "FastCompiled", False: "FastEager", None: "Fast"}
_FAST_CLASSES: dict[tuple, type] = {}


def fast(cls: type, compiled: bool | None = None) -> type:
    """`cls` (one of our element-wise optimizer classes) on the flat-buffer fast path.

    compiled: None, the compiled path where available and else the eager slices; True, the
    compiled path or a RuntimeError at the first step where it cannot be built; False, the eager
    slices. Raises TypeError for an algorithm without a fast path."""
    if (cls, compiled) in _FAST_CLASSES:
        return _FAST_CLASSES[cls, compiled]
    name = _algorithm_name(cls)
    if name not in FAST_ALGORITHMS:
        raise TypeError(f"{cls.__name__} has no fast path (element-wise algorithms only: "
                        f"{', '.join(FAST_ALGORITHMS)})")
    class_name = _PREFIX[compiled] + cls.__name__
    fast_cls = type(class_name, (FastPath, cls), {
        "__doc__": f"{cls.__name__} on the flat-buffer fast path (optbench.optimizers.fast_path).",
        "__module__": __name__, "__qualname__": class_name,
        "compiled": compiled, "algorithm": name, "algorithm_class": cls})
    _FAST_CLASSES[cls, compiled] = fast_cls
    return fast_cls


def _algorithm_name(cls: type) -> str | None:
    from ..registry import ALGORITHMS

    return next((name for name, algorithm in ALGORITHMS.items() if algorithm.ours is cls), None)


def __getattr__(name: str):
    # fast(...) classes are made on demand; this finds them by name, so instances pickle.
    from ..registry import ALGORITHMS

    for compiled, prefix in sorted(_PREFIX.items(), key=lambda item: -len(item[1])):
        if name.startswith(prefix):
            rest = name[len(prefix):]
            for algorithm in ALGORITHMS.values():
                if algorithm.class_name == rest:
                    return fast(algorithm.ours, compiled)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FastPath(PseudocodeOptimizer):
    """Mixin for fast(cls): `step_group` runs `update()` on a group's contiguous buffers when it can.

    chunk_size: elements per slice on the eager path (a subclass may set another)."""

    compiled: bool | None = None
    expected_steps: int | None = None  # the run's length where known: a short run is not compiled
    algorithm: str = ""
    algorithm_class: type = PseudocodeOptimizer
    chunk_size: int = 1 << 20

    @property
    def fast_path(self) -> str:
        """"compiled" or "eager slices": chosen on first use from the parameters' devices, then fixed."""
        chosen = self.__dict__.get("_fast_path")
        if chosen is None:
            chosen = self.__dict__["_fast_path"] = self._choose_path()
        return chosen

    def _choose_path(self) -> str:
        if self.compiled is False:
            return "eager slices"
        params = [p for group in self.param_groups for p in group["params"]]
        if self.compiled is None and (sum(p.numel() for p in params) < COMPILE_FROM_NUMEL
                                      or not worth_compiling(self.expected_steps)
                                      or not self._fusing_pays()):
            return "eager slices"
        devices = {p.device for p in params}
        missing = [str(device) for device in devices if not compiler_available(device)]
        if not missing:
            return "compiled"
        if self.compiled:
            raise RuntimeError(f"{type(self).__name__}: torch.compile cannot build kernels for "
                               f"{', '.join(missing)} here (no C++ compiler or Triton)")
        return "eager slices"

    def _fusing_pays(self) -> bool:
        """Whether the update of some group the fast path can take makes more than one pass over
        memory. One pass (plain SGD) is one ATen kernel per slice on the eager slices: at ResNet-18
        shapes as fast as torch's fused SGD, where the compiled kernel was 15-25 % slower
        (benchmarks/README.md, round 2, "Compiled fast path")."""
        return any(passes_over_memory(self, group) > 1 for group in self.param_groups if flattenable(group))

    def step_group(self, group: dict) -> None:
        buffers = self._buffers(group)
        if buffers is not None and buffers.step(self, group, self._run_update()):
            self.flat_group_steps = getattr(self, "flat_group_steps", 0) + 1
            return
        if buffers is not None:           # the readable path steps this group; gather again next time
            buffers.release(self)
            del self._flat[id(group)]
        super().step_group(group)

    def _run_update(self):
        if self.fast_path == "compiled":
            compiled = compiled_update(self.algorithm_class)
            numbers = self.__dict__.setdefault("_numbers", NumberTensors())
            return lambda theta, g, state, group: compiled(theta, g, state, numbers(group))
        return in_slices(self.update, self.chunk_size)

    def _buffers(self, group: dict) -> GroupBuffers | None:
        flat = self.__dict__.setdefault("_flat", {})
        buffers = flat.get(id(group))
        if buffers is not None and buffers.still_valid(self, group):
            return buffers
        flat.pop(id(group), None)
        if len(flat) >= len(self.param_groups):       # groups replaced (load_state_dict): drop the old
            live = {id(g) for g in self.param_groups}
            for key in [key for key in flat if key not in live]:
                del flat[key]
        if not flattenable(group) or all(p.grad is None for p in group["params"]):
            return None
        reason = fall_back_reason(group)
        if reason is not None:
            warned = self.__dict__.setdefault("_fall_back_warned", set())
            if reason not in warned:
                warned.add(reason)
                warnings.warn(f"{type(self).__name__}: {reason}; this group takes the readable path, "
                              "which gives torch's result (docs/fast-path.md)", stacklevel=4)
            return None
        try:
            buffers = GroupBuffers(self, group)
        except NotFlat:
            return None
        flat[id(group)] = buffers
        return buffers

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As torch.optim: gradients become None (set_to_none) or zero. Zeroing is one kernel per
        group buffer when every gradient is still the buffer's view."""
        if set_to_none:
            super().zero_grad(True)
            return
        done = set()
        for buffers in self.__dict__.get("_flat", {}).values():
            if all(p.grad is None or p.grad is view for p, view in zip(buffers.params, buffers.grad_views, strict=False)):
                buffers.grad.zero_()
                done.update(id(p) for p in buffers.params)
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) in done or p.grad is None:
                    continue
                if p.grad.grad_fn is not None:
                    p.grad.detach_()
                else:
                    p.grad.requires_grad_(False)
                p.grad.zero_()
