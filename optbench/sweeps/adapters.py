"""Task adapters: how one cell runs on each kind of task, through the runners' public functions.

- training (digits, mnist, fashion-mnist, cifar10; the language models shakespeare, shakespeare-tiny):
  `runners.training.train` for the cell's step budget, with `evaluations` validation passes evenly spaced;
- regression (stochastic linear regression): `runners.regression.linear_regression`, evaluated on
  the full data after every step;
- surface:NAME: `runners.surface.run_surface` on an analytic surface whose gradient gets
  N(0, noise²/B) per coordinate, so batch size B divides the noise variance by B.

Each adapter returns (rows, extra): one row per optimizer step with `step` (updates done), `epoch`,
`loss` (the mini-batch loss), `step_lr`, `eval_loss`, `eval_accuracy`; and per-cell measurements
(`diverged`, the gradient noise scale at the start and the end, ...). `run_cell` adds time and
throughput.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import pandas as pd
import torch

from ..budget import require_memory, surface_run_bytes
from ..errors import OptbenchError
from ..models import build_model
from ..runners.regression import linear_regression, make_linear_data
from ..runners.surface import run_surface
from ..runners.training import TrainSpec, check_batch_size, resolve_device, train
from ..specs import OptimizerSpec, left_to_the_run, parse_optimizer
from ..tasks import TaskKind, get_task
from ..tasks.problem import TRAINED_KINDS
from . import noise_scale
from .columns import NOISE_COLUMNS

REGRESSION_SAMPLES = 1000  # make_linear_data's default size

NOISE_METHOD = {
    TaskKind.CLASSIFICATION: "B_simple = tr(Σ)/|G|² from squared gradient norms of 16 random batches of 32 samples "
    "and of the whole training split (up to 2048 samples), at the initial and the final weights",
    TaskKind.REGRESSION: "B_simple = tr(Σ)/|G|² from squared gradient norms of 64 batches of 10 samples and of "
    "all samples, at the initial and the final weights",
    TaskKind.SURFACE: "B_simple = dim·noise²/|∇f|² exactly (the injected per-sample noise has covariance noise²·I), "
    "at the start and the end point",
    TaskKind.LANGUAGE_MODEL: "not measured for language models (NaN)",
}


def default_lr(spec, optimizer: OptimizerSpec) -> float:
    """The lr a sweep starts from when neither --base-lr nor the optimizer spec gives one: the task's
    (`Task.default_hparams`, the same lr `compare` and `train` use)."""
    return float(optimizer.resolved(spec.resolved_task.default_hparams(optimizer))["lr"])


def check_runnable(spec, cells) -> None:
    """What only the data or an optimizer instance can tell, before any cell runs or any file is
    written: every optimizer builds (lr=-0.1 is refused by torch), every batch fits the data, the
    data load and the model builds."""
    probe = torch.zeros(2, 2, requires_grad=True)  # a matrix: Muon refuses anything else
    for text in sorted({c.optimizer_spec for c in cells}):
        optimizer = parse_optimizer(text)
        with left_to_the_run(optimizer):
            optimizer.build([probe])
    batch_sizes = sorted({c.batch_size for c in cells})
    task = spec.resolved_task
    if task.kind is TaskKind.CLASSIFICATION and cells:
        dataset = _dataset(task.name, spec.data_dir)
        for b in batch_sizes:
            check_batch_size(b, len(dataset.train[1]))
        build_model(spec.model, dataset.input_shape, dataset.num_classes)
    elif task.kind is TaskKind.LANGUAGE_MODEL and cells:
        text = _dataset(task.name, spec.data_dir)
        probe_spec = TrainSpec(task=task.name, model=task.model, data_dir=spec.data_dir)
        for b in batch_sizes:
            check_batch_size(b, task.rows(text, probe_spec))
    elif task.kind is TaskKind.SURFACE and cells:
        surface = task.surface
        steps = max(c.steps or surface.steps for c in cells)
        # a surface cell records every step (steps to target is read to the step)
        require_memory(f"a surface cell of {steps:,} steps", surface_run_bytes(1, surface.dim, steps + 1))
    elif task.kind is TaskKind.REGRESSION:
        for b in batch_sizes:
            if b > REGRESSION_SAMPLES:
                raise OptbenchError(
                    f"batch size {b} is larger than the {REGRESSION_SAMPLES} regression samples"
                )


def run_cell(cell, data_dir: str | None = None) -> pd.DataFrame:
    """One cell's measurements: one row per step, cell-level measurements repeated on each row."""
    task = get_task(cell.task)
    if task.kind in TRAINED_KINDS:
        _dataset(task.name, data_dir)  # loading the data is not the cell's time
    started = time.perf_counter()
    rows, extra = ADAPTERS[task.kind](task, cell, data_dir)
    wall_time = time.perf_counter() - started
    rows["samples"] = rows["step"] * cell.batch_size
    rows["wall_time"] = wall_time
    for name, value in extra.items():
        rows[name] = value
    if "samples_per_s" not in extra:
        rows["samples_per_s"] = rows["samples"].max() / wall_time if wall_time > 0 else math.nan
    return rows


@lru_cache(maxsize=4)
def _dataset(task: str, data_dir: str | None):
    return get_task(task).load(data_dir)


def training_cell(task, cell, data_dir):
    dataset = _dataset(task.name, data_dir)
    model = cell.model or task.model
    n_train = task.rows(dataset, TrainSpec(task=cell.task, model=model, data_dir=data_dir))
    steps_per_epoch = n_train // cell.batch_size
    epochs, max_steps = cell.epochs, cell.steps
    if max_steps is not None:
        needed = math.ceil(max_steps / steps_per_epoch)
        epochs = needed if epochs is None else min(epochs, needed)
    budget = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    spec = TrainSpec(
        optimizer=cell.optimizer_spec,
        task=cell.task,
        model=model,
        epochs=epochs,
        batch_size=cell.batch_size,
        warmup_epochs=cell.warmup_epochs,
        device=cell.device,
        seed=cell.seed,
        data_dir=data_dir,
        max_steps=max_steps,
        eval_every_steps=max(1, round(budget / cell.evaluations)),
    )
    result = train(spec, dataset, task=task)
    steps = result.steps
    rows = pd.DataFrame(
        {
            "step": steps["step"].to_numpy() + 1,
            "epoch": steps["epoch"].to_numpy(),
            "loss": steps["loss"].to_numpy(),
            "step_lr": steps["lr"].to_numpy(),
        }
    )
    # an evaluation after k updates sits on step k; a diverged run's last one (after the first
    # non-finite loss, where the step table ends) on its last step
    evaluated = result.evaluations.assign(step=result.evaluations["step"].clip(upper=rows["step"].max()))
    evaluated = evaluated.drop_duplicates("step", keep="last").set_index("step")
    rows["eval_loss"] = rows["step"].map(evaluated["val_loss"]).astype(float)
    accuracy = evaluated["val_accuracy"] if "val_accuracy" in evaluated else evaluated["val_loss"] * math.nan
    rows["eval_accuracy"] = rows["step"].map(accuracy).astype(float)
    summary = result.summary.iloc[0]
    measured = {
        "diverged": bool(summary["diverged"]),
        "samples_per_s": float(summary["samples_per_s"]),
        "train_time": float(summary["train_time"]),
    }
    if task.kind is not TaskKind.CLASSIFICATION:  # NOISE_METHOD: measured for classifiers only
        return rows, {**measured, **dict.fromkeys(NOISE_COLUMNS, math.nan)}

    # gradient noise scale at the initial and the final weights, on a fixed subset of the training split
    device = resolve_device(cell.device)
    subset = torch.randperm(n_train, generator=torch.Generator().manual_seed(0))[:2048]
    images, labels = dataset.train[0][subset].to(device), dataset.train[1][subset].to(device)
    torch.manual_seed(cell.seed)  # the same initial weights `train` started from
    network = build_model(cell.model, dataset.input_shape, dataset.num_classes).to(device)
    start = noise_scale.for_classifier(network, images, labels, seed=cell.seed)
    end = math.nan
    if not summary["diverged"]:
        network.load_state_dict(result.state_dict)
        end = noise_scale.for_classifier(network, images, labels, seed=cell.seed).b_simple
    return rows, {**measured, **noise_columns(start, end)}


def regression_cell(task, cell, data_dir):
    data = make_linear_data(seed=cell.seed)
    n = len(data.y)
    steps_per_epoch = math.ceil(n / cell.batch_size)
    epochs = cell.epochs or task.budget.epochs
    if cell.steps is not None:
        epochs = math.ceil(cell.steps / steps_per_epoch)
    optimizer = parse_optimizer(cell.optimizer_spec)
    table = linear_regression(
        optimizer, data, cell.batch_size, epochs, cell.seed, defaults=task.default_hparams(optimizer)
    )
    if cell.steps is not None:
        table = table.iloc[: cell.steps]
    rows = pd.DataFrame(
        {
            "step": table["step"].to_numpy() + 1,
            "epoch": table["epoch"].to_numpy() + 1,
            "loss": table["loss"].to_numpy(),
            "step_lr": table["lr"].to_numpy(),
            "eval_loss": table["full_loss"].to_numpy(),
            "eval_accuracy": math.nan,
        }
    )
    design = torch.cat([data.X, torch.ones(n, 1, dtype=data.X.dtype)], dim=1)

    def measure(weights):
        residual_weights = torch.tensor(weights, dtype=torch.float64)

        def batch_gradient(batch, generator):
            chosen = torch.randperm(n, generator=generator)[:batch]
            residual = design[chosen] @ residual_weights - data.y[chosen]
            return 2 * (residual[:, None] * design[chosen]).mean(dim=0)

        return noise_scale.estimate(batch_gradient, 10, n, 64, cell.seed, population=n, big_repeats=1)

    diverged = bool(table["diverged"].any())
    last = table.iloc[-1]
    weights = [last[f"w{i}"] for i in range(data.X.shape[1])] + [last["b"]]
    start = measure([0.0] * (data.X.shape[1] + 1))
    return rows, {
        "diverged": diverged,
        **noise_columns(start, math.nan if diverged else measure(weights).b_simple),
    }


def surface_cell(task, cell, data_dir):
    surface = task.surface
    optimizer = parse_optimizer(cell.optimizer_spec)
    steps = cell.steps or surface.steps
    sigma = cell.noise / math.sqrt(cell.batch_size)  # batch B: noise variance / B
    run = run_surface(
        optimizer,
        surface,
        torch.tensor([surface.start], dtype=torch.float64),
        steps,
        noise=sigma,
        seed=cell.seed,
        defaults=task.default_hparams(optimizer),
        record_every=1,
    )
    path = run.trajectory
    moved = path[path["step"] >= 1]
    rows = pd.DataFrame(
        {
            "step": moved["step"].to_numpy(),
            "epoch": moved["step"].to_numpy(),
            "loss": moved["loss"].to_numpy(),
            "step_lr": cell.lr,
            "eval_loss": moved["loss"].to_numpy(),
            "eval_accuracy": math.nan,
        }
    )
    # products, not **: a float's ** raises OverflowError past 1e308 where a product is inf (diverged)
    trace = surface.dim * cell.noise * cell.noise

    def exact(grad_norm):
        return trace / (grad_norm * grad_norm) if grad_norm > 0 else math.inf

    diverged = bool(run.metrics["diverged"].iloc[0])
    grad_norm = float(path["grad_norm"].iloc[0])
    start = exact(grad_norm)
    start = noise_scale.NoiseScale(start, trace, grad_norm * grad_norm, start, start, 0.0, math.inf)
    end = math.nan if diverged else exact(float(path["grad_norm"].iloc[-1]))
    return rows, {"diverged": diverged, **noise_columns(start, end)}


def noise_columns(start: noise_scale.NoiseScale, end: float) -> dict:
    """The per-cell noise-scale columns (columns.NOISE_COLUMNS): B_simple at the start with its interval,
    standard error and degrees of freedom (what `noise_scale.pool` combines over seeds), and at the end."""
    return dict(
        zip(
            NOISE_COLUMNS,
            (start.b_simple, start.low, start.high, start.standard_error, start.dof, end),
            strict=True,
        )
    )


ADAPTERS = {
    TaskKind.CLASSIFICATION: training_cell,
    TaskKind.LANGUAGE_MODEL: training_cell,
    TaskKind.REGRESSION: regression_cell,
    TaskKind.SURFACE: surface_cell,
}
