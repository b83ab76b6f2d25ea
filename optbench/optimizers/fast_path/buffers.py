"""One param group's parameters, gradients and per-element state as contiguous buffers.

Every parameter, its gradient and each of its state tensors the size of the parameter become
views into one buffer per kind (`theta`, `grad`, `flat[key]`), so one call of the algorithm's
`update()` covers many parameters. What is per parameter in torch.optim stays per parameter: each
parameter keeps its own state dict with its own scalar state (`step`, NAdam's `mu_product`, ASGD's
`eta` and `mu`), never an object shared with another parameter, so a state_dict is torch's.

A step walks the parameters in buffer order and cuts them into *runs*: consecutive parameters
that have a gradient and the same scalar state (the usual case: all of them, one run). Each run is
one `update()` over its slice of the buffers, with the run's first parameter's scalar state; the
resulting scalars are then copied into each parameter's own. A parameter whose gradient is None is
skipped, as torch skips it (its `step` stays), and a parameter never stepped has no state until
its first step, which initialises its slices with the algorithm's own `init_state`.
"""

from __future__ import annotations

import torch


def flattenable(group: dict) -> bool:
    """Whether a group's parameters can share buffers without changing the maths: dense real
    contiguous tensors with at least one dimension, one dtype and device, and no hyperparameter
    with more than one element (a `[trials, 1]` lr broadcasts against a `[trials, d]` parameter,
    not against a flat buffer)."""
    params = group["params"]
    if not params or any(p.is_complex() or p.is_sparse or not p.is_contiguous() or p.dim() == 0
                         for p in params):
        return False
    if len({(p.dtype, p.device) for p in params}) != 1:
        return False
    values = [v for key, value in group.items() if key != "params"
              for v in (value if isinstance(value, (tuple, list)) else (value,))]
    return not any(isinstance(v, torch.Tensor) and v.numel() > 1 for v in values)


def fall_back_reason(group: dict) -> str | None:
    """Why a group that could be flattened must take the readable path all the same: the situations
    where moving its parameters into a buffer would change what the user's code sees (listed in
    docs/fast-path.md). None in every other situation.

    - a parameter listed twice in the group: torch steps it twice (and warns at construction);
    - a parameter in shared memory (`model.share_memory()`, torch's Hogwild recipe): the other
      processes read that memory, so the update must happen there;
    - a parameter whose memory another tensor also holds (a view of a larger tensor, two parameters
      viewing one storage, `w = layer.weight.data` kept): that tensor must keep seeing the updates.
    """
    params = group["params"]
    if len({id(p) for p in params}) != len(params):
        return "a parameter is listed twice in its group (torch steps it twice)"
    for p in params:
        if p.device.type == "cpu" and p.is_shared():   # (is_shared() is True for every CUDA tensor)
            return "a parameter is in shared memory (model.share_memory()): other processes read it"
        if not _owns_its_memory(p):
            return "a parameter shares its memory with another tensor (a view, or viewed by another one)"
    return None


def _owns_its_memory(p: torch.Tensor) -> bool:
    storage = p.untyped_storage()
    # the use count includes `storage`, the Python object made just above, besides p itself
    return (p.storage_offset() == 0 and storage.nbytes() == p.numel() * p.element_size()
            and torch._C._storage_Use_Count(storage._cdata) <= 2)


def own_memory_view(buffer: torch.Tensor, start: int, stop: int, shape) -> torch.Tensor:
    """buffer[start:stop] viewed as `shape`, in a storage of its own: the same memory (the buffer's
    in-place updates are the view's), but the storage is the slice's size and keeps the buffer
    alive. So `torch.save` of a parameter (one layer's state_dict) writes that parameter's bytes,
    as with torch.optim, not the whole buffer, which a plain view's storage is. CPU through numpy,
    CUDA through `__cuda_array_interface__`; on other devices a plain view.
    """
    piece = buffer.detach()[start:stop]
    if piece.numel() == 0 or buffer.device.type not in ("cpu", "cuda"):
        return piece.view(shape)
    raw = piece.view(torch.uint8)
    if buffer.device.type == "cpu":
        own = torch.from_numpy(raw.numpy())
    else:
        own = torch.as_tensor(_CudaMemory(raw), device=buffer.device)
    return own.view(buffer.dtype).view(shape)


class _CudaMemory:
    """A CUDA byte range as `__cuda_array_interface__`, holding the tensor that owns it."""

    def __init__(self, raw: torch.Tensor):
        self.owner = raw
        self.__cuda_array_interface__ = {"shape": (raw.numel(),), "typestr": "|u1", "strides": None,
                                         "data": (raw.data_ptr(), False), "version": 2}


class NotFlat(Exception):
    """The group's current state cannot live in flat buffers (e.g. state tensors of mixed dtypes)."""


class GroupBuffers:
    """A group's `theta`, `grad` and per-element state buffers (`flat`), and each parameter's own
    state dict (`dicts[i]`: views of the buffers plus its own scalars; None before its first step)."""

    def __init__(self, optimizer, group: dict):
        self.params = list(group["params"])
        self.offsets = [0]
        for p in self.params:
            self.offsets.append(self.offsets[-1] + p.numel())
        with torch.no_grad():
            self.theta = torch.cat([p.detach().reshape(-1) for p in self.params])
        self.grad = torch.zeros_like(self.theta)
        self.flat: dict[str, torch.Tensor] = {}
        self.dicts: list[dict | None] = [None] * len(self.params)
        self.tags: list = [None] * len(self.params)
        self.cohorts = 0              # runs stepped so far: a run's parameters share a fresh tag
        for i, p in enumerate(self.params):
            state = optimizer.state.get(p)
            if state:
                self._adopt(i, state)
        self.grad_views = [self.view(self.grad, i) for i in range(len(self.params))]
        for i, p in enumerate(self.params):
            p.data = own_memory_view(self.theta, self.offsets[i], self.offsets[i + 1], p.shape)
            if p.grad is not None:
                self.grad_views[i].copy_(p.grad)
                p.grad = self.grad_views[i]
            if self.dicts[i] is not None:
                optimizer.state[p] = self.dicts[i]
        self.registered = [d is not None for d in self.dicts]
        self.data_ptrs = [p.data_ptr() for p in self.params]

    def view(self, buffer: torch.Tensor, i: int) -> torch.Tensor:
        return buffer[self.offsets[i]:self.offsets[i + 1]].view(self.params[i].shape)

    def _buffer(self, key: str, like: torch.Tensor) -> torch.Tensor:
        buffer = self.flat.get(key)
        if buffer is None:
            buffer = self.flat[key] = torch.zeros(self.offsets[-1], dtype=like.dtype, device=like.device)
        elif buffer.dtype != like.dtype or buffer.device != like.device:
            raise NotFlat(key)
        return buffer

    def _adopt(self, i: int, state: dict) -> None:
        """Take over a parameter's existing state (from a readable step, the constructor or
        load_state_dict): per-element tensors are copied into the buffers, scalars kept as its own."""
        p = self.params[i]
        own = {}
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == p.shape:
                buffer = self._buffer(key, value)
                buffer[self.offsets[i]:self.offsets[i + 1]].copy_(value.reshape(-1))
                own[key] = self.view(buffer, i)
            elif isinstance(value, torch.Tensor):
                already_held = any(d is not None and any(v is value for v in d.values()) for d in self.dicts)
                own[key] = value.clone() if already_held else value    # an own copy of a shared scalar
            else:
                own[key] = value
        self.dicts[i] = own
        self.tags[i] = self._tag(own)

    def _tag(self, state: dict) -> tuple:
        """What parameters with adopted state must share to step as one run: the state keys and
        the scalar state's values. (Parameters stepped in one run share its cohort number.)"""
        return tuple((key, value.item() if isinstance(value, torch.Tensor) else value)
                     if key not in self.flat else (key,) for key, value in state.items())

    def still_valid(self, optimizer, group: dict) -> bool:
        """Cheap per-step check that nobody replaced a parameter or a state dict or tensor."""
        params = group["params"]
        if len(params) != len(self.params) or any(p is not q for p, q in zip(params, self.params, strict=False)):
            return False
        for i, p in enumerate(params):
            if p.data_ptr() != self.data_ptrs[i]:
                return False
            state = optimizer.state.get(p)
            if not self.dicts[i]:
                if state:
                    return False
            elif state is not self.dicts[i] or any(
                    key in state and state[key]._base is not buffer for key, buffer in self.flat.items()):
                return False
        return True

    def release(self, optimizer) -> None:
        """Give every parameter and state tensor its own memory again, before the readable path
        steps the group (torch's dense += sparse ignores a view's offset into its buffer)."""
        for i, p in enumerate(self.params):
            p.data = p.data.clone()
            state = optimizer.state.get(p)
            if state is self.dicts[i] and state:
                for key in self.flat:
                    if key in state:
                        state[key] = state[key].clone()

    def gather_gradients(self) -> list[bool] | None:
        """Which parameters have a gradient; a replaced gradient is copied into the buffer.
        None if a gradient cannot live there (sparse, another shape or dtype)."""
        present = []
        for i, p in enumerate(self.params):
            g = p.grad
            if g is not None and g is not self.grad_views[i]:
                if g.is_sparse or g.shape != p.shape or g.dtype != p.dtype or g.device != p.device:
                    return None
                self.grad_views[i].copy_(g)
                p.grad = self.grad_views[i]
            present.append(g is not None)
        return present

    def runs(self, present: list[bool]):
        """(first, stop) index ranges of consecutive parameters with a gradient and equal tags."""
        start = None
        for i in range(len(self.params) + 1):
            if start is not None and (i == len(self.params) or not present[i]
                                      or self.tags[i] != self.tags[start]):
                yield start, i
                start = None
            if start is None and i < len(self.params) and present[i]:
                start = i

    def step(self, optimizer, group: dict, run_update) -> bool:
        """One step of the group: `run_update(theta, g, state, group)` once per run.
        False (nothing done) if the gradients cannot live in the buffers this step."""
        present = self.gather_gradients()
        if present is None:
            return False
        for first, stop in list(self.runs(present)):
            if self.dicts[first] is None:
                self._initialise(optimizer, group, first, stop)
            lo, hi = self.offsets[first], self.offsets[stop]
            state = {key: self.flat[key][lo:hi] if key in self.flat else value
                     for key, value in self.dicts[first].items()}
            run_update(self.theta[lo:hi], self.grad[lo:hi], state, group)
            self._store(optimizer, first, stop, state)
        return True

    def _initialise(self, optimizer, group: dict, first: int, stop: int) -> None:
        """The first step of parameters first..stop-1: their state, as the readable path creates it."""
        lo, hi = self.offsets[first], self.offsets[stop]
        fresh = optimizer.init_state(self.theta[lo:hi], group)
        for i in range(first, stop):
            own = {}
            for key, value in fresh.items():
                if isinstance(value, torch.Tensor) and value.dim() == 1 and value.numel() == hi - lo:
                    buffer = self._buffer(key, value)
                    buffer[self.offsets[i]:self.offsets[i + 1]].copy_(
                        value[self.offsets[i] - lo:self.offsets[i + 1] - lo])
                    own[key] = self.view(buffer, i)
                else:
                    own[key] = value.clone() if isinstance(value, torch.Tensor) else value
            self.dicts[i] = own

    def _store(self, optimizer, first: int, stop: int, state: dict) -> None:
        """Put a run's updated state back: per-element tensors into the buffers (a new one, e.g.
        SGD's momentum buffer b_1 ← g_1, gets a buffer), scalars into each parameter's own."""
        lo, hi = self.offsets[first], self.offsets[stop]
        before = self.dicts[first]
        targets, sources = [], []
        for key, value in state.items():
            if key in self.flat or key not in before and _per_element(value, hi - lo):
                buffer = self._buffer(key, value)
                if value.data_ptr() != buffer[lo:].data_ptr():
                    buffer[lo:hi].copy_(value)
                if key not in before:
                    for i in range(first, stop):
                        self.dicts[i][key] = self.view(buffer, i)
                continue
            if isinstance(value, torch.Tensor) and value is before.get(key):   # stepped in place
                others = [self.dicts[i][key] for i in range(first + 1, stop)]
                targets += others
                sources += [value] * len(others)
                continue
            for i in range(first, stop):
                own = self.dicts[i].get(key)
                if isinstance(value, torch.Tensor) and isinstance(own, torch.Tensor) \
                        and own.shape == value.shape and own.dtype == value.dtype:
                    targets.append(own)
                    sources.append(value)
                else:
                    self.dicts[i][key] = value.clone() if isinstance(value, torch.Tensor) else value
        if targets:
            torch._foreach_copy_(targets, sources)
        self.cohorts += 1
        for i in range(first, stop):
            self.tags[i] = self.cohorts
            if not self.dicts[i]:
                if self.registered[i]:
                    optimizer.state.pop(self.params[i], None)    # stateless (SGD without momentum), as torch
                    self.registered[i] = False
            elif not self.registered[i]:
                optimizer.state[self.params[i]] = self.dicts[i]
                self.registered[i] = True


def in_slices(update, size: int):
    """`update(theta, g, state, group)` on consecutive slices of `size` elements, each small
    enough to stay in cache between the pseudocode's lines (and to keep their temporaries small).

    Element-wise maths makes slices independent. The scalar state (step counter...) is the same
    for every slice, so each slice steps its own copy and the first slice's result is kept; state
    the update creates (SGD's b_1 ← g_1) is assembled from the slices.
    """
    def run(theta, g, state, group):
        numel = theta.numel()
        if numel <= size:
            update(theta, g, state, group)
            return
        first, created = None, {}
        for start in range(0, numel, size):
            stop = min(start + size, numel)
            piece = {key: value[start:stop] if _per_element(value, numel)
                     else value.clone() if isinstance(value, torch.Tensor) else value
                     for key, value in state.items()}
            update(theta[start:stop], g[start:stop], piece, group)
            for key, value in piece.items():
                if key not in state and _per_element(value, stop - start):
                    if key not in created:
                        created[key] = torch.empty(numel, dtype=value.dtype, device=value.device)
                    created[key][start:stop].copy_(value)
            if first is None:
                first = piece
        for key, value in first.items():
            if not _per_element(value, min(size, numel)):
                state[key] = value
        state.update(created)
    return run


def _per_element(value, numel: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 1 and value.numel() == numel
