"""The compiled fast path: the algorithm's readable `update()`, compiled by torch.compile (inductor).

`compiled_update(cls)` is `cls.update` itself, traced once by torch.compile into one graph over a
run of flat buffers and fused by inductor into one pass; there is no second copy of any
algorithm's lines. Four things make that graph serve a whole run:

- Numbers as 0-d tensors. `NumberTensors` passes every nonzero hyperparameter as a 0-d float64
  tensor and every zero one as the number 0 (so the pseudocode's "if λ ≠ 0" branches are decided
  while tracing, see `base.is_zero`); the step counter is a 0-d tensor already, and its `.item()`
  is captured as a graph scalar. An lr schedule therefore never recompiles; a flag, a dtype, a
  hyperparameter turning zero or nonzero, or a new state key does (one graph each).
- Branches on numbers in the graph. A pseudocode "if" on a number that changes from step to step
  (RAdam's ρ_t > 5, ASGD's μ_{t-1} ≠ 1) goes through `base.if_number`: traced, both sides are
  computed and torch.where takes one, so no guard is put on the number.
- Scalars computed once. Inductor would inline 0-d arithmetic (β2^t, √(1 - β2^t), ...) into the
  element loop and evaluate it per element, which made the compiled update ~3x slower than
  torch's fused Adam on CPU. `_scalars_apart` marks every 0-d result that feeds a full-size
  operation with the opaque `optbench::scalar` op, so it is computed once per call.
- Any size. The buffers' length is dynamic, so one graph serves every group and run length.

Past torch's recompile limit a compiled call raises instead of silently running eagerly: the path
a run takes never changes mid-run.
"""

from __future__ import annotations

import functools

import torch

NUMBER_DTYPE = torch.float64
# Steps below which compiling cannot pay for itself: (first compiled step within a warm inductor
# cache - first eager step) / (eager step - compiled step) at ResNet-18 shapes on the 2-core CPU of
# benchmarks/README.md (round 2, 2026-12-06, under load): about 345 for SGD and 310 for Adam. A run
# that declares a shorter length (`optimizer.expected_steps`) takes the eager slices.
BREAK_EVEN_STEPS = 350
# Graphs per algorithm: a run needs one or two per dtype (the first step may create state); the
# certificate, every flag combination. torch's default limit, 8, is too low for the latter.
RECOMPILE_LIMIT = 64


# `optbench::scalar`: an opaque copy of a 0-d tensor, so inductor cannot inline what it computes
# into a loop. Defined through torch.library.Library rather than torch.library.custom_op: each call
# runs once per compiled step for every such scalar, and custom_op's Python wrappers (autograd,
# dispatch) cost about 11 us a call against 3 us here (2-core AMD EPYC, 2026-12-06).
_LIBRARY = torch.library.Library("optbench", "DEF")
_LIBRARY.define("scalar(Tensor x) -> Tensor")
_LIBRARY.impl("scalar", lambda x: x.clone(), "CompositeExplicitAutograd")
torch.library.register_fake("optbench::scalar", lambda x: torch.empty_like(x), lib=_LIBRARY)


def _scalars_apart(graph_module, example_inputs):
    """torch.compile backend: inductor, after routing each 0-d result used by a full-size
    operation through `optbench::scalar` (see the module docstring)."""
    from torch._inductor.compile_fx import compile_fx

    graph = graph_module.graph
    for node in list(graph.nodes):
        value = node.meta.get("example_value")
        if node.op in ("placeholder", "output") or not isinstance(value, torch.Tensor) or value.dim():
            continue
        users = [user for user in node.users
                 if isinstance(user.meta.get("example_value"), torch.Tensor) and user.meta["example_value"].dim()]
        if not users:
            continue
        with graph.inserting_after(node):
            opaque = graph.call_function(torch.ops.optbench.scalar.default, (node,))
        opaque.meta["example_value"] = value
        for user in users:
            user.replace_input_with(node, opaque)
    graph.lint()
    graph_module.recompile()
    return compile_fx(graph_module, example_inputs)


def worth_compiling(expected_steps: int | None) -> bool:
    """Whether a run of `expected_steps` optimizer steps (None: unknown, assumed long) can repay the
    first compiled step's cost; see BREAK_EVEN_STEPS."""
    return expected_steps is None or expected_steps >= BREAK_EVEN_STEPS


def passes_over_memory(optimizer, group: dict) -> int:
    """How many full-size operations one step of `group`'s update runs: the passes over the
    parameters' memory that the eager slices make and the compiled update fuses into one.

    Counted by running the algorithm's `update()` once on a three-element stand-in parameter (fresh
    state, zero gradient) and counting the torch calls that return a new or updated tensor of that
    size (views are not passes). One pass, such as SGD's θ ← θ - γg, leaves compiling nothing to
    fuse: on the eager slices it is one ATen kernel per slice, as fast as torch's fused kernel."""
    p = group["params"][0]
    theta = torch.zeros(3, dtype=p.dtype, device=p.device)
    g, state = torch.zeros_like(theta), optimizer.init_state(theta, group)
    counter = _FullSizeCalls(theta.numel())
    with torch.no_grad(), counter:
        optimizer.update(theta, g, state, group)
    return counter.count


class _FullSizeCalls(torch.overrides.TorchFunctionMode):
    """Counts the torch calls that return a tensor of `numel` elements that is not a view."""

    def __init__(self, numel: int):
        super().__init__()
        self.numel, self.count = numel, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if isinstance(result, torch.Tensor) and result.numel() == self.numel and not result._is_view():
            self.count += 1
        return result


def compiler_available(device: torch.device) -> bool:
    """Whether inductor can build kernels for `device`: a C++ compiler for CPU, Triton for CUDA."""
    try:
        if device.type == "cpu":
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
            return True
        if device.type == "cuda":
            from torch.utils._triton import has_triton

            return has_triton()
    except (RuntimeError, OSError, ImportError):
        return False
    return False


@functools.cache
def compiled_update(cls: type):
    """`cls.update(theta, g, state, group)` compiled: one torch.compile wrapper per algorithm, with
    its own graphs (`isolate_recompiles`), so each algorithm's graphs (dtypes x flag combinations)
    count against its own recompile limit. `fullgraph` captures `.item()` as a graph scalar and
    raises past the limit; both are settled when the wrapper is made, so a call patches no config."""
    compiled = torch.compile(cls.update, backend=_scalars_apart, fullgraph=True,
                             recompile_limit=RECOMPILE_LIMIT, isolate_recompiles=True)

    def call(theta, g, state, group):
        for x in (theta, g, *(v for v in state.values() if isinstance(v, torch.Tensor) and v.dim())):
            torch._dynamo.maybe_mark_dynamic(x, 0)
        try:
            compiled(None, theta, g, state, group)   # update() reads nothing from self
        except torch._dynamo.exc.FailOnRecompileLimitHit as error:
            raise RuntimeError(f"{cls.__name__}: the compiled fast path reached its limit of "
                               f"{RECOMPILE_LIMIT} graphs (dtypes x flag combinations); "
                               f"use fast({cls.__name__}, compiled=False)") from error

    return call


class NumberTensors:
    """A group's hyperparameters for the compiled update: nonzero numbers as 0-d float64 tensors
    (cached, so a step allocates only for numbers that changed), zeros as 0, the rest unchanged."""

    def __init__(self):
        self.cache: dict = {}

    def __call__(self, group: dict) -> dict:
        return {key: self.convert(key, value) for key, value in group.items() if key != "params"}

    def convert(self, key, value):
        if isinstance(value, (tuple, list)):
            return type(value)(self.convert((key, i), v) for i, v in enumerate(value))
        if isinstance(value, torch.Tensor):          # a 0-d tensor hyperparameter
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        if value == 0:
            return 0
        cached = self.cache.get(key)
        if cached is None or cached[0] != value:
            cached = self.cache[key] = (value, torch.tensor(value, dtype=NUMBER_DTYPE))
        return cached[1]
