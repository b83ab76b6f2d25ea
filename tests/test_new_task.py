"""A task registered in one place (its registry entry and its defaults row) runs through every
command its kind allows, with no other file touched."""

import pytest
import torch

import optbench
from optbench.data import Dataset
from optbench.objectives import Surface
from optbench.tasks import TASKS, classification_task, get_task, register, surface_task
from optbench.tasks import defaults as D


def _tilted(points):
    """f = (x - 1)² + 4 (y + 2)²: a quadratic whose minimum is off the origin."""
    x, y = points[:, 0], points[:, 1]
    value = (x - 1) ** 2 + 4 * (y + 2) ** 2
    return value, torch.stack([2 * (x - 1), 8 * (y + 2)], dim=1)


@pytest.fixture
def tilted():
    surface = Surface(
        name="tilted",
        formula="(x - 1)² + 4 (y + 2)²",
        evaluate=_tilted,
        minima=((1.0, -2.0),),
        start=(-2.0, 1.0),
        window=((-4.0, 4.0), (-5.0, 3.0)),
        hessian_eigenvalues=(2.0, 8.0),
        steps=60,
        note="a test's surface",
    )
    # its defaults row: one lr per column of SURFACE_LR_FAMILIES (sgd, adam, rmsprop, adagrad)
    task = register(surface_task(surface), surface_lr=(0.2, 0.5, 0.05, 1.0))
    yield task
    TASKS.pop(task.name)
    D.SURFACE_LR.pop("tilted")


@pytest.fixture
def blobs():
    def load(data_dir):
        generator = torch.Generator().manual_seed(0)
        labels = torch.arange(300) % 3
        centres = torch.randn(3, 1, 4, 4, generator=generator) * 2
        images = centres[labels] + 0.5 * torch.randn(300, 1, 4, 4, generator=generator)
        return Dataset("blobs", (images[:240], labels[:240]), (images[240:], labels[240:]), None, 3)

    task = register(classification_task("blobs", "three Gaussian blobs", "generated", load=load))
    yield task
    TASKS.pop(task.name)


def test_a_registered_surface_runs_through_compare_grid_and_sweep_with_its_defaults(tilted, tmp_path):
    assert get_task("surface:tilted") is tilted
    compared = optbench.compare(["sgd", "adam"], "tilted")
    assert compared.meta["resolved"]["sgd"]["lr"] == 0.2 and compared.meta["resolved"]["adam"]["lr"] == 0.5
    assert compared.meta["steps"] == 60
    # gradient descent at lr 0.2 contracts x by |1 - 0.2·2| = 0.6 and y by |1 - 0.2·8| = 0.6 a step
    final = compared.trajectory.query("optimizer == 'sgd'").iloc[-1]
    assert final["x"] == pytest.approx(1 - 3 * 0.6**60, abs=1e-12)
    assert final["y"] == pytest.approx(-2 + 3 * 0.6**60, abs=1e-12)
    mapped = optbench.grid("sgd", {"lr": [0.05, 0.2], "momentum": [0.0, 0.5]}, "tilted", steps=20)
    assert len(mapped.metrics) == 4
    swept = optbench.sweep(
        task="surface:tilted", batch_sizes=[1, 4], optimizers="sgd", steps=20, folder=tmp_path / "s"
    )
    assert sorted(swept.summary["batch_size"]) == [1, 4]
    assert set(swept.summary["lr"]) == {0.2, 0.8}  # linear scaling from the task's default lr at B0 = 1


def test_a_registered_classification_task_runs_through_train_and_sweep(blobs, tmp_path):
    trained = optbench.train("sgd", "blobs", model="mlp", epochs=2, batch_size=16, device="cpu")
    assert list(trained.epochs["epoch"]) == [1, 2]
    assert trained.epochs["val_accuracy"].iloc[-1] > 0.9  # well-separated blobs
    swept = optbench.sweep(
        task="blobs",
        model="mlp",
        batch_sizes="16,32",
        optimizers="sgd",
        steps=10,
        evaluations=5,
        device="cpu",
        folder=tmp_path / "s",
    )
    assert sorted(swept.summary["batch_size"]) == [16, 32]
    assert swept.summary["target_accuracy"].iloc[0] == 0.9  # the task's target, as the CLI uses it
