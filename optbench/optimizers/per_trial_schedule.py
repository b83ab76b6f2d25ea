"""Any `torch.optim.lr_scheduler` schedule, applied to each trial of a batched optimizer.

A runner that batches trials gives one optimizer a `[trials, 1]` learning-rate tensor (one row per
trial, broadcast against `[trials, d]` parameters). torch's schedulers cannot drive such an lr:
they write a scalar into it (`param_group["lr"].fill_(...)`), and attaching one directly raises
`RuntimeError: fill_ only supports 0-dimension value tensor but got tensor with 1 dimensions`
when the scheduler is built (torch 2.13; a scheduler that wrote numbers would replace the tensor by
one value shared by all trials). `PerTrialSchedule` instead runs one ordinary scalar scheduler per
trial and writes each trial's value into its row of the tensor, in place, after every step:

    optimizer = SGD([theta], lr=torch.tensor([[0.1], [0.2], [0.4]]))        # 3 trials
    schedule = PerTrialSchedule(optimizer, lambda opt: StepLR(opt, step_size=10, gamma=0.5))
    for t in range(steps):
        ...; optimizer.step(); schedule.step()     # ReduceLROnPlateau: schedule.step(per_trial_losses)

A checkpoint holds `schedule.state_dict()` beside the optimizer's; to resume, build both as before,
then `optimizer.load_state_dict(...)` and `schedule.load_state_dict(...)`: the lrs go on as in an
uninterrupted run (tested for every scheduler class).

Each trial's lr sequence is then exactly what the same scheduler gives a scalar-lr run of that trial
(tests/test_per_trial_schedule.py checks this for every scheduler class in torch 2.13).
How: each trial gets a stand-in optimizer (`TrialView`) whose param groups hold that trial's
scalar hyperparameters; `make_scheduler` is called once per stand-in. Schedulers that also cycle
`momentum` or `betas` (CyclicLR, OneCycleLR with cycle_momentum) are written back the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# the group entries a scheduler may change; each is written back to every trial's row after a step
SCHEDULED_KEYS = ("lr", "momentum", "betas")


def trial_count(optimizer: torch.optim.Optimizer) -> int:
    """The number of trials: the leading dimension of the multi-element tensor hyperparameters
    (1 if there are none). Raises ValueError if two groups or hyperparameters disagree."""
    counts = set()
    for group in optimizer.param_groups:
        for key, value in group.items():
            for h in (value if isinstance(value, tuple) else (value,)):
                if key != "params" and isinstance(h, torch.Tensor) and h.numel() > 1:
                    counts.add(h.shape[0])
    if len(counts) > 1:
        raise ValueError(f"tensor hyperparameters disagree on the number of trials: {sorted(counts)}")
    return counts.pop() if counts else 1


def value_of_trial(value, trial: int):
    """A group entry's value for one trial: a `[trials, ...]` tensor's row as a number, tuples
    entry by entry, anything else (numbers, one-element tensors as numbers) unchanged."""
    if isinstance(value, tuple):
        return tuple(value_of_trial(v, trial) for v in value)
    if isinstance(value, torch.Tensor):
        return value.reshape(value.shape[0], -1)[trial, 0].item() if value.numel() > 1 else value.item()
    return value


class TrialView(torch.optim.Optimizer):
    """A stand-in optimizer holding one trial's scalar hyperparameters, for a scheduler to drive.
    Its step() changes nothing (it only lets schedulers see that the optimizer stepped)."""

    def __init__(self, optimizer: torch.optim.Optimizer, trial: int):
        groups = [{key: value_of_trial(value, trial) for key, value in group.items() if key != "params"}
                  for group in optimizer.param_groups]
        placeholder = [{"params": [torch.zeros(())], **group} for group in groups]
        # schedulers read defaults too (CyclicLR looks there for momentum or betas)
        super().__init__(placeholder, {key: value_of_trial(value, trial)
                                       for key, value in optimizer.defaults.items()})

    def step(self, closure=None):
        return None


class PerTrialSchedule:
    """One scalar scheduler per trial, writing its values into the trials' rows of the batched optimizer.

    optimizer: an optimizer whose hyperparameters may be `[trials, 1]` tensors (a number is shared).
    make_scheduler: builds a torch scheduler for an optimizer, e.g. `lambda opt: StepLR(opt, 10)`;
        called once per trial, on that trial's `TrialView`.
    On construction the schedulers' initial values (e.g. LinearLR's start factor) are written, as a
    scheduler does to its optimizer when it is built.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, make_scheduler: Callable):
        self.optimizer = optimizer
        self.views = [TrialView(optimizer, trial) for trial in range(trial_count(optimizer))]
        self.schedulers = [make_scheduler(view) for view in self.views]
        self._write_back()

    def step(self, metrics=None) -> None:
        """Advance every trial's scheduler by one step. metrics (ReduceLROnPlateau only): one value per
        trial (a sequence or a tensor of shape `[trials]`)."""
        for trial, (view, scheduler) in enumerate(zip(self.views, self.schedulers, strict=False)):
            view.step()
            if metrics is None:
                scheduler.step()
            else:
                scheduler.step(float(metrics[trial]))
        self._write_back()

    def state_dict(self) -> dict:
        """What a resumed run needs: each trial's scheduler state and its stand-in's param groups
        (the scheduled values and what schedulers keep there, e.g. `initial_lr`), as torch's
        `scheduler.state_dict()` and `optimizer.state_dict()`."""
        return {"trials": [{"scheduler": scheduler.state_dict(), "view": view.state_dict()}
                           for view, scheduler in zip(self.views, self.schedulers, strict=True)]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume from `state_dict()`: each trial's scheduler and stand-in restored, and their values
        written into the optimizer's rows, so the run goes on with the lrs of an uninterrupted one.
        Build the schedule as before (same `make_scheduler`, on an optimizer with as many trials),
        then load. Raises ValueError when the number of trials differs."""
        trials = state_dict["trials"]
        if len(trials) != len(self.views):
            raise ValueError(f"this schedule has {len(self.views)} trials, the state_dict has {len(trials)}")
        for view, scheduler, saved in zip(self.views, self.schedulers, trials, strict=True):
            view.load_state_dict(saved["view"])
            scheduler.load_state_dict(saved["scheduler"])
        self._write_back()

    def last_lr(self) -> list[torch.Tensor]:
        """The current lr of each param group, one value per trial (float64, shape `[trials]`)."""
        return [torch.tensor([view.param_groups[g]["lr"] for view in self.views], dtype=torch.float64)
                for g in range(len(self.optimizer.param_groups))]

    def _write_back(self) -> None:
        for g, group in enumerate(self.optimizer.param_groups):
            for key in SCHEDULED_KEYS:
                if key in group:
                    group[key] = written(group[key], [view.param_groups[g][key] for view in self.views])


def written(current, per_trial: list):
    """`current` holding the trials' values: a tensor is filled in place, row by row (so anything
    that holds it sees the change); a number stays a number while all trials agree, else becomes a
    `[trials, 1]` tensor; tuples entry by entry."""
    if isinstance(current, tuple):
        return tuple(written(c, [values[i] for values in per_trial]) for i, c in enumerate(current))
    if isinstance(current, torch.Tensor) and current.numel() == len(per_trial):
        with torch.no_grad():
            current.view(-1).copy_(torch.tensor(per_trial, dtype=torch.float64))
        return current
    if isinstance(current, torch.Tensor) and len(per_trial) == 1:
        with torch.no_grad():
            current.fill_(per_trial[0])
        return current
    if all(value == per_trial[0] for value in per_trial):
        return per_trial[0]
    return torch.tensor(per_trial, dtype=torch.float64).reshape(len(per_trial), 1)
