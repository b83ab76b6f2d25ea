"""Per-trial scheduling: each trial of a `[trials, 1]` lr follows exactly its scalar-lr run's schedule."""

import inspect
import io

import pytest
import torch
from torch.optim import lr_scheduler as schedulers

import optbench.optimizers as ours
from optbench.optimizers.per_trial_schedule import PerTrialSchedule, trial_count

LRS = (0.1, 0.03, 0.5)
STEPS = 12

# One way to build each scheduler class of torch 2.13 (composites included).
SCHEDULERS = {
    "LambdaLR": lambda opt: schedulers.LambdaLR(opt, lr_lambda=lambda epoch: 0.9**epoch),
    "MultiplicativeLR": lambda opt: schedulers.MultiplicativeLR(opt, lr_lambda=lambda epoch: 0.95),
    "StepLR": lambda opt: schedulers.StepLR(opt, step_size=3, gamma=0.5),
    "MultiStepLR": lambda opt: schedulers.MultiStepLR(opt, milestones=[2, 5, 9], gamma=0.3),
    "ConstantLR": lambda opt: schedulers.ConstantLR(opt, factor=0.25, total_iters=4),
    "LinearLR": lambda opt: schedulers.LinearLR(opt, start_factor=0.2, total_iters=6),
    "ExponentialLR": lambda opt: schedulers.ExponentialLR(opt, gamma=0.8),
    "SequentialLR": lambda opt: schedulers.SequentialLR(
        opt,
        [schedulers.ConstantLR(opt, factor=0.5, total_iters=3), schedulers.ExponentialLR(opt, gamma=0.9)],
        milestones=[3],
    ),
    "CosineAnnealingLR": lambda opt: schedulers.CosineAnnealingLR(opt, T_max=5, eta_min=0.001),
    "ChainedScheduler": lambda opt: schedulers.ChainedScheduler(
        [schedulers.ConstantLR(opt, factor=0.5, total_iters=4), schedulers.ExponentialLR(opt, gamma=0.9)]
    ),
    "ReduceLROnPlateau": lambda opt: schedulers.ReduceLROnPlateau(opt, patience=1, factor=0.5),
    "CyclicLR": lambda opt: schedulers.CyclicLR(opt, base_lr=0.01, max_lr=0.2, step_size_up=3),
    "CosineAnnealingWarmRestarts": lambda opt: schedulers.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=2),
    "OneCycleLR": lambda opt: schedulers.OneCycleLR(opt, max_lr=0.3, total_steps=STEPS + 1),
    "PolynomialLR": lambda opt: schedulers.PolynomialLR(opt, total_iters=8, power=2.0),
}


def torch_scheduler_classes():
    return sorted(
        name
        for name, cls in vars(schedulers).items()
        if inspect.isclass(cls)
        and (issubclass(cls, schedulers.LRScheduler) or cls is schedulers.ReduceLROnPlateau)
        and name not in ("LRScheduler", "_LRScheduler")
    )


def test_every_torch_scheduler_class_is_covered():
    assert sorted(SCHEDULERS) == torch_scheduler_classes()


def plateau_metric(step, trial):
    """A loss that stalls from step 4 on, at a different level per trial (so ReduceLROnPlateau acts)."""
    return 1.0 / (1 + min(step, 4)) + 0.01 * trial


def scalar_run(make_scheduler, lr):
    theta = torch.zeros(2, requires_grad=True)
    optimizer = ours.SGD([theta], lr=lr, momentum=0.9)
    scheduler = make_scheduler(optimizer)
    lrs, momenta = [optimizer.param_groups[0]["lr"]], [optimizer.param_groups[0]["momentum"]]
    for step in range(STEPS):
        theta.grad = torch.ones(2)
        optimizer.step()
        if isinstance(scheduler, schedulers.ReduceLROnPlateau):
            scheduler.step(plateau_metric(step, LRS.index(lr)))
        else:
            scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
    return lrs, momenta


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_each_trial_follows_its_scalar_run(name):
    make_scheduler = SCHEDULERS[name]
    theta = torch.zeros(len(LRS), 2, requires_grad=True)
    lr = torch.tensor(LRS, dtype=torch.float64).reshape(-1, 1)
    optimizer = ours.SGD([theta], lr=lr, momentum=0.9)
    schedule = PerTrialSchedule(optimizer, make_scheduler)
    lrs, momenta = [schedule.last_lr()[0]], [optimizer.param_groups[0]["momentum"]]
    for step in range(STEPS):
        theta.grad = torch.ones_like(theta)
        optimizer.step()
        schedule.step(
            [plateau_metric(step, trial) for trial in range(len(LRS))]
            if name == "ReduceLROnPlateau"
            else None
        )
        assert optimizer.param_groups[0]["lr"] is lr  # written in place, row by row
        torch.testing.assert_close(lr.view(-1), schedule.last_lr()[0], rtol=0, atol=0)
        lrs.append(schedule.last_lr()[0])
        momenta.append(optimizer.param_groups[0]["momentum"])
    for trial, trial_lr in enumerate(LRS):
        expected_lrs, expected_momenta = scalar_run(make_scheduler, trial_lr)
        assert [float(step_lrs[trial]) for step_lrs in lrs] == expected_lrs
        # a scheduler that cycles momentum does so identically in every trial: it stays a number
        assert momenta == expected_momenta


def test_trials_are_counted_from_tensor_hyperparameters():
    theta = torch.zeros(4, 2)
    assert (
        trial_count(
            ours.Adam(
                [theta], lr=torch.full((4, 1), 0.1), betas=(torch.full((4, 1), 0.9), torch.tensor(0.99))
            )
        )
        == 4
    )
    assert trial_count(ours.Adam([theta], lr=0.1)) == 1
    two_sizes = ours.Adam(
        [
            {"params": [theta], "lr": torch.full((4, 1), 0.1)},
            {"params": [torch.zeros(2, 2)], "lr": torch.full((2, 1), 0.1)},
        ]
    )
    with pytest.raises(ValueError, match=r"disagree on the number of trials: \[2, 4\]"):
        trial_count(two_sizes)


def test_attaching_a_torch_scheduler_directly_to_a_per_trial_lr_fails_as_documented():
    optimizer = ours.SGD([torch.zeros(3, 2, requires_grad=True)], lr=torch.tensor([[0.1], [0.2], [0.3]]))
    with pytest.raises(RuntimeError, match="fill_ only supports 0-dimension value tensor"):
        schedulers.StepLR(optimizer, step_size=2)


def _per_trial_run(make_scheduler, name, steps, start=0, saved=None):
    """(lrs after each step, optimizer state_dict, schedule state_dict) of `steps` steps from `start`,
    resumed from `saved` (an optimizer and a schedule state_dict, through torch.save) when given."""
    theta = torch.zeros(len(LRS), 2, requires_grad=True)
    optimizer = ours.SGD([theta], lr=torch.tensor(LRS, dtype=torch.float64).reshape(-1, 1), momentum=0.9)
    schedule = PerTrialSchedule(optimizer, make_scheduler)
    if saved is not None:
        stream = io.BytesIO()
        torch.save(saved, stream)
        stream.seek(0)
        optimizer_state, schedule_state = torch.load(stream, weights_only=False)
        optimizer.load_state_dict(optimizer_state)
        schedule.load_state_dict(schedule_state)
    lrs = []
    for step in range(start, start + steps):
        theta.grad = torch.ones_like(theta)
        optimizer.step()
        schedule.step(
            [plateau_metric(step, trial) for trial in range(len(LRS))]
            if name == "ReduceLROnPlateau"
            else None
        )
        lrs.append((schedule.last_lr()[0].tolist(), optimizer.param_groups[0]["lr"].view(-1).tolist()))
    return lrs, optimizer.state_dict(), schedule.state_dict()


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_a_resumed_schedule_gives_the_uninterrupted_runs_lrs(name):
    make_scheduler = SCHEDULERS[name]
    first, optimizer_state, schedule_state = _per_trial_run(make_scheduler, name, 5)
    resumed, _, _ = _per_trial_run(make_scheduler, name, STEPS - 5, 5, (optimizer_state, schedule_state))
    for trial, trial_lr in enumerate(LRS):  # torch's scalar run of each trial, uninterrupted
        expected, _ = scalar_run(make_scheduler, trial_lr)
        assert [lrs[trial] for lrs, _ in first + resumed] == expected[1:]
        assert [written[trial] for _, written in first + resumed] == expected[1:]


def test_a_state_dict_with_another_number_of_trials_is_refused():
    theta = torch.zeros(2, 2, requires_grad=True)
    optimizer = ours.SGD([theta], lr=torch.tensor([[0.1], [0.2]]))
    schedule = PerTrialSchedule(optimizer, SCHEDULERS["StepLR"])
    _, _, three_trials = _per_trial_run(SCHEDULERS["StepLR"], "StepLR", 1)
    with pytest.raises(ValueError, match="this schedule has 2 trials, the state_dict has 3"):
        schedule.load_state_dict(three_trials)
