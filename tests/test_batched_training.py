"""Batched training is certified: every trial equals the same run done alone with a plain torch loop.

The lone runs use torch.optim's classes (pytorch-optimizer's Lamb for LAMB), the model built after
`torch.manual_seed(seed)` and batches drawn as `optbench train` draws them; float64 throughout, so the
only differences are the order of floating-point sums in batched matrix products.
"""

import pytest
import torch
import torch.nn.functional as F

from optbench.data import load
from optbench.errors import OptbenchError
from optbench.models import build_model
from optbench.runners.batched_training import batched_mode, train_batched
from optbench.specs import OptimizerSpec

BATCH = 128
STEPS = 14  # crosses an epoch boundary: 1437 training digits hold 11 batches of 128
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def lone_run(dataset, seed, make_optimizer, steps=STEPS, make_scheduler=None, clip=None, dtype=torch.float64):
    """One run, written as a user would write it with torch alone: losses and final parameters."""
    torch.manual_seed(seed)
    net = build_model("mlp", dataset.input_shape, dataset.num_classes).to(dtype)
    optimizer = make_optimizer(net.parameters())
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    x, y = dataset.train[0].to(dtype), dataset.train[1]
    order = torch.Generator().manual_seed(seed)
    per_epoch = len(y) // BATCH
    losses = []
    for t in range(steps):
        if t % per_epoch == 0:
            permutation = torch.randperm(len(y), generator=order)
        batch = permutation[(t % per_epoch) * BATCH : (t % per_epoch + 1) * BATCH]
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x[batch]), y[batch])
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        optimizer.step()
        if scheduler:
            scheduler.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=torch.float64), dict(net.named_parameters())


def assert_each_trial_alone(result, dataset, make_optimizer_for_trial, **lone):
    for t, seed in enumerate(result.seeds):
        losses, parameters = lone_run(dataset, seed, make_optimizer_for_trial(t), **lone)
        torch.testing.assert_close(result.losses[:, t], losses, rtol=1e-10, atol=1e-12)
        for name, p in parameters.items():
            torch.testing.assert_close(result.parameters[name][t], p.detach(), rtol=1e-9, atol=1e-11)


def test_float32_trials_with_per_trial_lr_and_weight_decay_equal_lone_float32_runs(digits):
    # per-trial hyperparameters meet float32 parameters in float32, as torch's kernels read a number lr:
    # the trials equal lone float32 runs to float32 rounding (batched matrix products sum in another order)
    seeds, lrs = grid([1e-3, 1e-2])
    decay = [0.0, 0.1, 0.3, 0.05]
    result = train_batched(
        OptimizerSpec.parse("adamw"),
        digits,
        seeds,
        steps=6,
        batch_size=BATCH,
        hparams={"lr": lrs, "weight_decay": decay},
    )
    assert result.mode == "batched"
    for t, seed in enumerate(result.seeds):
        make = lambda p, t=t: torch.optim.AdamW(p, lr=lrs[t], weight_decay=decay[t])  # noqa: E731
        losses, parameters = lone_run(digits, seed, make, steps=6, dtype=torch.float32)
        torch.testing.assert_close(result.losses[:, t], losses, rtol=1e-5, atol=1e-6)
        for name, p in parameters.items():
            torch.testing.assert_close(result.parameters[name][t], p.detach(), rtol=1e-4, atol=1e-5)


def grid(lrs):
    seeds = [seed for seed in SEEDS for _ in lrs]
    return seeds, [lr for _ in SEEDS for lr in lrs]


def test_sgd_momentum_trials_equal_lone_runs(digits):
    seeds, lrs = grid([0.01, 0.05, 0.2])
    result = train_batched(
        OptimizerSpec.parse("sgd:momentum=0.9"),
        digits,
        seeds,
        steps=STEPS,
        batch_size=BATCH,
        hparams={"lr": lrs},
        dtype=torch.float64,
    )
    assert result.mode == "batched"
    assert_each_trial_alone(result, digits, lambda t: lambda p: torch.optim.SGD(p, lr=lrs[t], momentum=0.9))


def test_adam_trials_with_per_trial_lr_and_beta1_and_schedule_equal_lone_runs(digits):
    seeds, lrs = grid([1e-3, 3e-3, 1e-2])
    beta1 = [0.8 + 0.05 * (i % 3) for i in range(len(lrs))]
    schedule = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS)  # noqa: E731
    result = train_batched(
        OptimizerSpec.parse("adam"),
        digits,
        seeds,
        steps=STEPS,
        batch_size=BATCH,
        hparams={"lr": lrs, "beta1": beta1},
        make_scheduler=schedule,
        dtype=torch.float64,
    )
    assert result.mode == "batched"
    assert result.table().shape[0] == STEPS * len(seeds)
    assert_each_trial_alone(
        result,
        digits,
        lambda t: lambda p: torch.optim.Adam(p, lr=lrs[t], betas=(beta1[t], 0.999)),
        make_scheduler=schedule,
    )


def test_gradient_clipping_is_per_trial(digits):
    # a large lr makes some trials' gradients exceed the norm and others not: no trial sees another's norm
    seeds, lrs = grid([0.05, 0.5])
    result = train_batched(
        OptimizerSpec.parse("sgd"),
        digits,
        seeds,
        steps=STEPS,
        batch_size=BATCH,
        hparams={"lr": lrs},
        clip_grad_norm=0.5,
        dtype=torch.float64,
    )
    assert_each_trial_alone(result, digits, lambda t: lambda p: torch.optim.SGD(p, lr=lrs[t]), clip=0.5)


def test_lamb_runs_one_trial_at_a_time_and_equals_lone_runs(digits):
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    seeds, lrs = grid([1e-3, 1e-2])
    spec = OptimizerSpec.parse("lamb")
    assert batched_mode(spec, {"lr": lrs}) == "per_trial"
    result = train_batched(
        spec, digits, seeds, steps=STEPS, batch_size=BATCH, hparams={"lr": lrs}, dtype=torch.float64
    )
    assert result.mode == "per_trial"
    assert_each_trial_alone(result, digits, lambda t: lambda p: pytorch_optimizer.Lamb(p, lr=lrs[t]))


def test_modes_follow_the_registry():
    assert batched_mode(OptimizerSpec.parse("adamw"), {"lr": [1e-3]}) == "batched"
    assert batched_mode(OptimizerSpec.parse("torch:adam"), {"lr": [1e-3]}) == "per_trial"
    for name in ("muon", "soap", "prodigy", "adafactor"):
        assert batched_mode(OptimizerSpec.parse(name)) == "per_trial"
    # RAdam cannot take betas as tensors, so a beta1 axis runs it one trial at a time
    assert batched_mode(OptimizerSpec.parse("radam"), {"beta1": [0.9]}) == "per_trial"


def test_a_diverging_trial_is_a_result_and_leaves_the_others_alone(digits):
    seeds, lrs = [0, 0], [0.05, 1e6]
    result = train_batched(
        OptimizerSpec.parse("sgd"),
        digits,
        seeds,
        steps=6,
        batch_size=BATCH,
        hparams={"lr": lrs},
        dtype=torch.float64,
    )
    diverged = result.diverged_at()
    assert diverged[0] is None and diverged[1] is not None
    losses, _ = lone_run(digits, 0, lambda p: torch.optim.SGD(p, lr=0.05), steps=6)
    torch.testing.assert_close(result.losses[:, 0], losses, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(seeds=[], steps=1, batch_size=8), "at least one trial"),
        (dict(seeds=[0], steps=-1, batch_size=8), "steps must be >= 0"),
        (dict(seeds=[0], steps=1, batch_size=0), "batch size must be between 1"),
        (dict(seeds=[0, 1], steps=1, batch_size=8, hparams={"lr": [0.1]}), "'lr' has 1 values for 2 trials"),
        (dict(seeds=[0], steps=1, batch_size=8, clip_grad_norm=0), "clipping norm must be > 0"),
    ],
)
def test_bad_input_is_one_clear_error(digits, settings, message):
    with pytest.raises(OptbenchError, match=message):
        train_batched(OptimizerSpec.parse("sgd"), digits, **settings)


def test_lbfgs_and_models_with_buffers_are_refused(digits):
    with pytest.raises(OptbenchError, match="lbfgs re-evaluates"):
        train_batched(OptimizerSpec.parse("lbfgs"), digits, [0], steps=1, batch_size=8)
    with pytest.raises(OptbenchError, match="without buffers"):
        train_batched(OptimizerSpec.parse("sgd"), digits, [0], steps=1, batch_size=8, model="resnet")
