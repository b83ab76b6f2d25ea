"""Many trainings of one small network as one program: a trial per (hyperparameters, seed).

Every trial's parameters are stacked along a leading trial dimension (`[trials, *shape]`, one leaf
tensor per parameter of the model). The forward pass is `torch.vmap` over
`torch.func.functional_call`, so one call computes every trial's logits on its own batch; the backward
pass of the sum of the trials' mean losses gives each trial exactly its own gradient (trial t's loss
depends on trial t's slice alone). vmap rather than hand-written batched layers: for the digits MLP
(192 trials, batch 64, float32, 2 CPU cores) both, and `vmap(grad(...))`, took the same time per step
within noise (163, 157 and 152 ms under a load average of 21: the step is bound by its matrix products),
and vmap serves any model without buffers (the MLP, LeNet) with one mechanism.

Stepping, with `mode` saying which was used:
- "batched": ONE optbench optimizer steps the stacked tensors, with per-trial hyperparameters as
  tensors shaped `[trials, 1, ..., 1]` to broadcast against each parameter's rank (one param group per
  parameter, since a group's tensor must broadcast against all of its parameters). Exact for
  element-wise algorithms (the registry's `elementwise`, and only hyperparameters in its
  `tensor_hparams` as per-trial axes); the step counter t is shared, as all trials step together.
- "per_trial": an algorithm that reduces across a tensor or a group (LAMB, Muon, SOAP, Prodigy,
  Adafactor: trust ratios, orthogonalisation, factored moments, a global d), torch.optim's classes and
  classes from outside optbench get one optimizer per trial over views of that trial's slices, stepped
  one trial at a time with number hyperparameters: no reduction ever sees two trials. L-BFGS, which must
  re-evaluate the loss inside its step, is refused, as `train` refuses it.
Gradient clipping (`clip_grad_norm`) rescales each trial's gradient by its own norm over all its
parameters (torch.nn.utils.clip_grad_norm_'s rule: coefficient max_norm / (norm + 1e-6), at most 1).

Each trial sees the batches a lone `optbench train` run with its seed sees: weights from
`torch.manual_seed(seed)` then `build_model`, and per epoch `torch.randperm(n)` from a generator seeded
with `seed`, batch i being positions [i B, (i + 1) B) (the last incomplete batch dropped). A schedule
(`make_scheduler`, any torch.optim.lr_scheduler factory) is stepped after every optimizer step, per
trial (`PerTrialSchedule` in batched mode).

With a `validation` split and `evaluate_every` k, every trial is scored after steps k, 2k, ... and after
the last step on the whole split (mean cross-entropy and accuracy, as `tasks.classification.evaluate_split`
scores a lone model: the same models carry no dropout or batch norm, so train and eval mode agree).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..data import Dataset
from ..errors import OptbenchError
from ..models import build_model
from ..optimizers import PerTrialSchedule
from ..specs import OptimizerSpec
from .divergence import first_divergence
from .surface import set_hyperparameters, with_beta_axes

CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s guard in max_norm / (norm + eps)
EVAL_BATCH = 1024  # validation rows per batched forward pass (bounds the [trials, rows, classes] logits)


@dataclass
class BatchedTraining:
    """What `train_batched` returns.

    losses: float64 `[steps, trials]`, each trial's training loss on its batch at the point each step
        started from (NaN/inf where a trial diverged: a result, never an error).
    parameters: name -> the final stacked parameters `[trials, *shape]` (on the CPU).
    mode: "batched" (one optimizer over stacked tensors) or "per_trial" (one optimizer per trial).
    seeds, hparams: each trial's seed and per-trial hyperparameter values (name -> list).
    evaluation_steps: the steps after which the validation split was scored (empty without one).
    val_loss, val_accuracy: float64 `[len(evaluation_steps), trials]`, each trial's mean cross-entropy
        (nats) and accuracy (fraction) on the validation split after those steps.
    """

    losses: torch.Tensor
    parameters: dict
    mode: str
    seeds: list
    hparams: dict = field(default_factory=dict)
    evaluation_steps: list = field(default_factory=list)
    val_loss: torch.Tensor | None = None
    val_accuracy: torch.Tensor | None = None

    def diverged_at(self) -> list:
        """Per trial, the first step whose loss counts as diverged (`runners.divergence`), or None."""
        losses = self.losses.numpy()
        return [first_divergence(losses[:, t]) for t in range(losses.shape[1])]

    def table(self) -> pd.DataFrame:
        """One row per (trial, step): trial, seed, the per-trial hyperparameters, step (0-based), loss."""
        steps, trials = self.losses.shape
        columns = {
            "trial": np.repeat(np.arange(trials), steps),
            "seed": np.repeat(np.asarray(self.seeds), steps),
            **{
                name: np.repeat(np.asarray(values, dtype=float), steps)
                for name, values in self.hparams.items()
            },
            "step": np.tile(np.arange(steps), trials),
            "loss": self.losses.T.reshape(-1).numpy(),
        }
        return pd.DataFrame(columns)


def batched_mode(spec: OptimizerSpec, hparams: dict | None = None) -> str:
    """`batched` when one optimizer may step every trial's stacked tensors exactly, else `per_trial`."""
    allowed = with_beta_axes(spec.algorithm.tensor_hparams)
    if spec.use_torch or not spec.algorithm.elementwise or not set(hparams or {}) <= allowed:
        return "per_trial"
    return "batched"


def train_batched(
    spec: OptimizerSpec,
    dataset: Dataset,
    seeds: Sequence[int],
    *,
    steps: int,
    batch_size: int,
    model: str = "mlp",
    hparams: dict | None = None,
    defaults: dict | None = None,
    make_scheduler: Callable | None = None,
    clip_grad_norm: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    evaluate_every: int | None = None,
) -> BatchedTraining:
    """Train one trial per entry of `seeds` together; returns every trial's losses and final parameters.

    seeds: one seed per trial (trials sharing a seed share initial weights and batches).
    hparams: name -> one value per trial (`beta1`/`beta2` address `betas`), over `defaults` and the spec.
    steps: optimizer steps (epochs follow from the training split's size and batch_size).
    make_scheduler: builds a torch scheduler for one optimizer, stepped after every step of every trial.
    validation, evaluate_every: an (inputs `[N, ...]`, labels `[N]`) split scored every `evaluate_every`
    steps and after the last (see the module docstring); both or neither.
    Raises OptbenchError for no trials, steps < 0, batch_size outside [1, training samples], a list of
    hyperparameter values of the wrong length, a clipping norm <= 0, evaluate_every < 1 or without a
    split, L-BFGS, or a model with buffers.
    """
    seeds = [int(s) for s in seeds]
    trials = len(seeds)
    hparams = {name: [float(v) for v in values] for name, values in (hparams or {}).items()}
    _check(spec, dataset, trials, steps, batch_size, hparams, clip_grad_norm)
    if (validation is None) != (evaluate_every is None):
        raise OptbenchError("batched training scores a validation split every k steps: give both or neither")
    if evaluate_every is not None and not (isinstance(evaluate_every, int) and evaluate_every >= 1):
        raise OptbenchError(f"evaluate_every must be a whole number >= 1, got {evaluate_every}")
    x_train, y_train = dataset.train
    x_train, y_train = x_train.to(device, dtype), y_train.to(device)

    networks = []
    for seed in seeds:
        torch.manual_seed(seed)
        networks.append(build_model(model, dataset.input_shape, dataset.num_classes).to(device, dtype))
    template = networks[0]
    if any(True for _ in template.buffers()):
        raise OptbenchError(
            f"batched training needs a model without buffers (batch norm); '{model}' has some"
        )
    names = [name for name, _ in template.named_parameters()]
    stacked = {
        name: _stacked([dict(net.named_parameters())[name].detach() for net in networks]) for name in names
    }

    mode = batched_mode(spec, hparams)
    stepper = (_BatchedStepper if mode == "batched" else _PerTrialStepper)(
        spec, list(stacked.values()), hparams, defaults or {}, make_scheduler
    )

    def trial_loss(params, inputs, targets):
        return F.cross_entropy(functional_call(template, params, (inputs,)), targets)

    losses_of_trials = torch.vmap(trial_loss)
    evaluation_steps = [] if evaluate_every is None else _evaluation_steps(steps, evaluate_every)
    scores = []
    orders = {seed: torch.Generator().manual_seed(seed) for seed in sorted(set(seeds))}
    per_epoch = len(y_train) // batch_size
    losses = torch.empty(steps, trials, dtype=torch.float64)
    for t in range(steps):
        i = t % per_epoch
        if i == 0:
            permutations = {
                seed: torch.randperm(len(y_train), generator=g).to(device) for seed, g in orders.items()
            }
        batches = torch.stack([permutations[seed][i * batch_size : (i + 1) * batch_size] for seed in seeds])
        for p in stacked.values():
            p.grad = None
        loss = losses_of_trials(stacked, x_train[batches], y_train[batches])
        loss.sum().backward()
        if clip_grad_norm is not None:
            _clip_per_trial(list(stacked.values()), clip_grad_norm)
        stepper.step()
        losses[t] = loss.detach().double().cpu()
        if evaluation_steps and t + 1 == evaluation_steps[len(scores)]:
            scores.append(_score(template, stacked, validation, device, dtype))
    return BatchedTraining(
        losses=losses,
        parameters={name: p.detach().cpu().contiguous() for name, p in stacked.items()},
        mode=mode,
        seeds=seeds,
        hparams=hparams,
        evaluation_steps=evaluation_steps,
        val_loss=torch.stack([s[0] for s in scores]) if scores else None,
        val_accuracy=torch.stack([s[1] for s in scores]) if scores else None,
    )


def _stacked(tensors: list) -> torch.Tensor:
    """The trials' copies of one parameter as one leaf `[trials, *shape]`. A matrix (a linear layer's
    weight W, `[out, in]`) is stored with each trial's Wᵀ contiguous: the vmapped linear layer reads Wᵀ,
    and its backward pass makes the weight's gradient in that layout, which autograd then keeps as
    `.grad` instead of copying it into W's (the digits MLP's forward and backward pass of 192 trials,
    1 thread: 31 ms of CPU time against 41 ms row-major). The values are the same either way."""
    stacked = torch.stack(tensors)
    if stacked.dim() == 3:
        stacked = stacked.transpose(1, 2).contiguous().transpose(1, 2)
    return stacked.requires_grad_()


def _evaluation_steps(steps: int, every: int) -> list:
    """k, 2k, ... up to `steps`, and `steps` itself."""
    return sorted(set(range(every, steps + 1, every)) | ({steps} if steps else set()))


@torch.no_grad()
def _score(template, stacked, split, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Each trial's (mean cross-entropy, accuracy) on the whole split, float64 `[trials]` each."""
    inputs, labels = split
    params = {name: p.detach() for name, p in stacked.items()}
    trials = next(iter(params.values())).shape[0]

    def logits_of(trial_params, x):
        return functional_call(template, trial_params, (x,))

    logits_of_trials = torch.vmap(logits_of, in_dims=(0, None))
    total = torch.zeros(trials, dtype=torch.float64, device=device)
    correct = torch.zeros(trials, dtype=torch.int64, device=device)
    for start in range(0, len(labels), EVAL_BATCH):
        x = inputs[start : start + EVAL_BATCH].to(device, dtype)
        y = labels[start : start + EVAL_BATCH].to(device)
        logits = logits_of_trials(params, x)  # [trials, rows, classes]
        total += (
            F.cross_entropy(logits.transpose(1, 2), y.expand(trials, -1), reduction="none").double().sum(1)
        )
        correct += (logits.argmax(2) == y).sum(1)
    return (total / len(labels)).cpu(), (correct.double() / len(labels)).cpu()


def _check(spec, dataset, trials, steps, batch_size, hparams, clip_grad_norm) -> None:
    if trials < 1:
        raise OptbenchError("batched training needs at least one trial (one seed per trial)")
    if steps < 0:
        raise OptbenchError(f"steps must be >= 0, got {steps}")
    n_train = len(dataset.train[1])
    if not 1 <= batch_size <= n_train:
        raise OptbenchError(
            f"batch size must be between 1 and {n_train} (the training samples), got {batch_size}"
        )
    for name, values in hparams.items():
        if len(values) != trials:
            raise OptbenchError(f"hyperparameter '{name}' has {len(values)} values for {trials} trials")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise OptbenchError(f"gradient clipping norm must be > 0, got {clip_grad_norm}")
    if spec.family == "lbfgs":
        raise OptbenchError(
            "lbfgs re-evaluates the loss inside its step, which batched training does not do; "
            "pick another optimizer"
        )


def _clip_per_trial(params: list, max_norm: float) -> None:
    """Each trial's gradient, over all its parameters, rescaled as clip_grad_norm_ would rescale it."""
    squares = sum(p.grad.reshape(p.shape[0], -1).double().square().sum(1) for p in params)
    coefficient = torch.clamp(max_norm / (squares.sqrt() + CLIP_EPS), max=1.0)
    for p in params:
        p.grad.mul_(coefficient.to(p.dtype).reshape(-1, *[1] * (p.dim() - 1)))


def _per_trial_tensor(values: list, rank: int, like: torch.Tensor) -> torch.Tensor:
    """Per-trial values as a float64 `[trials, 1, ..., 1]` tensor that broadcasts against a parameter of `rank`
    (kept exact in the param group; the update reads it in the parameters' `base.update_dtype`)."""
    return torch.tensor(values, dtype=torch.float64, device=like.device).reshape(-1, *[1] * (rank - 1))


def _keywords(spec, defaults, values: dict) -> dict:
    """Optimizer keyword arguments for per-trial values; beta1/beta2 replace one entry of the resolved betas."""
    return set_hyperparameters({}, values, betas=spec.resolved(defaults).get("betas", (0.9, 0.999)))


class _BatchedStepper:
    """One optimizer over the stacked tensors, one param group per parameter (per-rank hyperparameters)."""

    def __init__(self, spec, stacked, hparams, defaults, make_scheduler):
        groups = [
            {
                "params": [p],
                **_keywords(
                    spec, defaults, {n: _per_trial_tensor(v, p.dim(), p) for n, v in hparams.items()}
                ),
            }
            for p in stacked
        ]
        self.optimizer = spec.build(groups, defaults)
        self.schedule = PerTrialSchedule(self.optimizer, make_scheduler) if make_scheduler else None

    def step(self) -> None:
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()


class _PerTrialStepper:
    """One optimizer per trial over views of its slices, stepped one trial at a time."""

    def __init__(self, spec, stacked, hparams, defaults, make_scheduler):
        self.stacked = stacked
        trials = stacked[0].shape[0]
        # views share the stacked storage, so an optimizer's in-place step moves its trial's slice
        self.views = [[p.detach()[t] for p in stacked] for t in range(trials)]
        self.optimizers = [
            spec.build(views, defaults, **_keywords(spec, defaults, {n: v[t] for n, v in hparams.items()}))
            for t, views in enumerate(self.views)
        ]
        self.schedules = [make_scheduler(o) for o in self.optimizers] if make_scheduler else []

    def step(self) -> None:
        for t, (views, optimizer) in enumerate(zip(self.views, self.optimizers, strict=True)):
            for view, p in zip(views, self.stacked, strict=True):
                view.grad = p.grad[t]
            optimizer.step()
        for schedule in self.schedules:
            schedule.step()
