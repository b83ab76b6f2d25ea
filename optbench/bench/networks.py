"""The benchmark's network tasks: a small network trained on a real data set, all trials of one
optimizer as one program (`runners.batched_training.train_batched`), scored on the validation split.

A trial's steps to target are the optimizer steps at the first evaluation whose validation metric
meets the task's `Target` (metric, value, direction); the split is scored `evaluations` times, evenly
spaced over the budget (every steps // evaluations steps, and after the last). A trial's seed fixes
its initial weights and the order of its batches, as in a lone `optbench train` run with that seed.

Stepping: element-wise optimizers step every trial's stacked parameters at once with per-trial
hyperparameters; those that reduce across a tensor or a group (LAMB, Muon, SOAP, Prodigy, Adafactor),
torch.optim's classes and outside classes step one trial at a time over views of its own slices
(`batched_training.batched_mode`; the row's `mode` column says which). L-BFGS is refused by
the batched trainer and recorded as failed.

A task whose data is absent (MNIST-1D without the `mnist1d` package, Fashion-MNIST without Debian's
`dataset-fashion-mnist` files) is skipped with a note (`unavailable`), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from ..data import DEFAULT_DIRS, Dataset, load, load_mnist1d
from ..errors import OptbenchError
from ..tasks.problem import Target

DATA = ("digits", "mnist1d", "fashion-mnist", "shakespeare")  # shakespeare: `bench.language_model`


@dataclass(frozen=True)
class NetworkTask:
    """One network task: `data` (one of DATA), `model` (an `optbench.models` name), `steps` (the
    budget, optimizer steps per trial), `batch_size`, `evaluations` (validation passes per trial),
    the target (`metric` 'val_accuracy' or 'val_loss', its `target` value and `direction`) and the
    `reason` for these numbers. Data 'shakespeare' is the language model (`bench.language_model`,
    model 'transformer-tiny', metric val_loss in nats per character)."""

    name: str
    data: str
    model: str
    steps: int
    batch_size: int
    evaluations: int
    metric: str
    target: float
    direction: str
    reason: str
    kind: str = "network"

    def __post_init__(self):
        if self.data not in DATA:
            raise OptbenchError(f"task '{self.name}': unknown data '{self.data}' (valid: {', '.join(DATA)})")
        for what, value in (("budget", self.steps), ("batch size", self.batch_size)):
            if not (isinstance(value, int) and value >= 1):
                raise OptbenchError(f"task '{self.name}': the {what} must be at least 1, got {value}")
        if not (isinstance(self.evaluations, int) and 1 <= self.evaluations <= self.steps):
            raise OptbenchError(
                f"task '{self.name}': evaluations must be between 1 and the budget {self.steps}, "
                f"got {self.evaluations}"
            )
        if self.metric not in ("val_accuracy", "val_loss"):
            raise OptbenchError(
                f"task '{self.name}': the metric is val_accuracy or val_loss, got {self.metric}"
            )
        Target(self.metric, self.target, self.direction)  # checks the direction

    @property
    def target_rule(self) -> Target:
        return Target(self.metric, self.target, self.direction)

    @property
    def evaluate_every(self) -> int:
        return self.steps // self.evaluations

    def unavailable(self) -> str | None:
        """Why this task cannot run here (a note for the results), or None when its data is present."""
        if self.data == "mnist1d":
            import importlib.util

            if importlib.util.find_spec("mnist1d") is None:
                return "skipped: the mnist1d package is not installed (pip install mnist1d)"
        if self.data == "shakespeare":
            from .language_model import unavailable

            return unavailable()
        if self.data == "fashion-mnist":
            locate, how = DEFAULT_DIRS["fashion-mnist"]
            if locate() is None:
                return f"skipped: no Fashion-MNIST data ({how})"
        return None

    def prepare(self) -> None:
        """Loads the data now, so a broken task fails before any write."""
        if self.data == "shakespeare":
            from ..tasks.language_model import load_text

            load_text(None)
        else:
            dataset(self.data)

    def model_cost(self) -> tuple[int, int]:
        """(parameters, floating-point operations of one training step of one trial) of the task's
        model, for the benchmark's cost estimate (`bench.cost`): the forward pass of one sample (a
        language model's window) counted by torch's FlopCounterMode, times 3 for the backward pass,
        times the batch. Built under a forked random generator, so estimating draws nothing the seeded
        runs would."""
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        with torch.random.fork_rng(devices=[]), torch.no_grad():
            if self.data == "shakespeare":
                from ..tasks.language_model import LanguageModelOptions, load_text
                from ..transformer import Transformer

                options = LanguageModelOptions.tiny()
                model = Transformer(options.model_config(len(load_text(None).vocabulary)))
                sample = torch.zeros(1, options.context, dtype=torch.long)
            else:
                from ..models import build_model

                data = dataset(self.data)
                model = build_model(self.model, data.input_shape, data.num_classes)
                sample = torch.zeros(1, *data.input_shape)
            with FlopCounterMode(display=False) as counter:
                model(sample)
        parameters = sum(p.numel() for p in model.parameters())
        return parameters, 3 * counter.get_total_flops() * self.batch_size

    def one_step(self) -> NetworkTask:
        """The same task with a budget of one step (scored once): the timing's warm-up run."""
        return replace(self, steps=1, evaluations=1)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@cache
def dataset(data: str) -> Dataset:
    """The data set of `data` (one of DATA), loaded once per process."""
    return load_mnist1d() if data == "mnist1d" else load(data)


def run_network(task: NetworkTask, optimizer, rows, axes, make_scheduler) -> dict:
    """Every row of `rows` (columns `seed` and the searched `axes`) trained as one program.

    Returns numpy arrays, one value per row: steps (to target; NaN: not reached), final_metric (the
    target's metric at the last evaluation), diverged (bool), and mode ('batched' or 'per_trial').
    """
    from ..runners.batched_training import train_batched

    if task.data == "shakespeare":
        from .language_model import run_language_model

        return run_language_model(task, optimizer, rows, axes, make_scheduler)
    data = dataset(task.data)
    run = train_batched(
        optimizer,
        data,
        rows["seed"].tolist(),
        steps=task.steps,
        batch_size=task.batch_size,
        model=task.model,
        hparams={a: rows[a].to_numpy(dtype=float).tolist() for a in axes},
        defaults={},
        make_scheduler=make_scheduler,
        validation=data.val,
        evaluate_every=task.evaluate_every,
    )
    metric = (run.val_accuracy if task.metric == "val_accuracy" else run.val_loss).numpy()
    evaluated = np.asarray(run.evaluation_steps, dtype=float)
    with np.errstate(invalid="ignore"):
        reached = metric >= task.target if task.direction == "max" else metric <= task.target
    first = reached.argmax(axis=0)
    steps = np.where(reached.any(axis=0), evaluated[first], np.nan)
    return {
        "steps": steps,
        "final_metric": metric[-1],
        "diverged": np.array([d is not None for d in run.diverged_at()]),
        "mode": run.mode,
    }
