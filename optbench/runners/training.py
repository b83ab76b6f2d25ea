"""Train one model with one optimizer on a real data set, and return tidy tables.

    result = train(TrainSpec(optimizer="sgd:lr=0.1,momentum=0.9", task="digits", model="lenet"))
    result.steps    # one row per optimizer step: loss, lr
    result.epochs   # one row per epoch: train/val loss and accuracy, time, samples/s, diverged
    result.evaluations  # one row per validation evaluation: after every epoch, and every
                        # `eval_every_steps` steps when that is given
    result.summary  # one row: best and final accuracy, test accuracy where the data set has a test split

The whole data set lives on the device as tensors and is batched by index (no DataLoader), so
the loop is the hand-written PyTorch loop plus bookkeeping that never synchronises the device
more than once every `DIVERGENCE_CHECK_STEPS` steps. Inside a torch.distributed process group
(see `distributed.py`) the same function trains data-parallel: every process draws the same
shuffled order, takes its slice of each global batch, and DDP averages the gradients.

Conventions:
- the last incomplete batch of an epoch is dropped, so every step sees exactly `batch_size`
  samples, whatever the number of processes;
- schedules step once per epoch after the warm-up (their arguments count epochs); the warm-up
  ramps the lr linearly per step from lr/warmup_steps to lr;
- a non-finite loss stops the run and is recorded (`diverged`), never raised;
- `eval_every_steps` adds validation evaluations inside epochs (a batch-size sweep needs them:
  steps-to-target between two epoch ends is otherwise a guess). They change no training number
  (evaluation draws no random numbers and updates no state), and their time is left out of
  `epoch_time` and `samples_per_s`;
- same spec and seed -> same numbers on CPU.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F

from ..data import Dataset, load
from ..errors import OptbenchError, did_you_mean
from ..models import build_model
from ..specs import OptimizerSpec, parse_optimizer, parse_value

# Learning rates for training when the user gives none. torch's defaults suit some algorithms
# (Adam's 1e-3) but not others: plain SGD at torch's 1e-3 barely moves a fresh network.
TRAINING_DEFAULTS = {
    "sgd": {"lr": 0.1},
    "asgd": {"lr": 0.1},
    "rmsprop": {"lr": 1e-3},
}
DIVERGENCE_CHECK_STEPS = 25
EVAL_BATCH = 1024


@dataclass(frozen=True)
class TrainSpec:
    """Everything that decides a training run; plain values, so it can be saved and hashed."""
    optimizer: str = "sgd"               # an optimizer spec: 'adam:lr=1e-3', 'torch:sgd', 'momentum'
    task: str = "digits"                 # optbench.data task name
    model: str = "lenet"                 # optbench.models name
    epochs: int = 10
    batch_size: int = 64                 # global: split evenly across processes
    schedule: str | None = None          # 'cosine', 'step:step_size=5,gamma=0.5', any lr_scheduler class
    warmup_epochs: int = 0
    early_stop: int | None = None        # stop after this many epochs without a better val accuracy
    device: str = "auto"                 # 'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1'
    bf16: bool = False                   # bfloat16 autocast for the forward pass
    channels_last: bool = False
    fast: bool = False                   # our optimizers' fast path (element-wise algorithms)
    dtype: str = "float32"               # 'float64' for exact comparisons
    seed: int = 0                        # initial weights and batch order
    data_dir: str | None = None
    max_steps: int | None = None         # stop after this many steps (smoke tests)
    eval_every_steps: int | None = None  # also evaluate on the validation split every N steps
                                         # (None: only after each epoch)

    def resolved(self) -> dict:
        """The spec with the optimizer's hyperparameters as they will be used (for metadata and keys)."""
        optimizer = parse_optimizer(self.optimizer)
        return {**asdict(self), "optimizer_hparams": optimizer.resolved(training_defaults(optimizer))}


@dataclass
class Update:
    """What a progress callback receives: after every step, and with `metrics` after every epoch."""
    optimizer: str
    epoch: int
    epochs: int
    step: int                      # within the epoch, 1-based
    steps_per_epoch: int
    metrics: dict | None = None    # the epoch's row once the epoch is done


@dataclass
class TrainResult:
    steps: pd.DataFrame
    epochs: pd.DataFrame
    summary: pd.DataFrame
    state_dict: dict = field(repr=False)   # final weights, on the CPU
    evaluations: pd.DataFrame = field(default_factory=pd.DataFrame)
    # ^ one row per validation evaluation: epoch, step (updates done), val_loss, val_accuracy


def training_defaults(optimizer: OptimizerSpec) -> dict:
    defaults = dict(TRAINING_DEFAULTS.get(optimizer.family, {}))
    momentum = optimizer.hparams.get("momentum", 0) or 0
    if optimizer.family == "sgd" and momentum > 0:
        # Heavy-ball momentum μ lengthens the steady-state step to lr/(1 - μ): keep that at 0.1.
        defaults["lr"] = defaults["lr"] * (1 - momentum)
    return defaults


def resolve_device(name: str) -> torch.device:
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


def check(spec: TrainSpec, dataset: Dataset | None = None, world: int = 1) -> Dataset:
    """Every user mistake in `spec` as an OptbenchError, before any training; returns the data set.

    Callers that train several specs (several optimizers, a sweep) check them all first, so a typo
    in the last one does not surface after an hour of work.
    """
    resolve_device(spec.device)
    _dtype(spec)
    optimizer = parse_optimizer(spec.optimizer)
    dataset = dataset or load(spec.task, spec.data_dir)
    check_batch_size(spec.batch_size, len(dataset.train[1]), world)
    if spec.epochs < 1:
        raise OptbenchError(f"epochs must be at least 1, got {spec.epochs}")
    if spec.warmup_epochs < 0 or (spec.early_stop is not None and spec.early_stop < 1):
        raise OptbenchError("warm-up epochs must be >= 0 and early-stop patience >= 1")
    if spec.eval_every_steps is not None and not (isinstance(spec.eval_every_steps, int)
                                                  and spec.eval_every_steps >= 1):
        raise OptbenchError(f"eval-every-steps must be a whole number >= 1, got {spec.eval_every_steps}")
    network = build_model(spec.model, dataset.input_shape, dataset.num_classes)
    probe = optimizer.build(network.parameters(), training_defaults(optimizer))
    build_scheduler(spec.schedule, probe, max(1, spec.epochs - spec.warmup_epochs))
    return dataset


def train(spec: TrainSpec, dataset: Dataset | None = None,
          progress: Callable[[Update], None] | None = None) -> TrainResult:
    """Train `spec.model` on `spec.task` with `spec.optimizer`; see the module docstring."""
    rank, world = _process_group()
    device = _device_for_rank(resolve_device(spec.device))
    dtype = _dtype(spec)
    optimizer_spec = parse_optimizer(spec.optimizer)
    dataset = check(spec, dataset, world)
    n_train = len(dataset.train[1])
    local_batch = spec.batch_size // world
    steps_per_epoch = n_train // spec.batch_size

    torch.manual_seed(spec.seed)
    network = build_model(spec.model, dataset.input_shape, dataset.num_classes).to(device, dtype)
    memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
    network = network.to(memory_format=memory_format)
    model = network
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = optimizer_spec.build(model.parameters(), training_defaults(optimizer_spec), fast=spec.fast)
    scheduler = build_scheduler(spec.schedule, optimizer, max(1, spec.epochs - spec.warmup_epochs))
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if spec.bf16 else nullcontext

    x_train, y_train = (t.to(device) for t in dataset.train)
    x_train = x_train.to(dtype)
    order_generator = torch.Generator().manual_seed(spec.seed)
    warmup_steps = spec.warmup_epochs * steps_per_epoch
    step_rows, epoch_rows, evaluation_rows = [], [], []
    best_accuracy, best_epoch, diverged, stopped_early, global_step = -1.0, 0, False, False, 0
    started = time.perf_counter()

    for epoch in range(1, spec.epochs + 1):
        model.train()
        _synchronize(device)
        epoch_start = time.perf_counter()
        order = torch.randperm(n_train, generator=order_generator).to(device)
        losses, lrs, correct = [], [], torch.zeros((), device=device, dtype=torch.int64)
        eval_time = 0.0      # spent on evaluations inside the epoch: not training time
        for i in range(steps_per_epoch):
            start = i * spec.batch_size + rank * local_batch
            batch = order[start:start + local_batch]
            inputs = x_train[batch].contiguous(memory_format=memory_format)
            targets = y_train[batch]
            evaluations = []

            def closure():
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    logits = model(inputs)
                loss = F.cross_entropy(_full_precision(logits), targets)
                loss.backward()
                evaluations.append((loss.detach(), logits.detach()))
                return loss

            scheduled = [group["lr"] for group in optimizer.param_groups]
            if global_step < warmup_steps:   # linear warm-up on top of the schedule's lr
                for group, lr in zip(optimizer.param_groups, scheduled):
                    group["lr"] = lr * (global_step + 1) / warmup_steps
            lrs.append(_as_float(optimizer.param_groups[0]["lr"]))
            optimizer.step(closure)   # every optimizer accepts a closure; LBFGS calls it repeatedly
            for group, lr in zip(optimizer.param_groups, scheduled):
                group["lr"] = lr
            loss, logits = evaluations[0]   # the loss at the point the step started from
            losses.append(loss)
            correct += (logits.argmax(1) == targets).sum()
            global_step += 1
            if progress:
                progress(Update(optimizer_spec.name, epoch, spec.epochs, i + 1, steps_per_epoch))
            last = i + 1 == steps_per_epoch or global_step == spec.max_steps
            if (global_step % DIVERGENCE_CHECK_STEPS == 0 or last) and not _all_finite(losses[-DIVERGENCE_CHECK_STEPS:]):
                diverged = True
                break
            if global_step == spec.max_steps:
                break
            if spec.eval_every_steps and global_step % spec.eval_every_steps == 0 and i + 1 < steps_per_epoch:
                _synchronize(device)   # pending training work is training time
                eval_start = time.perf_counter()
                loss_now, accuracy_now = evaluate(network, dataset.val, device, dtype, autocast, memory_format)
                evaluation_rows.append(dict(optimizer=optimizer_spec.name, family=optimizer_spec.family, epoch=epoch,
                                            step=global_step, val_loss=loss_now, val_accuracy=accuracy_now))
                eval_time += time.perf_counter() - eval_start
        _synchronize(device)
        epoch_time = time.perf_counter() - epoch_start - eval_time

        step_losses = _global_mean(torch.stack(losses).double(), world).tolist()
        first_bad = next((k for k, value in enumerate(step_losses) if not math.isfinite(value)), None)
        keep = len(step_losses) if first_bad is None else first_bad + 1
        first_step = global_step - len(losses)
        step_rows += [dict(optimizer=optimizer_spec.name, family=optimizer_spec.family, epoch=epoch,
                           step=first_step + k, loss=step_losses[k], lr=lrs[k]) for k in range(keep)]
        seen = len(losses) * spec.batch_size
        train_correct = _global_sum(correct.double(), world).item()
        val_loss, val_accuracy = evaluate(network, dataset.val, device, dtype, autocast, memory_format)
        evaluation_rows.append(dict(optimizer=optimizer_spec.name, family=optimizer_spec.family, epoch=epoch,
                                    step=global_step, val_loss=val_loss, val_accuracy=val_accuracy))
        row = dict(optimizer=optimizer_spec.name, family=optimizer_spec.family, epoch=epoch,
                   train_loss=sum(step_losses[:keep]) / keep, train_accuracy=train_correct / seen,
                   val_loss=val_loss, val_accuracy=val_accuracy, lr=lrs[-1], epoch_time=epoch_time,
                   samples_per_s=seen / epoch_time if epoch_time > 0 else float("nan"),
                   elapsed=time.perf_counter() - started, diverged=diverged)
        epoch_rows.append(row)
        if progress:
            progress(Update(optimizer_spec.name, epoch, spec.epochs, len(losses), steps_per_epoch, row))
        if diverged or global_step == spec.max_steps:
            break
        if val_accuracy > best_accuracy:
            best_accuracy, best_epoch = val_accuracy, epoch
        elif spec.early_stop is not None and epoch - best_epoch >= spec.early_stop:
            stopped_early = True
            break
        if scheduler is not None and epoch > spec.warmup_epochs:   # the warm-up epochs are not scheduled
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_loss)
            else:
                scheduler.step()

    epochs = pd.DataFrame(epoch_rows)
    test = evaluate(network, dataset.test, device, dtype, autocast, memory_format) \
        if dataset.test is not None and not diverged else (float("nan"), float("nan"))
    summary = pd.DataFrame([dict(
        optimizer=optimizer_spec.name, family=optimizer_spec.family, task=dataset.name, model=spec.model,
        epochs_run=len(epochs), steps=global_step, final_val_accuracy=epochs["val_accuracy"].iloc[-1],
        best_val_accuracy=epochs["val_accuracy"].max(), best_epoch=int(epochs["val_accuracy"].idxmax()) + 1,
        test_loss=test[0], test_accuracy=test[1], train_time=epochs["epoch_time"].sum(),
        samples_per_s=global_step * spec.batch_size / epochs["epoch_time"].sum(),
        diverged=diverged, stopped_early=stopped_early, device=str(device), processes=world)])
    state = {name: tensor.detach().cpu().clone() for name, tensor in network.state_dict().items()}
    return TrainResult(pd.DataFrame(step_rows), epochs, summary, state, pd.DataFrame(evaluation_rows))


@torch.no_grad()
def evaluate(network, split, device, dtype=torch.float32, autocast=nullcontext,
             memory_format=torch.contiguous_format) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `network` on an (images, labels) split."""
    was_training = network.training
    network.eval()
    images, labels = split
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(0, len(labels), EVAL_BATCH):
        inputs = images[start:start + EVAL_BATCH].to(device, dtype).contiguous(memory_format=memory_format)
        targets = labels[start:start + EVAL_BATCH].to(device)
        with autocast():
            logits = network(inputs)
        total_loss += F.cross_entropy(_full_precision(logits), targets, reduction="sum").double()
        correct += (logits.argmax(1) == targets).sum()
    network.train(was_training)
    return total_loss.item() / len(labels), correct.item() / len(labels)


# --- schedules --------------------------------------------------------------------------------

SCHEDULE_ALIASES = {
    "cosine": "CosineAnnealingLR", "step": "StepLR", "multistep": "MultiStepLR",
    "exponential": "ExponentialLR", "plateau": "ReduceLROnPlateau", "linear": "LinearLR",
    "polynomial": "PolynomialLR", "constant": "ConstantLR", "onecycle": "OneCycleLR",
    "cosine_restarts": "CosineAnnealingWarmRestarts", "cyclic": "CyclicLR",
}
NEEDS_CODE = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler"}


def schedule_names() -> dict[str, str]:
    """Every name `--schedule` accepts -> the torch.optim.lr_scheduler class name."""
    module = torch.optim.lr_scheduler
    classes = [name for name in dir(module) if isinstance(getattr(module, name), type)
               and name not in NEEDS_CODE and name not in ("LRScheduler", "_LRScheduler")
               and (issubclass(getattr(module, name), module.LRScheduler)
                    or name == "ReduceLROnPlateau")]
    return {**{name.lower(): name for name in classes}, **SCHEDULE_ALIASES}


def build_scheduler(text: str | None, optimizer, epochs: int):
    """'cosine' or 'step:step_size=5,gamma=0.5' -> a torch.optim.lr_scheduler stepped once per epoch.

    Lengths default to the scheduled epochs (T_max, total_iters, total_steps); OneCycleLR's
    max_lr defaults to the optimizer's lr.
    """
    if not text:
        return None
    name, _, settings = text.strip().partition(":")
    names = schedule_names()
    key = name.lower()
    if key not in names:
        if name in NEEDS_CODE or key in {n.lower() for n in NEEDS_CODE}:
            raise OptbenchError(f"schedule '{name}' needs Python functions or schedulers as arguments; "
                                "use it from Python")
        raise did_you_mean("schedule", name, names)
    class_name = names[key]
    kwargs = {}
    for item in filter(None, settings.split(",")):
        hname, eq, raw = item.partition("=")
        if not eq or not raw.strip():
            raise OptbenchError(f"malformed schedule setting '{item}' in '{text}': expected name=value")
        value = parse_value(raw)
        kwargs[hname.strip()] = list(value) if isinstance(value, tuple) else value
    lr = optimizer.param_groups[0]["lr"]
    defaults = {"CosineAnnealingLR": {"T_max": epochs}, "PolynomialLR": {"total_iters": epochs},
                "OneCycleLR": {"total_steps": epochs, "max_lr": lr},
                "CyclicLR": {"base_lr": lr / 10, "max_lr": lr}}.get(class_name, {})
    if class_name == "MultiStepLR" and not isinstance(kwargs.get("milestones", []), list):
        kwargs["milestones"] = [kwargs["milestones"]]   # 'milestones=5' means one milestone
    try:
        return getattr(torch.optim.lr_scheduler, class_name)(optimizer, **{**defaults, **kwargs})
    except (TypeError, ValueError, KeyError) as error:
        raise OptbenchError(f"schedule '{text}' ({class_name}): {error}") from None


# --- helpers ----------------------------------------------------------------------------------

def check_batch_size(batch_size: int, n_train: int, world: int = 1) -> int:
    """The per-process batch; the global batch must fit the training split and divide evenly."""
    if batch_size < 1:
        raise OptbenchError(f"batch size must be at least 1, got {batch_size}")
    if batch_size > n_train:
        raise OptbenchError(f"batch size {batch_size} is larger than the {n_train} training samples")
    if batch_size % world:
        raise OptbenchError(f"batch size {batch_size} does not split evenly across {world} processes")
    return batch_size // world


def _dtype(spec: TrainSpec) -> torch.dtype:
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if spec.dtype not in dtypes:
        raise did_you_mean("dtype", spec.dtype, dtypes)
    if spec.bf16 and spec.dtype != "float32":
        raise OptbenchError("bf16 autocast needs float32 weights (drop --bf16 or the float64 dtype)")
    return dtypes[spec.dtype]


def _process_group() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device_for_rank(device: torch.device) -> torch.device:
    """Under torchrun each process of a machine takes its own GPU (LOCAL_RANK)."""
    import os

    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        torch.cuda.set_device(device if device.index is not None else 0)
    return device


def _global_mean(values: torch.Tensor, world: int) -> torch.Tensor:
    return (_global_sum(values, world) / world).cpu()


def _global_sum(values: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        import torch.distributed as dist
        values = values.clone()
        dist.all_reduce(values)
    return values.cpu()


def _all_finite(losses) -> bool:
    """One device sync; every process reaches the same verdict so none waits for another."""
    finite = torch.stack(losses).isfinite().all().to(torch.int32)
    _, world = _process_group()
    if world > 1:
        import torch.distributed as dist
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _full_precision(logits: torch.Tensor) -> torch.Tensor:
    """bf16 logits from autocast are scored in float32; float32/float64 stay as they are."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def _as_float(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)
