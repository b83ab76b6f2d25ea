"""Train one model with one optimizer on a real data set, and return tidy tables.

    result = train(TrainSpec(optimizer="sgd:lr=0.1,momentum=0.9", task="digits", model="lenet"))
    result.steps    # one row per optimizer step: loss, lr
    result.epochs   # one row per epoch: train/val loss and accuracy, time, samples/s, diverged
    result.evaluations  # one row per validation evaluation: after every epoch, and every
                        # `eval_every_steps` steps when that is given
    result.summary  # one row: best and final accuracy, test accuracy where the data set has a test split

The whole data set lives on the device as tensors and is batched by index (no DataLoader), so
the loop (`training_loop.TrainingRun`) is the hand-written PyTorch loop plus bookkeeping that never synchronises the device
more than once every `DIVERGENCE_CHECK_STEPS` steps. Inside a torch.distributed process group
(see `distributed.py`) the same function trains data-parallel: every process draws the same
shuffled order, takes its slice of each global batch, and DDP averages the gradients.

Conventions:
- the last incomplete batch of an epoch is dropped, so every step sees exactly `batch_size`
  samples, whatever the number of processes;
- schedules step once per epoch after the warm-up (their arguments count epochs); the warm-up
  ramps the lr linearly per step from lr/warmup_steps to lr;
- a loss past the blow-up limit (`runners.divergence`: non-finite, or 10^3 (first loss + 1)) stops the
  run, which is recorded as diverged (`diverged`) at that step, never raised;
- `eval_every_steps` adds validation evaluations inside epochs (a batch-size sweep needs them:
  steps-to-target between two epoch ends is otherwise a guess). They change no training number
  (evaluation draws no random numbers and updates no state), and their time is left out of
  `epoch_time` and `samples_per_s`;
- same spec and seed -> same numbers on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from ..data import Dataset
from ..errors import OptbenchError, did_you_mean
from ..models import build_model
from ..progress import Progress
from ..specs import OptimizerSpec, as_spec, left_to_the_run
from ..tasks import TRAINING, Task, TaskKind, get_task
from ..tasks.problem import TRAINED_KINDS
from ..tasks.registry import LANGUAGE_MODEL_OPTIONS
from .devices import device_for_rank, rank_and_world, resolve_device
from .recipes import build_optimizer, describe, recipe_for
from .schedules import build_scheduler
from .training_loop import TrainingRun, TrainResult

PER_STEP_SCHEDULE = ("warmup_steps", "decay", "min_lr_ratio")


@dataclass(frozen=True)
class TrainSpec:
    """Everything that decides a training run; hashable, and saved in a results folder's meta.json.

    `optimizer` may be given as text ('adam:lr=1e-3', 'torch:sgd', 'momentum'); it is parsed once,
    here, and kept as an `OptimizerSpec`.
    """

    optimizer: OptimizerSpec | str = "sgd"
    task: str = "digits"  # a task of optbench.tasks that trains a model (classification, language model)
    model: str = "lenet"  # optbench.models name; 'transformer' for a language-model task
    epochs: int = TRAINING["epochs"]
    batch_size: int = TRAINING["batch_size"]  # global: split evenly across processes
    schedule: str | None = None  # 'cosine', 'step:step_size=5,gamma=0.5', any lr_scheduler class
    warmup_epochs: int = 0
    early_stop: int | None = None  # stop after this many epochs without a better val accuracy
    device: str = "auto"  # 'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1'
    bf16: bool = False  # bfloat16 autocast for the forward pass
    compile: bool = False  # train through torch.compile(model) (evaluation stays eager)
    channels_last: bool = False
    fast: bool = False  # our optimizers' fast path (element-wise algorithms)
    dtype: str = "float32"  # 'float64' for exact comparisons
    seed: int = 0  # initial weights and batch order
    data_dir: str | None = None
    max_steps: int | None = None  # stop after this many steps
    eval_every_steps: int | None = None  # also evaluate every N steps (None: after epochs only)
    recipe: str | None = None  # parameter groups (`recipes`): 'muon', 'no-decay'; None: muon's for Muon
    # a language-model task's sizes (None: the task's; `tasks.registry.LANGUAGE_MODEL_OPTIONS`)
    context: int | None = None
    n_layer: int | None = None
    n_head: int | None = None
    n_embd: int | None = None
    # a per-step schedule of a step budget (language models): linear warm-up over `warmup_steps`,
    # then 'cosine' decay to `min_lr_ratio` · lr at `max_steps` (`schedules.warmup_cosine`)
    warmup_steps: int | None = None
    decay: str | None = None
    min_lr_ratio: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "optimizer", as_spec(self.optimizer))

    @property
    def resolved_task(self) -> Task:
        """The task `task` names; a task that builds no `TrainingProblem` is a user error, and so are
        language-model sizes on another task."""
        task = get_task(self.task)
        if task.kind not in TRAINED_KINDS:
            raise OptbenchError(
                f"task '{self.task}' trains no model (it is a {task.kind.value} task); train it with optbench.train"
            )
        given = [name for name in LANGUAGE_MODEL_OPTIONS if getattr(self, name) is not None]
        if given and task.kind is not TaskKind.LANGUAGE_MODEL:
            raise OptbenchError(
                f"--{given[0].replace('_', '-')} applies to language-model tasks only, not '{task.name}'"
            )
        if task.kind is TaskKind.LANGUAGE_MODEL and self.model != task.model:
            raise OptbenchError(f"task '{task.name}' trains a {task.model}, not model '{self.model}'")
        return task

    @property
    def resolved_recipe(self) -> str | None:
        """The parameter-group recipe the run uses: the one asked for, else the task's default."""
        return recipe_for(self.optimizer, self.recipe or self.resolved_task.default_recipe(self.optimizer))

    def resolved(self) -> dict:
        """Plain values, with the optimizer's hyperparameters as they will be used (metadata, keys)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in LANGUAGE_MODEL_OPTIONS + PER_STEP_SCHEDULE:  # recorded where set: other keys stay
            if values[name] is None:
                del values[name]
        if not values["compile"]:  # likewise: eager runs keep the keys they had before the option
            del values["compile"]
        origin = self.optimizer.origin
        defaults_for = self.resolved_task.default_hparams
        return {
            **values,
            "optimizer": self.optimizer.text,
            "optimizer_hparams": self.optimizer.resolved(defaults_for(self.optimizer)),
            **({"optimizer_origin": origin.as_dict()} if origin is not None else {}),
            "recipe": describe(self.resolved_recipe, defaults_for),
        }


def check(spec: TrainSpec, dataset: Dataset | None = None, world: int = 1):
    """Every user mistake in `spec` as an OptbenchError, before any training; returns the task's data
    (a `data.Dataset`, or a language model's `tasks.language_model.Text`).

    Callers that train several specs (several optimizers, a sweep) check them all first, so a typo
    in the last one does not surface after an hour of work. `train` alone needs no check: it
    raises the same errors while it sets up, before its first step.
    """
    task = spec.resolved_task
    dataset = dataset or task.load(spec.data_dir)
    _check_settings(spec, task.rows(dataset, spec), world)
    if task.kind is TaskKind.CLASSIFICATION:
        network = build_model(spec.model, dataset.input_shape, dataset.num_classes)
    else:
        network = task.problem_for(dataset, spec, "cpu", _dtype(spec)).model
    with left_to_the_run(spec.optimizer):
        probe = _optimizer(spec, task, network)
        build_scheduler(spec.schedule, probe, max(1, spec.epochs - spec.warmup_epochs))
    return dataset


def train(
    spec: TrainSpec,
    dataset: Dataset | None = None,
    progress: Callable[[Progress], None] | None = None,
    task: Task | None = None,
) -> TrainResult:
    """Train `spec.model` on `spec.task` with `spec.optimizer`; see the module docstring.

    dataset: the loaded `spec.task` (loaded here when None). progress: called after every step.
    task: the resolved `spec.task` (resolved here when None). Raises OptbenchError for a bad spec
    before the first step; divergence is recorded, not raised.
    """
    rank, world = rank_and_world()
    task = task or spec.resolved_task
    dataset = dataset or task.load(spec.data_dir)
    _check_settings(spec, task.rows(dataset, spec), world)
    device = device_for_rank(resolve_device(spec.device))
    problem = task.problem_for(dataset, spec, device, _dtype(spec))
    optimizer = _optimizer(spec, task, problem.model, planned_steps(spec, problem.n_train))
    scheduler = build_scheduler(spec.schedule, optimizer, max(1, spec.epochs - spec.warmup_epochs))
    run = TrainingRun(problem, optimizer, scheduler, spec, task.target, rank, world, progress)
    for epoch in range(1, spec.epochs + 1):
        if not run.epoch(epoch):
            break
    return run.result(task=getattr(dataset, "name", task.name), model=spec.model)


def _optimizer(spec: TrainSpec, task: Task, network, steps: int | None = None) -> torch.optim.Optimizer:
    """`spec.optimizer` over `network` as its recipe divides it, with the task's defaults under the spec's;
    on the fast path, told the run's `steps` (a run too short to repay compiling is not compiled)."""
    recipe = spec.resolved_recipe
    return build_optimizer(
        spec.optimizer, recipe, network, task.default_hparams, fast=spec.fast, expected_steps=steps
    )


def planned_steps(spec: TrainSpec, n_train: int) -> int:
    """The optimizer steps of the whole run: epochs x full batches per epoch, at most `max_steps`
    (early stopping may end it sooner)."""
    steps = spec.epochs * (n_train // spec.batch_size)
    return steps if spec.max_steps is None else min(steps, spec.max_steps)


def check_batch_size(batch_size: int, n_train: int, world: int = 1) -> int:
    """The per-process batch; the global batch must fit the training split and divide evenly."""
    if batch_size < 1:
        raise OptbenchError(f"batch size must be at least 1, got {batch_size}")
    if batch_size > n_train:
        raise OptbenchError(f"batch size {batch_size} is larger than the {n_train} training samples")
    if batch_size % world:
        raise OptbenchError(f"batch size {batch_size} does not split evenly across {world} processes")
    return batch_size // world


def _check_settings(spec: TrainSpec, n_train: int, world: int) -> None:
    """The spec's numbers and names, without building anything."""
    if spec.optimizer.family == "lbfgs":
        raise OptbenchError(
            "train does not run lbfgs: L-BFGS needs a deterministic full-batch closure and a "
            "line search, not mini-batches; compare it on a surface (optbench compare lbfgs)"
        )
    resolve_device(spec.device)
    _dtype(spec)
    check_batch_size(spec.batch_size, n_train, world)
    if spec.epochs < 1:
        raise OptbenchError(f"epochs must be at least 1, got {spec.epochs}")
    if spec.decay not in (None, "cosine"):
        raise OptbenchError(f"decay is 'cosine' or none, got {spec.decay!r}")
    if spec.decay is not None and (spec.max_steps is None or spec.schedule is not None):
        raise OptbenchError("a per-step decay needs max steps and no per-epoch --schedule")
    if spec.warmup_steps is not None and (spec.warmup_steps < 0 or spec.warmup_epochs):
        raise OptbenchError(
            f"warm-up steps must be >= 0 and not beside warm-up epochs, got {spec.warmup_steps}"
        )
    if spec.min_lr_ratio is not None and not 0 <= spec.min_lr_ratio <= 1:
        raise OptbenchError(f"min_lr_ratio must be in [0, 1], got {spec.min_lr_ratio}")
    if spec.warmup_epochs < 0 or (spec.early_stop is not None and spec.early_stop < 1):
        raise OptbenchError("warm-up epochs must be >= 0 and early-stop patience >= 1")
    if spec.warmup_epochs and spec.warmup_epochs >= spec.epochs:
        raise OptbenchError(
            f"warm-up of {spec.warmup_epochs} epoch(s) is not shorter than the {spec.epochs} epoch(s) of "
            "the run: the lr would never reach its value"
        )
    if spec.max_steps is not None and spec.max_steps < 1:
        raise OptbenchError(f"max steps must be at least 1, got {spec.max_steps}")
    if spec.eval_every_steps is not None and not (
        isinstance(spec.eval_every_steps, int) and spec.eval_every_steps >= 1
    ):
        raise OptbenchError(f"eval-every-steps must be a whole number >= 1, got {spec.eval_every_steps}")
    total_steps = planned_steps(spec, n_train)
    if spec.eval_every_steps is not None and spec.eval_every_steps > total_steps:
        raise OptbenchError(
            f"eval-every-steps {spec.eval_every_steps} is more than the {total_steps} steps of the run: "
            "it would never evaluate inside it"
        )


def _dtype(spec: TrainSpec) -> torch.dtype:
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if spec.dtype not in dtypes:
        raise did_you_mean("dtype", spec.dtype, dtypes)
    if spec.bf16 and spec.dtype != "float32":
        raise OptbenchError("bf16 autocast needs float32 weights (drop --bf16 or the float64 dtype)")
    return dtypes[spec.dtype]
