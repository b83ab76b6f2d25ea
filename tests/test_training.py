"""The training runner: accuracy on digits, determinism, schedules, warm-up, early stop, divergence."""

import math

import pytest
import torch

from optbench.data import load
from optbench.errors import OptbenchError
from optbench.runners.divergence import is_diverged
from optbench.runners.schedules import build_scheduler
from optbench.runners.training import TrainSpec, check, train


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_default_sgd_reaches_95_percent_on_digits(digits):
    # the done-when: `optbench train --task digits --model lenet --optimizer sgd --epochs 10`
    result = train(TrainSpec(optimizer="sgd", device="cpu"), digits)
    assert result.summary["final_val_accuracy"].item() >= 0.95
    assert result.epochs["epoch"].tolist() == list(range(1, 11))
    assert len(result.steps) == 10 * (len(digits.train[1]) // 64)
    assert (result.steps["lr"] == 0.1).all()  # optbench's training default for plain SGD


def test_same_seed_same_numbers_other_seed_other_numbers(digits):
    spec = TrainSpec(optimizer="adam", model="mlp", epochs=2, device="cpu", seed=5)
    first, second = train(spec, digits), train(spec, digits)
    assert first.steps["loss"].tolist() == second.steps["loss"].tolist()
    assert first.epochs["val_accuracy"].tolist() == second.epochs["val_accuracy"].tolist()
    other = train(TrainSpec(optimizer="adam", model="mlp", epochs=2, device="cpu", seed=6), digits)
    assert other.steps["loss"].tolist() != first.steps["loss"].tolist()


def test_our_sgd_trains_exactly_like_torch_sgd(digits):
    spec = TrainSpec(
        optimizer="sgd:lr=0.05,momentum=0.9,nesterov=true",
        model="lenet",
        epochs=1,
        device="cpu",
        dtype="float64",
        max_steps=8,
    )
    ours = train(spec, digits)
    theirs = train(TrainSpec(**{**spec.__dict__, "optimizer": "torch:" + spec.optimizer.text}), digits)
    for name, tensor in ours.state_dict.items():
        torch.testing.assert_close(tensor, theirs.state_dict[name], rtol=1e-12, atol=1e-12)


def test_epoch_metrics_agree_with_a_separate_evaluation(digits):
    from optbench.models import build_model
    from optbench.tasks.classification import evaluate_split as evaluate

    result = train(TrainSpec(optimizer="momentum:lr=0.02", model="mlp", epochs=2, device="cpu"), digits)
    model = build_model("mlp", digits.input_shape, 10).double()
    model.load_state_dict(result.state_dict)
    loss, accuracy = evaluate(model, digits.val, torch.device("cpu"), torch.float64)
    assert accuracy == pytest.approx(result.epochs["val_accuracy"].iloc[-1])
    assert loss == pytest.approx(result.epochs["val_loss"].iloc[-1], rel=1e-5)
    row = result.epochs.iloc[-1]
    assert row["samples_per_s"] > 0 and row["epoch_time"] > 0 and not row["diverged"]


def test_evaluations_inside_epochs_change_no_training_number(digits):
    """`eval_every_steps` adds validation rows every k steps; the training itself is untouched, the
    per-epoch table is the same, and each row is the validation metric of the weights after k steps."""
    spec = TrainSpec(optimizer="momentum:lr=0.02", model="mlp", epochs=2, device="cpu")
    per_epoch, dense = (
        train(spec, digits),
        train(TrainSpec(**{**spec.__dict__, "eval_every_steps": 5}), digits),
    )
    steps_per_epoch = len(digits.train[1]) // 64  # 22
    assert per_epoch.evaluations["step"].tolist() == [steps_per_epoch, 2 * steps_per_epoch]
    assert dense.steps["loss"].tolist() == per_epoch.steps["loss"].tolist()
    volatile = ["epoch_time", "samples_per_s", "elapsed"]
    assert dense.epochs.drop(columns=volatile).equals(per_epoch.epochs.drop(columns=volatile))
    expected = sorted(set(range(5, 2 * steps_per_epoch + 1, 5)) | {steps_per_epoch, 2 * steps_per_epoch})
    assert dense.evaluations["step"].tolist() == expected  # no step evaluated twice
    at_epoch_end = dense.evaluations.set_index("step").loc[[steps_per_epoch, 2 * steps_per_epoch]]
    assert at_epoch_end["val_accuracy"].tolist() == per_epoch.epochs["val_accuracy"].tolist()
    # mid-epoch: the same numbers as evaluating a separate run stopped after 15 steps
    from optbench.models import build_model
    from optbench.tasks.classification import evaluate_split as evaluate

    stopped = train(TrainSpec(**{**spec.__dict__, "max_steps": 15}), digits)
    model = build_model("mlp", digits.input_shape, 10)
    model.load_state_dict(stopped.state_dict)
    row = dense.evaluations.set_index("step").loc[15]
    assert (row["val_loss"], row["val_accuracy"]) == pytest.approx(
        evaluate(model, digits.val, torch.device("cpu"))
    )
    assert row["epoch"] == 1


def test_cosine_schedule_with_warmup_follows_the_formulas(digits):
    spec = TrainSpec(
        optimizer="sgd:lr=0.1", model="mlp", epochs=5, warmup_epochs=1, schedule="cosine", device="cpu"
    )
    result = train(spec, digits)
    per_epoch = len(digits.train[1]) // 64
    warmup = result.steps["lr"].iloc[:per_epoch].tolist()
    assert warmup == pytest.approx([0.1 * (k + 1) / per_epoch for k in range(per_epoch)])
    # after the warm-up, CosineAnnealingLR over the 4 remaining epochs, stepped per epoch
    expected = [0.1 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)]
    assert result.epochs["lr"].iloc[1:].tolist() == pytest.approx(expected)


def test_step_schedule_with_arguments(digits):
    result = train(
        TrainSpec(
            optimizer="adam:lr=0.01",
            model="mlp",
            epochs=4,
            schedule="step:step_size=2,gamma=0.5",
            device="cpu",
        ),
        digits,
    )
    assert result.epochs["lr"].tolist() == pytest.approx([0.01, 0.01, 0.005, 0.005])


def test_plateau_and_multistep_schedules_build():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    assert isinstance(
        build_scheduler("plateau:patience=1", opt, 10), torch.optim.lr_scheduler.ReduceLROnPlateau
    )
    multistep = build_scheduler("multistep:milestones=2/4", opt, 10)
    assert list(multistep.milestones) == [2, 4]


def test_unknown_or_unusable_schedules_are_user_errors():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(OptbenchError, match="unknown schedule 'cosin'; did you mean 'cosine'"):
        build_scheduler("cosin", opt, 10)
    with pytest.raises(OptbenchError, match="step_size"):
        build_scheduler("step", opt, 10)
    with pytest.raises(OptbenchError, match="Python functions"):
        build_scheduler("LambdaLR", opt, 10)


def test_early_stopping_on_validation_accuracy(digits):
    result = train(
        TrainSpec(optimizer="sgd:lr=1e-6", model="mlp", epochs=30, early_stop=2, device="cpu"), digits
    )
    summary = result.summary.iloc[0]
    assert summary["stopped_early"] and summary["epochs_run"] < 30
    assert summary["epochs_run"] - summary["best_epoch"] == 2


def test_divergence_is_recorded_not_raised(digits):
    result = train(TrainSpec(optimizer="sgd:lr=1e4", model="mlp", epochs=3, device="cpu"), digits)
    assert result.summary["diverged"].item() and result.epochs["diverged"].iloc[-1]
    assert len(result.epochs) == 1
    losses = result.steps["loss"]  # the step rows end at the first diverged loss (runners.divergence)
    assert is_diverged(losses.iloc[-1], losses.iloc[0])
    assert not any(is_diverged(v, losses.iloc[0]) for v in losses.iloc[:-1])


def test_bf16_autocast_and_channels_last_train_on_cpu(digits):
    plain = train(TrainSpec(optimizer="adam", model="lenet", epochs=1, device="cpu", max_steps=5), digits)
    fast = train(
        TrainSpec(
            optimizer="adam",
            model="lenet",
            epochs=1,
            device="cpu",
            max_steps=5,
            bf16=True,
            channels_last=True,
        ),
        digits,
    )
    assert len(fast.steps) == 5 and fast.steps["loss"].notna().all()
    # the first loss is computed by the same initial weights; bf16 rounds it a little
    assert fast.steps["loss"].iloc[0] == pytest.approx(plain.steps["loss"].iloc[0], rel=0.05)


def test_test_split_is_evaluated_where_it_exists(tmp_path):
    from test_data import make_idx_folder

    make_idx_folder(tmp_path, n_train=120, n_test=30)
    result = train(
        TrainSpec(
            optimizer="adam",
            task="mnist",
            model="mlp",
            epochs=1,
            batch_size=16,
            data_dir=str(tmp_path),
            device="cpu",
        )
    )
    assert 0 <= result.summary["test_accuracy"].item() <= 1


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(batch_size=5000), "batch size 5000 is larger than the 1438 training samples"),
        (dict(model="vgg"), "unknown model 'vgg'"),
        (dict(task="imagenet"), "unknown task 'imagenet'"),
        (dict(schedule="cosin"), "unknown schedule"),
        (dict(optimizer="adma"), "unknown optimizer 'adma'"),
        (dict(epochs=0), "epochs must be at least 1"),
        (dict(dtype="float64", bf16=True), "bf16"),
        (dict(device="tpu"), "device 'tpu'"),
        (dict(eval_every_steps=0), "eval-every-steps must be a whole number >= 1, got 0"),
    ],
)
def test_bad_specs_are_user_errors(change, message, digits):
    with pytest.raises(OptbenchError, match=message):
        check(TrainSpec(**{"device": "cpu", **change}), digits if "task" not in change else None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_user_error():
    with pytest.raises(OptbenchError, match="CUDA is not available"):
        check(TrainSpec(device="cuda"))


def test_batch_must_split_evenly_across_processes(digits):
    with pytest.raises(OptbenchError, match="does not split evenly across 3 processes"):
        check(TrainSpec(batch_size=64, device="cpu"), digits, world=3)


def test_training_figures_come_from_tables_alone():
    import pandas as pd

    from optbench.plots.training import training_figures

    epochs = pd.DataFrame(
        dict(
            optimizer=["sgd", "sgd", "adam:lr=10", "adam:lr=10"],
            family=["sgd", "sgd", "adam", "adam"],
            epoch=[1, 2, 1, 2],
            val_loss=[1.0, 0.5, 2.0, float("nan")],
            val_accuracy=[0.6, 0.8, 0.2, 0.1],
            train_accuracy=[0.5, 0.7, 0.2, 0.1],
            diverged=[False, False, False, True],
        )
    )
    figures = training_figures({"epochs": epochs})
    assert list(figures) == ["training"]
    loss_ax, accuracy_ax = figures["training"].axes[:2]
    assert loss_ax.get_xlabel() == "epoch" and "loss" in loss_ax.get_ylabel()
    assert accuracy_ax.get_ylabel() == "accuracy (%)"
    labels = [line.get_label() for line in accuracy_ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["sgd", "adam (lr=10), diverged (NaN/inf)"]  # its val_loss went NaN
    validation = [line for line in accuracy_ax.get_lines() if not line.get_label().startswith("_")]
    assert validation[0].get_color() != validation[1].get_color()
    assert list(validation[0].get_ydata()) == [60.0, 80.0]
    # where the diverged run left: an x on the top edge of the loss axes, as in every figure
    from optbench.plots.style import DIVERGED_Y

    marks = [c for c in loss_ax.collections if len(c.get_offsets()) and c.get_offsets()[0][1] == DIVERGED_Y]
    assert [list(c.get_offsets()[0]) for c in marks] == [[2.0, DIVERGED_Y]]


def test_each_spec_is_checked_once_and_training_builds_one_model(monkeypatch):
    # check() builds a probe model and optimizer; train() must not repeat it (it did, once per run)
    import optbench.experiments.training as api
    from optbench.runners import training
    from optbench.tasks import classification

    built = []

    def counting(module):
        real = module.build_model
        monkeypatch.setattr(
            module, "build_model", lambda *a, **k: built.append(module.__name__) or real(*a, **k)
        )

    counting(training)
    counting(classification)
    checked = []
    real_check = api.check
    monkeypatch.setattr(
        api, "check", lambda spec, *a, **k: checked.append(spec.optimizer.name) or real_check(spec, *a, **k)
    )
    api.train(["sgd", "adam"], model="mlp", epochs=1, device="cpu")
    assert checked == ["sgd", "adam"]
    assert built == ["optbench.runners.training"] * 2 + ["optbench.tasks.classification"] * 2
