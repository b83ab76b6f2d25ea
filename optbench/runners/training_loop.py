"""The task-generic training loop of `training.train`: one run's steps and bookkeeping, epoch by epoch.

`TrainingRun` takes a built problem (`tasks.problem.TrainingProblem`: the model, its batches, loss and
evaluation), an optimizer, a schedule, a budget and the task's target; `epoch(k)` trains one epoch in
a seeded order, evaluates it and records its rows; `result()` gathers the tables. The conventions
(dropped last batch, warm-up, divergence, evaluations) are in `training`'s docstring.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
import torch

from ..progress import Progress
from ..tasks.problem import Target
from .devices import global_mean, global_sum, none_diverged, synchronize
from .divergence import divergence_limit, is_diverged
from .eval_mode import RECOMPUTE_BN_BATCHES, evaluation_weights
from .schedules import warmup_cosine

if TYPE_CHECKING:
    from .training import TrainSpec

DIVERGENCE_CHECK_STEPS = 25


@dataclass
class TrainResult:
    steps: pd.DataFrame
    epochs: pd.DataFrame
    summary: pd.DataFrame
    state_dict: dict = field(repr=False)  # final weights, on the CPU
    evaluations: pd.DataFrame = field(default_factory=pd.DataFrame)
    # ^ one row per validation evaluation: epoch, step (updates done), val_loss, val_accuracy


class TrainingRun:
    """One training run of any `TrainingProblem`; `epoch()` trains and evaluates one epoch.

    problem: the run's problem (`tasks.problem.TrainingProblem`: model on the device, batches, loss,
    evaluation); optimizer, scheduler: built over `problem.model`'s parameters (scheduler may be None);
    budget: a `training.TrainSpec` (epochs, batch_size, warmup_epochs, early_stop, max_steps,
    eval_every_steps, bf16, optimizer label); target: the task's `Target`, whose metric and direction
    decide early stopping and the best epoch; labels: the columns every row starts with.
    """

    def __init__(
        self,
        problem,
        optimizer: torch.optim.Optimizer,
        scheduler,
        budget: TrainSpec,
        target: Target,
        rank: int = 0,
        world: int = 1,
        progress=None,
    ):
        self.problem, self.optimizer, self.scheduler = problem, optimizer, scheduler
        self.spec, self.target, self.rank, self.world, self.progress = budget, target, rank, world, progress
        self.network = problem.model
        self.device = next(self.network.parameters()).device
        self.local_batch = budget.batch_size // world
        self.steps_per_epoch = problem.n_train // budget.batch_size
        self.warmup_steps = budget.warmup_steps or budget.warmup_epochs * self.steps_per_epoch
        self.model = self.network
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.network, device_ids=device_ids)
        if budget.compile:  # training forwards only: the evaluations call the eager network
            self.model = torch.compile(self.model)
        self.autocast = (
            (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if budget.bf16 else nullcontext
        )
        self.order_generator = torch.Generator().manual_seed(budget.seed)
        self.labels = dict(optimizer=budget.optimizer.name, family=budget.optimizer.family)
        self.step_rows, self.epoch_rows, self.evaluation_rows = [], [], []
        self.global_step, self.diverged, self.stopped_early = 0, False, False
        self.divergence_limit = self.start_loss = None  # from the first step's loss (runners.divergence)
        self.best, self.best_epoch = target.worst, 0
        self.started = time.perf_counter()

    def epoch(self, epoch: int) -> bool:
        """Train one epoch, evaluate, record; False when the run stops here."""
        spec, problem = self.spec, self.problem
        self.model.train()
        synchronize(self.device)
        epoch_start = time.perf_counter()
        order = torch.randperm(problem.n_train, generator=self.order_generator).to(self.device)
        losses, lrs, sums = [], [], {}
        eval_time = 0.0  # spent on evaluations inside the epoch: not training time
        for i in range(self.steps_per_epoch):
            start = i * spec.batch_size + self.rank * self.local_batch
            inputs, targets = problem.batch(order[start : start + self.local_batch])
            loss, output, lr = self._step(inputs, targets)
            losses.append(loss)
            if self.divergence_limit is None:  # a tensor on the device: no sync here
                self.divergence_limit = divergence_limit(loss.detach().double())
            lrs.append(lr)
            for name, value in problem.batch_metrics(output, targets).items():
                sums[name] = sums[name] + value if name in sums else value
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
        row = self._record_epoch(epoch, losses, lrs, sums, epoch_time)
        if self.progress:
            self.progress(epoch_progress(spec, epoch, len(losses), self.steps_per_epoch, row))
        return self._continue_after(epoch, row)

    def _step(self, inputs, targets):
        """One optimizer step with the warm-up's lr; returns (loss, output) at the step's starting
        point and the lr the step used."""
        optimizer = self.optimizer
        scheduled = [group["lr"] for group in optimizer.param_groups]
        if self.spec.decay == "cosine":  # the per-step schedule of a step budget
            ratio = 0.0 if self.spec.min_lr_ratio is None else self.spec.min_lr_ratio
            factor = warmup_cosine(self.global_step, self.warmup_steps, self.spec.max_steps, ratio)
            for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
                group["lr"] = lr * factor
        elif self.global_step < self.warmup_steps:  # linear warm-up on top of the schedule's lr
            for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
                group["lr"] = lr * (self.global_step + 1) / self.warmup_steps
        used_lr = _as_float(optimizer.param_groups[0]["lr"])
        # The gradient is taken here, not through a closure, since a user's optimizer need not call
        # one; L-BFGS, which must, is refused by `training.check`.
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            output = self.model(inputs)
        loss = self.problem.loss(output, targets)
        loss.backward()
        optimizer.step()
        for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr
        return loss.detach(), output.detach(), used_lr  # at the point the step started from

    def _evaluate(self, epoch: int) -> dict:
        """The problem's validation metrics now, at the optimizer's evaluation weights
        (`eval_mode.evaluation_weights`), recorded as a row."""
        with evaluation_weights(self.optimizer, self.network, self._statistics_batches()):
            metrics = self.problem.evaluate(self.network)
        self.evaluation_rows.append(dict(**self.labels, epoch=epoch, step=self.global_step, **metrics))
        return metrics

    def _statistics_batches(self):
        """The training batches, in the data's order, on which BatchNorm statistics are recomputed at an
        optimizer's evaluation weights; read only when needed."""
        size = self.spec.batch_size
        for i in range(min(RECOMPUTE_BN_BATCHES, self.steps_per_epoch)):
            inputs, _ = self.problem.batch(torch.arange(i * size, (i + 1) * size, device=self.device))
            yield inputs

    def _record_epoch(self, epoch, losses, lrs, sums, epoch_time) -> dict:
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
        train_metrics = {
            f"train_{name}": global_sum(total.double(), self.world).item() / seen
            for name, total in sums.items()
        }
        row = dict(
            **self.labels,
            epoch=epoch,
            train_loss=sum(step_losses[:keep]) / keep,
            **train_metrics,
            **self._evaluate(epoch),
            lr=lrs[-1],
            epoch_time=epoch_time,
            samples_per_s=seen / epoch_time if epoch_time > 0 else float("nan"),
            elapsed=time.perf_counter() - self.started,
            diverged=self.diverged,
        )
        self.epoch_rows.append(row)
        return row

    def _continue_after(self, epoch: int, row: dict) -> bool:
        """Stop on divergence, the step budget or early stopping (no better target metric, in the
        target's direction, for `early_stop` epochs); else step the schedule."""
        spec = self.spec
        if self.diverged or self.global_step == spec.max_steps:
            return False
        if self.target.better(row[self.target.metric], self.best):
            self.best, self.best_epoch = row[self.target.metric], epoch
        elif spec.early_stop is not None and epoch - self.best_epoch >= spec.early_stop:
            self.stopped_early = True
            return False
        if self.scheduler is not None and epoch > spec.warmup_epochs:  # the warm-up epochs are not scheduled
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(row["val_loss"])
            else:
                self.scheduler.step()
        return True

    def result(self, **columns) -> TrainResult:
        """The tables, with the test split scored (where the problem has one) and the weights saved at
        the optimizer's evaluation point (Schedule-Free's x, Lookahead's slow weights;
        `eval_mode.evaluation_weights`). `columns` (task, model) go into the summary after the labels."""
        spec, epochs = self.spec, pd.DataFrame(self.epoch_rows)
        val_names = [c for c in self.evaluation_rows[-1] if c.startswith("val_")]
        test = {name.replace("val_", "test_", 1): float("nan") for name in val_names}
        with evaluation_weights(self.optimizer, self.network, self._statistics_batches()):
            if getattr(self.problem, "has_test", False) and not self.diverged:
                test = self.problem.evaluate(self.network, "test")
            state = {
                name: tensor.detach().cpu().clone() for name, tensor in self.network.state_dict().items()
            }
        metric, direction = self.target.metric, self.target.direction
        best_row = epochs[metric].idxmax() if direction == "max" else epochs[metric].idxmin()
        train_time = epochs["epoch_time"].sum()
        summary = pd.DataFrame(
            [
                dict(
                    **self.labels,
                    **columns,
                    epochs_run=len(epochs),
                    steps=self.global_step,
                    **{f"final_{metric}": epochs[metric].iloc[-1]},
                    **{f"best_{metric}": epochs[metric].loc[best_row]},
                    best_epoch=int(best_row) + 1,
                    **test,
                    train_time=train_time,
                    samples_per_s=self.global_step * spec.batch_size / train_time,
                    **self._tokens_per_s(self.global_step * spec.batch_size / train_time),
                    diverged=self.diverged,
                    stopped_early=self.stopped_early,
                    device=str(self.device),
                    processes=self.world,
                )
            ]
        )
        return TrainResult(
            pd.DataFrame(self.step_rows), epochs, summary, state, pd.DataFrame(self.evaluation_rows)
        )

    def _tokens_per_s(self, samples_per_s: float) -> dict:
        """{"tokens_per_s"} for a problem whose rows hold `tokens_per_row` predictions (a language model)."""
        per_row = getattr(self.problem, "tokens_per_row", None)
        return {} if per_row is None else {"tokens_per_s": samples_per_s * per_row}


# --- helpers ----------------------------------------------------------------------------------


def _as_float(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


def epoch_progress(spec: TrainSpec, epoch: int, step: int, steps_per_epoch: int, row=None) -> Progress:
    """The progress of a training run at `step` (1-based) of `epoch`; with the epoch's row once done."""
    done = (epoch - 1) * steps_per_epoch + step
    total = spec.epochs * steps_per_epoch
    if spec.max_steps is not None:  # a step budget ends the run inside its last epoch
        total = min(total, spec.max_steps)
    return Progress(spec.optimizer.name, done, total, f"epoch {epoch}", row)
