"""Data-parallel training on torch.distributed, started the way torchrun starts it.

`launch(spec, nproc)` spawns `nproc` local processes, each with the environment torchrun gives
its workers (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); each joins
the process group (gloo on CPU, nccl on GPU) and runs the ordinary `training.train`, which splits
every global batch across the processes and lets DDP average the gradients. Only rank 0 hands
results back.

On several machines, start the same command with torchrun instead of `--nproc`; `process_group()`
picks up the environment torchrun sets (see the README's "Several machines" section).
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import tempfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from ..errors import OptbenchError
from .devices import resolve_device
from .training import TrainResult, TrainSpec, train

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


JOIN_TIMEOUT = timedelta(seconds=60)  # a rank whose peers never start fails after this, never hangs


def started_by_torchrun() -> bool:
    """Whether torchrun's variables describe a process group of several ranks; raises OptbenchError
    for values torchrun would never set (WORLD_SIZE=abc, RANK outside 0..WORLD_SIZE-1)."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return False
    numbers = {}
    for name in ("RANK", "WORLD_SIZE", "MASTER_PORT"):
        text = os.environ[name]
        if not text.strip().isdigit():
            raise OptbenchError(f"environment variable {name}={text!r} is not a whole number")
        numbers[name] = int(text)
    if not 0 <= numbers["RANK"] < max(1, numbers["WORLD_SIZE"]):
        raise OptbenchError(
            f"environment variable RANK={numbers['RANK']} is outside 0..WORLD_SIZE-1 "
            f"(WORLD_SIZE={numbers['WORLD_SIZE']})"
        )
    return numbers["WORLD_SIZE"] > 1


@contextmanager
def process_group(device: str = "auto"):
    """Join the process group described by the torchrun environment variables; leave it after."""
    backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend=backend, init_method="env://", timeout=JOIN_TIMEOUT)
    except (RuntimeError, ValueError) as error:  # DistStoreError (a RuntimeError): the peers never came
        raise OptbenchError(
            f"rank {os.environ.get('RANK')} of {os.environ.get('WORLD_SIZE')} could not join the process "
            f"group at {os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} within "
            f"{JOIN_TIMEOUT.seconds} s (were the other ranks started, by torchrun?): {error}"
        ) from None
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        dist.destroy_process_group()


def launch(spec: TrainSpec, nproc: int) -> TrainResult:
    """Train `spec` data-parallel on `nproc` local processes; returns rank 0's result.

    Check the spec first (`training.check(spec, world=nproc)`) to have user errors before any process
    starts; a user error inside a worker is still raised here as one OptbenchError line.
    """
    if nproc < 1:
        raise OptbenchError(f"--nproc must be at least 1, got {nproc}")
    device = resolve_device(spec.device)
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise OptbenchError(
            f"--nproc {nproc} needs {nproc} GPUs; this machine has {torch.cuda.device_count()}"
        )
    _remove_stale_folders()
    with tempfile.TemporaryDirectory(prefix=f"{FOLDER_PREFIX}{os.getpid()}-") as folder:
        try:
            torch.multiprocessing.start_processes(
                _worker, args=(spec, nproc, _free_port(), folder), nprocs=nproc, start_method="spawn"
            )
        except torch.multiprocessing.ProcessRaisedException:
            errors = sorted(Path(folder).glob("error-*.txt"))
            if errors:  # a user error in a worker: report its one line, like in one process
                raise OptbenchError(errors[0].read_text()) from None
            raise
        with open(Path(folder) / "result.pkl", "rb") as handle:
            return pickle.load(handle)


FOLDER_PREFIX = "optbench-ddp-"


def _remove_stale_folders() -> None:
    """Remove the exchange folders of launches whose process is gone (killed with SIGKILL, which no
    cleanup survives): optbench-ddp-PID-* in the temporary directory, with PID no longer running."""
    for path in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = path.name[len(FOLDER_PREFIX) :].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and path.owner() == _user():
            shutil.rmtree(path, ignore_errors=True)


def _user() -> str:
    import getpass

    return getpass.getuser()


def _die_with_parent(folder: str) -> None:
    """Linux: a worker gets SIGTERM when the launching process dies, even by SIGKILL, and then removes
    the exchange folder and exits, so no worker trains on for nobody (elsewhere, nothing is set)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return

    def leave(signum, frame):
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    if os.getppid() == 1:  # the parent died before prctl took effect
        leave(signal.SIGTERM, None)


def _worker(local_rank: int, spec: TrainSpec, world: int, port: int, folder: str) -> None:
    _die_with_parent(folder)
    os.environ.update(
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    if resolve_device(spec.device).type == "cpu":  # share the cores instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    try:
        with process_group(spec.device) as (rank, _):
            result = train(spec)
    except OptbenchError as error:
        Path(folder, f"error-{local_rank}.txt").write_text(str(error))
        raise
    if rank == 0:
        with open(Path(folder) / "result.pkl", "wb") as handle:
            pickle.dump(result, handle)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
