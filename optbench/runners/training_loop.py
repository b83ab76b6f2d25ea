"""The training loop of `training.train`: one run's model, optimizer and bookkeeping, epoch by epoch.

`TrainingRun` builds everything a run needs (seeded model, optimizer, schedule, data on the device),
then `epoch(k)` trains one epoch, evaluates it and records its rows; `result()` gathers the tables.
The conventions (dropped last batch, warm-up, divergence, evaluations) are in `training`'s docstring.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
import torch
import torch.nn.functional as F

from ..data import Dataset
from ..models import build_model
from ..progress import Progress
from ..tasks import training_defaults
from .devices import device_for_rank, global_mean, global_sum, none_diverged, resolve_device, synchronize
from .divergence import divergence_limit, is_diverged
from .eval_mode import evaluation_mode, has_eval_mode
from .recipes import build_optimizer, recipe_for
from .schedules import build_scheduler

if TYPE_CHECKING:
    from .training import TrainSpec

DIVERGENCE_CHECK_STEPS = 25
EVAL_BATCH = 1024


@dataclass
class TrainResult:
    steps: pd.DataFrame
    epochs: pd.DataFrame
    summary: pd.DataFrame
    state_dict: dict = field(repr=False)  # final weights, on the CPU
    evaluations: pd.DataFrame = field(default_factory=pd.DataFrame)
    # ^ one row per validation evaluation: epoch, step (updates done), val_loss, val_accuracy


class TrainingRun:
    """One training run's objects and bookkeeping; `epoch()` trains and evaluates one epoch."""

    def __init__(
        self, spec: TrainSpec, dataset: Dataset, dtype: torch.dtype, rank: int, world: int, progress
    ):
        self.spec, self.dataset, self.rank, self.world, self.progress = spec, dataset, rank, world, progress
        self.device = device_for_rank(resolve_device(spec.device))
        self.dtype = dtype
        self.local_batch = spec.batch_size // world
        self.steps_per_epoch = len(dataset.train[1]) // spec.batch_size
        self.warmup_steps = spec.warmup_epochs * self.steps_per_epoch

        torch.manual_seed(spec.seed)
        self.memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
        self.network = (
            build_model(spec.model, dataset.input_shape, dataset.num_classes)
            .to(self.device, self.dtype)
            .to(memory_format=self.memory_format)
        )
        self.model = self.network
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.network, device_ids=device_ids)
        self.optimizer = build_optimizer(
            spec.optimizer,
            recipe_for(spec.optimizer, spec.recipe),
            self.network,
            training_defaults(spec.optimizer),
            fast=spec.fast,
        )
        self.scheduler = build_scheduler(
            spec.schedule, self.optimizer, max(1, spec.epochs - spec.warmup_epochs)
        )
        self.autocast = (
            (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if spec.bf16 else nullcontext
        )

        x_train, self.y_train = (t.to(self.device) for t in dataset.train)
        self.x_train = x_train.to(self.dtype)
        self.order_generator = torch.Generator().manual_seed(spec.seed)
        self.labels = dict(optimizer=spec.optimizer.name, family=spec.optimizer.family)
        self.step_rows, self.epoch_rows, self.evaluation_rows = [], [], []
        self.global_step, self.diverged, self.stopped_early = 0, False, False
        self.divergence_limit = self.start_loss = None  # from the first step's loss (runners.divergence)
        self.best_accuracy, self.best_epoch = -1.0, 0
        self.started = time.perf_counter()

    def epoch(self, epoch: int) -> bool:
        """Train one epoch, evaluate, record; False when the run stops here."""
        spec = self.spec
        self.model.train()
        synchronize(self.device)
        epoch_start = time.perf_counter()
        order = torch.randperm(len(self.y_train), generator=self.order_generator).to(self.device)
        losses, lrs = [], []
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        eval_time = 0.0  # spent on evaluations inside the epoch: not training time
        for i in range(self.steps_per_epoch):
            start = i * spec.batch_size + self.rank * self.local_batch
            batch = order[start : start + self.local_batch]
            targets = self.y_train[batch]
            loss, logits, lr = self._step(
                self.x_train[batch].contiguous(memory_format=self.memory_format), targets
            )
            losses.append(loss)
            if self.divergence_limit is None:  # a tensor on the device: no sync here
                self.divergence_limit = divergence_limit(loss.detach().double())
            lrs.append(lr)
            correct += (logits.argmax(1) == targets).sum()
            self.global_step += 1
            if self.progress:
                self.progress(epoch_progress(spec, epoch, i + 1, self.steps_per_epoch))
            last = i + 1 == self.steps_per_epoch or self.global_step == spec.max_steps
            if (self.global_step % DIVERGENCE_CHECK_STEPS == 0 or last) and not none_diverged(
                losses[-DIVERGENCE_CHECK_STEPS:], self.divergence_limit, self.world
            ):
                self.diverged = True
                break
            if self.global_step == spec.max_steps:
                break
            if (
                spec.eval_every_steps
                and self.global_step % spec.eval_every_steps == 0
                and i + 1 < self.steps_per_epoch
            ):
                synchronize(self.device)  # pending training work is training time
                eval_start = time.perf_counter()
                self._evaluate(epoch)
                eval_time += time.perf_counter() - eval_start
        synchronize(self.device)
        epoch_time = time.perf_counter() - epoch_start - eval_time
        row = self._record_epoch(epoch, losses, lrs, correct, epoch_time)
        if self.progress:
            self.progress(epoch_progress(spec, epoch, len(losses), self.steps_per_epoch, row))
        return self._continue_after(epoch, row["val_accuracy"], row["val_loss"])

    def _step(self, inputs, targets):
        """One optimizer step with the warm-up's lr; returns (loss, logits) at the step's starting
        point and the lr the step used."""
        optimizer = self.optimizer
        scheduled = [group["lr"] for group in optimizer.param_groups]
        if self.global_step < self.warmup_steps:  # linear warm-up on top of the schedule's lr
            for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
                group["lr"] = lr * (self.global_step + 1) / self.warmup_steps
        used_lr = _as_float(optimizer.param_groups[0]["lr"])
        # The gradient is taken here, not through a closure, since a user's optimizer need not call
        # one; L-BFGS, which must, is refused by `training.check`.
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.model(inputs)
        loss = F.cross_entropy(_full_precision(logits), targets)
        loss.backward()
        optimizer.step()
        for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr
        loss, logits = loss.detach(), logits.detach()  # at the point the step started from
        return loss, logits, used_lr

    def _evaluate(self, epoch: int) -> tuple[float, float]:
        """Validation loss and accuracy now (at the optimizer's evaluation point), recorded as a row."""
        with evaluation_mode(self.optimizer):
            loss, accuracy = evaluate(
                self.network, self.dataset.val, self.device, self.dtype, self.autocast, self.memory_format
            )
        self.evaluation_rows.append(
            dict(**self.labels, epoch=epoch, step=self.global_step, val_loss=loss, val_accuracy=accuracy)
        )
        return loss, accuracy

    def _record_epoch(self, epoch, losses, lrs, correct, epoch_time) -> dict:
        """The epoch's step rows (up to the first non-finite loss) and its epoch row."""
        step_losses = global_mean(torch.stack(losses).double(), self.world).tolist()
        if self.start_loss is None:
            self.start_loss = step_losses[0]
        first_bad = next(
            (k for k, value in enumerate(step_losses) if is_diverged(value, self.start_loss)), None
        )
        keep = len(step_losses) if first_bad is None else first_bad + 1
        first_step = self.global_step - len(losses)
        self.step_rows += [
            dict(**self.labels, epoch=epoch, step=first_step + k, loss=step_losses[k], lr=lrs[k])
            for k in range(keep)
        ]
        seen = len(losses) * self.spec.batch_size
        train_correct = global_sum(correct.double(), self.world).item()
        val_loss, val_accuracy = self._evaluate(epoch)
        row = dict(
            **self.labels,
            epoch=epoch,
            train_loss=sum(step_losses[:keep]) / keep,
            train_accuracy=train_correct / seen,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            lr=lrs[-1],
            epoch_time=epoch_time,
            samples_per_s=seen / epoch_time if epoch_time > 0 else float("nan"),
            elapsed=time.perf_counter() - self.started,
            diverged=self.diverged,
        )
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
        if self.scheduler is not None and epoch > spec.warmup_epochs:  # the warm-up epochs are not scheduled
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(val_loss)
            else:
                self.scheduler.step()
        return True

    def result(self) -> TrainResult:
        """The tables, with the test split scored and the weights saved at the optimizer's evaluation
        point (Schedule-Free's x), where the optimizer stays."""
        spec, epochs = self.spec, pd.DataFrame(self.epoch_rows)
        if has_eval_mode(self.optimizer):
            self.optimizer.eval()
        test = (
            evaluate(
                self.network, self.dataset.test, self.device, self.dtype, self.autocast, self.memory_format
            )
            if self.dataset.test is not None and not self.diverged
            else (float("nan"), float("nan"))
        )
        train_time = epochs["epoch_time"].sum()
        summary = pd.DataFrame(
            [
                dict(
                    **self.labels,
                    task=self.dataset.name,
                    model=spec.model,
                    epochs_run=len(epochs),
                    steps=self.global_step,
                    final_val_accuracy=epochs["val_accuracy"].iloc[-1],
                    best_val_accuracy=epochs["val_accuracy"].max(),
                    best_epoch=int(epochs["val_accuracy"].idxmax()) + 1,
                    test_loss=test[0],
                    test_accuracy=test[1],
                    train_time=train_time,
                    samples_per_s=self.global_step * spec.batch_size / train_time,
                    diverged=self.diverged,
                    stopped_early=self.stopped_early,
                    device=str(self.device),
                    processes=self.world,
                )
            ]
        )
        state = {name: tensor.detach().cpu().clone() for name, tensor in self.network.state_dict().items()}
        return TrainResult(
            pd.DataFrame(self.step_rows), epochs, summary, state, pd.DataFrame(self.evaluation_rows)
        )


@torch.no_grad()
def evaluate(
    network, split, device, dtype=torch.float32, autocast=nullcontext, memory_format=torch.contiguous_format
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `network` on an (images, labels) split."""
    was_training = network.training
    network.eval()
    images, labels = split
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(0, len(labels), EVAL_BATCH):
        inputs = images[start : start + EVAL_BATCH].to(device, dtype).contiguous(memory_format=memory_format)
        targets = labels[start : start + EVAL_BATCH].to(device)
        with autocast():
            logits = network(inputs)
        total_loss += F.cross_entropy(_full_precision(logits), targets, reduction="sum").double()
        correct += (logits.argmax(1) == targets).sum()
    network.train(was_training)
    return total_loss.item() / len(labels), correct.item() / len(labels)


# --- helpers ----------------------------------------------------------------------------------


def _full_precision(logits: torch.Tensor) -> torch.Tensor:
    """bf16 logits from autocast are scored in float32; float32/float64 stay as they are."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def _as_float(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


def epoch_progress(spec: TrainSpec, epoch: int, step: int, steps_per_epoch: int, row=None) -> Progress:
    """The progress of a training run at `step` (1-based) of `epoch`; with the epoch's row once done."""
    done = (epoch - 1) * steps_per_epoch + step
    return Progress(spec.optimizer.name, done, spec.epochs * steps_per_epoch, f"epoch {epoch}", row)
