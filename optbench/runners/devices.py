"""Where training runs: the device, and the sums and verdicts every process of a group shares.

Outside a torch.distributed process group every function here is the one-process identity
(rank 0 of 1), so the training loop is the same code with or without DDP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from ..errors import OptbenchError


def resolve_device(name: str) -> torch.device:
    """'auto' (cuda when available), 'cpu', 'cuda', 'cuda:N' -> torch.device; others are user errors."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptbenchError(f"unknown device '{name}' (valid: auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptbenchError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise OptbenchError(f"unsupported device '{name}' (valid: auto, cpu, cuda, cuda:N)")
    return device


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the process group this process is in; (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device_for_rank(device: torch.device) -> torch.device:
    """Under torchrun each process of a machine takes its own GPU (LOCAL_RANK)."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        torch.cuda.set_device(device if device.index is not None else 0)
    return device


def global_mean(values: torch.Tensor, world: int) -> torch.Tensor:
    """The element-wise mean of `values` over the processes, on the CPU."""
    return (global_sum(values, world) / world).cpu()


def global_sum(values: torch.Tensor, world: int) -> torch.Tensor:
    """The element-wise sum of `values` over the processes, on the CPU."""
    if world > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values.cpu()


def none_diverged(losses, limit, world: int) -> bool:
    """Every loss finite and at most `limit` (`runners.divergence.divergence_limit`; NaN fails the test).

    One device sync; every process reaches the same verdict so none waits for another.
    """
    finite = (torch.stack(losses) <= limit).all().to(torch.int32)
    if world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so a wall-clock reading includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


MAX_THREADS = 1024  # more is a typo, not a machine


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """torch's intra-op thread count set to `threads` for the block (None: what torch uses now), and
    restored afterwards (a notebook keeps its own); yields the count used, for meta.json. Several runs
    on one machine each take a share instead of all oversubscribing its cores. Raises OptbenchError
    unless 1 <= threads <= MAX_THREADS."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise OptbenchError(f"threads must be a whole number >= 1, got {threads!r}")
    if threads is not None and threads > MAX_THREADS:
        raise OptbenchError(f"threads must be at most {MAX_THREADS}, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
