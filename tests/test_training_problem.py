"""The training loop runs any `TrainingProblem`: the problem supplies the batches, loss and evaluation,
and the task's `Target` decides early stopping and the best epoch in its direction."""

import pytest
import torch

from optbench.runners.training import TrainSpec
from optbench.runners.training_loop import TrainingRun
from optbench.tasks import Target


class LeastSquares:
    """y = X w* exactly, fitted by a bias-free linear layer: a problem scored by a loss (min), with no
    accuracy anywhere."""

    def __init__(self, seed: int):
        generator = torch.Generator().manual_seed(123)
        self.x = torch.randn(64, 3, generator=generator, dtype=torch.float64)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
        torch.manual_seed(seed)
        self.model = torch.nn.Linear(3, 1, bias=False).double()
        self.n_train = 48

    def batch(self, indices):
        return self.x[indices], self.y[indices]

    def loss(self, output, targets):
        return (output - targets).pow(2).mean()

    def batch_metrics(self, output, targets):
        return {}

    def evaluate(self, model):
        with torch.no_grad():
            return {"val_loss": self.loss(model(self.x[48:]), self.y[48:]).item()}


def run(lr: float, epochs: int, early_stop=None):
    problem = LeastSquares(seed=0)
    optimizer = torch.optim.SGD(problem.model.parameters(), lr=lr)
    budget = TrainSpec(optimizer=f"sgd:lr={lr}", epochs=epochs, batch_size=8, early_stop=early_stop)
    loop = TrainingRun(problem, optimizer, None, budget, Target("val_loss", 1e-6, "min"))
    for epoch in range(1, epochs + 1):
        if not loop.epoch(epoch):
            break
    return loop.result(task="least-squares"), problem


def test_a_loss_scored_problem_trains_and_its_best_epoch_is_the_lowest_loss():
    result, problem = run(lr=0.05, epochs=4)
    epochs = result.epochs
    assert list(epochs.columns[:5]) == ["optimizer", "family", "epoch", "train_loss", "val_loss"]
    assert epochs["val_loss"].is_monotonic_decreasing  # gradient descent on a convex quadratic
    summary = result.summary.iloc[0]
    assert summary["best_val_loss"] == epochs["val_loss"].min() == summary["final_val_loss"]
    assert summary["best_epoch"] == 4 and summary["steps"] == 4 * (48 // 8)
    # the loop's evaluation is the problem's: recompute it from the final weights
    problem.model.load_state_dict(result.state_dict)
    assert problem.evaluate(problem.model)["val_loss"] == pytest.approx(
        epochs["val_loss"].iloc[-1], rel=1e-12
    )


def test_early_stopping_follows_a_min_target():
    # lr = 0: the loss never improves on the first epoch's, so patience 2 stops after epoch 3
    result, _ = run(lr=0.0, epochs=10, early_stop=2)
    assert list(result.epochs["epoch"]) == [1, 2, 3]
    assert bool(result.summary["stopped_early"].iloc[0]) and result.summary["best_epoch"].iloc[0] == 1
    # a falling loss never stops early under a min target (under a max target it would, after 2 epochs)
    falling, _ = run(lr=0.05, epochs=5, early_stop=2)
    assert len(falling.epochs) == 5 and not falling.summary["stopped_early"].iloc[0]


def test_a_target_is_reached_in_its_direction():
    assert Target("val_loss", 0.1, "min").reached(0.05) and not Target("val_loss", 0.1, "min").reached(0.2)
    assert Target("val_accuracy", 0.9, "max").reached(0.95) and not Target(
        "val_accuracy", 0.9, "max"
    ).reached(0.5)
    assert not Target("val_loss", 0.1, "min").reached(float("nan"))
    with pytest.raises(ValueError, match="direction"):
        Target("val_loss", 0.1, "down")
