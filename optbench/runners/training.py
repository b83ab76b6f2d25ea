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
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from typing import Callable

import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..data import Dataset, load
from ..errors import OptbenchError, did_you_mean
from ..models import build_model
from ..specs import OptimizerSpec, as_spec
from ..tasks import TRAINING, get_task, training_defaults
from .schedules import build_scheduler

DIVERGENCE_CHECK_STEPS = 25
EVAL_BATCH = 1024


@dataclass(frozen=True)
class TrainSpec:
    """Everything that decides a training run; hashable, and saved in a results folder's meta.json.

    `optimizer` may be given as text ('adam:lr=1e-3', 'torch:sgd', 'momentum'); it is parsed once,
    here, and kept as an `OptimizerSpec`.
    """
    optimizer: OptimizerSpec | str = "sgd"
    task: str = "digits"                 # a classification task of optbench.tasks
    model: str = "lenet"                 # optbench.models name
    epochs: int = TRAINING["epochs"]
    batch_size: int = TRAINING["batch_size"]   # global: split evenly across processes
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
    max_steps: int | None = None         # stop after this many steps
    eval_every_steps: int | None = None  # also evaluate on the validation split every N steps
                                         # (None: only after each epoch)

    def __post_init__(self):
        object.__setattr__(self, "optimizer", as_spec(self.optimizer))

    def resolved(self) -> dict:
        """Plain values, with the optimizer's hyperparameters as they will be used (metadata, keys)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**values, "optimizer": self.optimizer.text,
                "optimizer_hparams": self.optimizer.resolved(training_defaults(self.optimizer))}


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
    in the last one does not surface after an hour of work. `train` alone needs no check: it
    raises the same errors while it sets up, before its first step.
    """
    dataset = _dataset(spec, dataset)
    _check_settings(spec, len(dataset.train[1]), world)
    network = build_model(spec.model, dataset.input_shape, dataset.num_classes)
    probe = spec.optimizer.build(network.parameters(), training_defaults(spec.optimizer))
    build_scheduler(spec.schedule, probe, max(1, spec.epochs - spec.warmup_epochs))
    return dataset


def train(spec: TrainSpec, dataset: Dataset | None = None,
          progress: Callable[[Update], None] | None = None) -> TrainResult:
    """Train `spec.model` on `spec.task` with `spec.optimizer`; see the module docstring.

    dataset: the loaded `spec.task` (loaded here when None). progress: called after every step.
    Raises OptbenchError for a bad spec before the first step; divergence is recorded, not raised.
    """
    rank, world = _process_group()
    dataset = _dataset(spec, dataset)
    _check_settings(spec, len(dataset.train[1]), world)
    run = _Run(spec, dataset, rank, world, progress)
    for epoch in range(1, spec.epochs + 1):
        if not run.epoch(epoch):
            break
    return run.result()


class _Run:
    """One training run's objects and bookkeeping; `epoch()` trains and evaluates one epoch."""

    def __init__(self, spec: TrainSpec, dataset: Dataset, rank: int, world: int, progress):
        self.spec, self.dataset, self.rank, self.world, self.progress = spec, dataset, rank, world, progress
        self.device = _device_for_rank(resolve_device(spec.device))
        self.dtype = _dtype(spec)
        self.local_batch = spec.batch_size // world
        self.steps_per_epoch = len(dataset.train[1]) // spec.batch_size
        self.warmup_steps = spec.warmup_epochs * self.steps_per_epoch

        torch.manual_seed(spec.seed)
        self.memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
        self.network = build_model(spec.model, dataset.input_shape, dataset.num_classes) \
            .to(self.device, self.dtype).to(memory_format=self.memory_format)
        self.model = self.network
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.network, device_ids=device_ids)
        self.optimizer = spec.optimizer.build(self.model.parameters(), training_defaults(spec.optimizer),
                                              fast=spec.fast)
        self.scheduler = build_scheduler(spec.schedule, self.optimizer, max(1, spec.epochs - spec.warmup_epochs))
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if spec.bf16 \
            else nullcontext

        x_train, self.y_train = (t.to(self.device) for t in dataset.train)
        self.x_train = x_train.to(self.dtype)
        self.order_generator = torch.Generator().manual_seed(spec.seed)
        self.labels = dict(optimizer=spec.optimizer.name, family=spec.optimizer.family)
        self.step_rows, self.epoch_rows, self.evaluation_rows = [], [], []
        self.global_step, self.diverged, self.stopped_early = 0, False, False
        self.best_accuracy, self.best_epoch = -1.0, 0
        self.started = time.perf_counter()

    def epoch(self, epoch: int) -> bool:
        """Train one epoch, evaluate, record; False when the run stops here."""
        spec = self.spec
        self.model.train()
        _synchronize(self.device)
        epoch_start = time.perf_counter()
        order = torch.randperm(len(self.y_train), generator=self.order_generator).to(self.device)
        losses, lrs = [], []
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        eval_time = 0.0      # spent on evaluations inside the epoch: not training time
        for i in range(self.steps_per_epoch):
            start = i * spec.batch_size + self.rank * self.local_batch
            batch = order[start:start + self.local_batch]
            targets = self.y_train[batch]
            loss, logits, lr = self._step(self.x_train[batch].contiguous(memory_format=self.memory_format), targets)
            losses.append(loss)
            lrs.append(lr)
            correct += (logits.argmax(1) == targets).sum()
            self.global_step += 1
            if self.progress:
                self.progress(Update(spec.optimizer.name, epoch, spec.epochs, i + 1, self.steps_per_epoch))
            last = i + 1 == self.steps_per_epoch or self.global_step == spec.max_steps
            if (self.global_step % DIVERGENCE_CHECK_STEPS == 0 or last) \
                    and not _all_finite(losses[-DIVERGENCE_CHECK_STEPS:], self.world):
                self.diverged = True
                break
            if self.global_step == spec.max_steps:
                break
            if spec.eval_every_steps and self.global_step % spec.eval_every_steps == 0 \
                    and i + 1 < self.steps_per_epoch:
                _synchronize(self.device)   # pending training work is training time
                eval_start = time.perf_counter()
                self._evaluate(epoch)
                eval_time += time.perf_counter() - eval_start
        _synchronize(self.device)
        epoch_time = time.perf_counter() - epoch_start - eval_time
        row = self._record_epoch(epoch, losses, lrs, correct, epoch_time)
        if self.progress:
            self.progress(Update(spec.optimizer.name, epoch, spec.epochs, len(losses), self.steps_per_epoch, row))
        return self._continue_after(epoch, row["val_accuracy"], row["val_loss"])

    def _step(self, inputs, targets):
        """One optimizer step with the warm-up's lr; returns (loss, logits) at the step's starting
        point and the lr the step used."""
        optimizer, outputs = self.optimizer, []

        def closure():
            optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                logits = self.model(inputs)
            loss = F.cross_entropy(_full_precision(logits), targets)
            loss.backward()
            outputs.append((loss.detach(), logits.detach()))
            return loss

        scheduled = [group["lr"] for group in optimizer.param_groups]
        if self.global_step < self.warmup_steps:   # linear warm-up on top of the schedule's lr
            for group, lr in zip(optimizer.param_groups, scheduled):
                group["lr"] = lr * (self.global_step + 1) / self.warmup_steps
        used_lr = _as_float(optimizer.param_groups[0]["lr"])
        optimizer.step(closure)   # every optimizer accepts a closure; LBFGS calls it repeatedly
        for group, lr in zip(optimizer.param_groups, scheduled):
            group["lr"] = lr
        loss, logits = outputs[0]   # the loss at the point the step started from
        return loss, logits, used_lr

    def _evaluate(self, epoch: int) -> tuple[float, float]:
        """Validation loss and accuracy now, recorded as an evaluation row."""
        loss, accuracy = evaluate(self.network, self.dataset.val, self.device, self.dtype, self.autocast,
                                  self.memory_format)
        self.evaluation_rows.append(dict(**self.labels, epoch=epoch, step=self.global_step, val_loss=loss,
                                         val_accuracy=accuracy))
        return loss, accuracy

    def _record_epoch(self, epoch, losses, lrs, correct, epoch_time) -> dict:
        """The epoch's step rows (up to the first non-finite loss) and its epoch row."""
        step_losses = _global_mean(torch.stack(losses).double(), self.world).tolist()
        first_bad = next((k for k, value in enumerate(step_losses) if not math.isfinite(value)), None)
        keep = len(step_losses) if first_bad is None else first_bad + 1
        first_step = self.global_step - len(losses)
        self.step_rows += [dict(**self.labels, epoch=epoch, step=first_step + k, loss=step_losses[k], lr=lrs[k])
                           for k in range(keep)]
        seen = len(losses) * self.spec.batch_size
        train_correct = _global_sum(correct.double(), self.world).item()
        val_loss, val_accuracy = self._evaluate(epoch)
        row = dict(**self.labels, epoch=epoch, train_loss=sum(step_losses[:keep]) / keep,
                   train_accuracy=train_correct / seen, val_loss=val_loss, val_accuracy=val_accuracy, lr=lrs[-1],
                   epoch_time=epoch_time, samples_per_s=seen / epoch_time if epoch_time > 0 else float("nan"),
                   elapsed=time.perf_counter() - self.started, diverged=self.diverged)
        self.epoch_rows.append(row)
        return row

    def _continue_after(self, epoch: int, val_accuracy: float, val_loss: float) -> bool:
        """Stop on divergence, the step budget or early stopping; else step the schedule."""
        spec = self.spec
        if self.diverged or self.global_step == spec.max_steps:
            return False
        if val_accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = val_accuracy, epoch
        elif spec.early_stop is not None and epoch - self.best_epoch >= spec.early_stop:
            self.stopped_early = True
            return False
        if self.scheduler is not None and epoch > spec.warmup_epochs:   # the warm-up epochs are not scheduled
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(val_loss)
            else:
                self.scheduler.step()
        return True

    def result(self) -> TrainResult:
        spec, epochs = self.spec, pd.DataFrame(self.epoch_rows)
        test = evaluate(self.network, self.dataset.test, self.device, self.dtype, self.autocast, self.memory_format) \
            if self.dataset.test is not None and not self.diverged else (float("nan"), float("nan"))
        train_time = epochs["epoch_time"].sum()
        summary = pd.DataFrame([dict(
            **self.labels, task=self.dataset.name, model=spec.model, epochs_run=len(epochs), steps=self.global_step,
            final_val_accuracy=epochs["val_accuracy"].iloc[-1], best_val_accuracy=epochs["val_accuracy"].max(),
            best_epoch=int(epochs["val_accuracy"].idxmax()) + 1, test_loss=test[0], test_accuracy=test[1],
            train_time=train_time, samples_per_s=self.global_step * spec.batch_size / train_time,
            diverged=self.diverged, stopped_early=self.stopped_early, device=str(self.device),
            processes=self.world)])
        state = {name: tensor.detach().cpu().clone() for name, tensor in self.network.state_dict().items()}
        return TrainResult(pd.DataFrame(self.step_rows), epochs, summary, state, pd.DataFrame(self.evaluation_rows))


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


def _dataset(spec: TrainSpec, dataset: Dataset | None) -> Dataset:
    """`dataset`, or the spec's task loaded; a task that is not a classification task is a user error."""
    if get_task(spec.task).kind != "classification":
        raise OptbenchError(f"task '{spec.task}' is not a classification task; train it with optbench.train")
    return dataset or load(spec.task, spec.data_dir)


def _check_settings(spec: TrainSpec, n_train: int, world: int) -> None:
    """The spec's numbers and names, without building anything."""
    resolve_device(spec.device)
    _dtype(spec)
    check_batch_size(spec.batch_size, n_train, world)
    if spec.epochs < 1:
        raise OptbenchError(f"epochs must be at least 1, got {spec.epochs}")
    if spec.warmup_epochs < 0 or (spec.early_stop is not None and spec.early_stop < 1):
        raise OptbenchError("warm-up epochs must be >= 0 and early-stop patience >= 1")
    if spec.max_steps is not None and spec.max_steps < 1:
        raise OptbenchError(f"max steps must be at least 1, got {spec.max_steps}")
    if spec.eval_every_steps is not None and not (isinstance(spec.eval_every_steps, int)
                                                  and spec.eval_every_steps >= 1):
        raise OptbenchError(f"eval-every-steps must be a whole number >= 1, got {spec.eval_every_steps}")


def _dtype(spec: TrainSpec) -> torch.dtype:
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if spec.dtype not in dtypes:
        raise did_you_mean("dtype", spec.dtype, dtypes)
    if spec.bf16 and spec.dtype != "float32":
        raise OptbenchError("bf16 autocast needs float32 weights (drop --bf16 or the float64 dtype)")
    return dtypes[spec.dtype]


def _process_group() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device_for_rank(device: torch.device) -> torch.device:
    """Under torchrun each process of a machine takes its own GPU (LOCAL_RANK)."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        torch.cuda.set_device(device if device.index is not None else 0)
    return device


def _global_mean(values: torch.Tensor, world: int) -> torch.Tensor:
    return (_global_sum(values, world) / world).cpu()


def _global_sum(values: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values.cpu()


def _all_finite(losses, world: int) -> bool:
    """One device sync; every process reaches the same verdict so none waits for another."""
    finite = torch.stack(losses).isfinite().all().to(torch.int32)
    if world > 1:
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
