"""What a task hands a runner: its kind, its target, its budget and (for trained models) its problem.

`TrainingProblem` is the shape one training run needs, whatever is trained: a seeded model on the
device, the training rows by index, the loss, per-batch metric sums and a validation evaluation.
`runners.training_loop.TrainingRun` steps any problem of this shape; a task builds it for a seed,
device, dtype and options (`tasks.registry`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: the CLI reads TaskKind before it loads torch
    import torch


class TaskKind(enum.Enum):
    SURFACE = "surface"
    REGRESSION = "regression"
    CLASSIFICATION = "classification"
    LANGUAGE_MODEL = "language-model"


TRAINED_KINDS = (TaskKind.CLASSIFICATION, TaskKind.LANGUAGE_MODEL)  # tasks whose runs build a TrainingProblem


@dataclass(frozen=True)
class Target:
    """What "reached" means for steps-to-target and early stopping: `metric` (a column of the
    evaluation table: "val_accuracy", "val_loss", "gap", ...) at or past `value` in `direction`."""

    metric: str
    value: float
    direction: str  # "max": reached when metric >= value; "min": reached when metric <= value

    def __post_init__(self):
        if self.direction not in ("max", "min"):
            raise ValueError(f"a target's direction is 'max' or 'min', got {self.direction!r}")

    def reached(self, metric_value: float) -> bool:
        """Whether `metric_value` meets the target (NaN never does)."""
        if self.direction == "max":
            return metric_value >= self.value
        return metric_value <= self.value

    def better(self, new: float, old: float) -> bool:
        """Whether `new` is strictly better than `old` in the target's direction (NaN never is)."""
        return new > old if self.direction == "max" else new < old

    @property
    def worst(self) -> float:
        """A value every finite metric value beats."""
        return -float("inf") if self.direction == "max" else float("inf")


@dataclass(frozen=True)
class Budget:
    """A task's default budget: epochs or steps per run, the batch size, and the evaluation cadence
    (`evaluations` evenly spaced validation passes per run; None: after every epoch, or every step
    for problems cheap enough to score at each one)."""

    epochs: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    evaluations: int | None = None


class TrainingProblem(Protocol):
    """One training run's problem, built by a task for (seed, device, dtype, options)."""

    model: torch.nn.Module  # built under torch.manual_seed(seed), already on device and dtype
    n_train: int  # rows of the training set; an epoch visits each once in a seeded order

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of these training rows, on the device (inputs in the model's dtype)."""

    def loss(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The batch's mean training loss, a scalar, computed in float32 or wider."""

    def batch_metrics(self, output: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch SUMS the loop accumulates over an epoch, e.g. {"accuracy": correct}; may be {}.
        The loop reports each as `train_NAME` = its epoch sum / the samples seen."""

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Validation metrics of the whole validation set in eval mode, no grad:
        classification {"val_loss", "val_accuracy"}; language model {"val_loss" (nats/char), "val_bpc"}."""
