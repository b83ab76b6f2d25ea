"""Wrappers evaluated where their authors evaluate them (issue 22): Lookahead at its slow weights,
Schedule-Free at x, with BatchNorm statistics recomputed there as the schedulefree README prescribes.
Expected values: the reference packages' own evaluation (pytorch_optimizer's `backup_and_load_cache`,
schedulefree's `eval()` and its README's BatchNorm recipe)."""

import copy

import pytest
import torch

from optbench.data import load
from optbench.optimizers import SGD, SGDScheduleFree
from optbench.optimizers.lookahead import Lookahead
from optbench.runners.eval_mode import evaluation_weights
from optbench.runners.training import TrainSpec, _optimizer
from optbench.runners.training_loop import TrainingRun
from optbench.tasks.classification import evaluate_split

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
schedulefree = pytest.importorskip("schedulefree")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(16, 3),
    ).double()


def _data():
    generator = torch.Generator().manual_seed(1)
    batches = [
        (
            torch.randn(16, 8, generator=generator, dtype=torch.float64),
            torch.randint(0, 3, (16,), generator=generator),
        )
        for _ in range(9)
    ]
    return batches, torch.randn(32, 8, generator=generator, dtype=torch.float64)


def _train(model, optimizer, batches):
    model.train()
    torch.manual_seed(2)
    for inputs, targets in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()


def _reference_evaluation(model, enter, leave, batches, validation):
    """The reference's evaluation: its switch, then the schedulefree README's BatchNorm recipe."""
    enter()
    model.train()
    with torch.no_grad():
        for inputs in batches:
            model(inputs)
    model.eval()
    with torch.no_grad():
        output = model(validation)
    leave()
    model.train()
    return output


def _check(ours_model, ours, reference_model, reference, enter, leave):
    batches, validation = _data()
    _train(ours_model, ours, batches[:7])  # 7 steps: the slow weights lag the fast ones
    _train(reference_model, reference, batches[:7])
    statistics = [inputs for inputs, _ in batches[:3]]
    before = copy.deepcopy(ours_model.state_dict())
    with evaluation_weights(ours, ours_model, statistics):
        ours_model.eval()
        with torch.no_grad():
            output = ours_model(validation)
        ours_model.train()
    expected = _reference_evaluation(reference_model, enter, leave, statistics, validation)
    torch.testing.assert_close(output, expected)
    with torch.no_grad():  # training weights and BatchNorm statistics, without the recomputation
        ours_model.eval()
        at_training_weights = ours_model(validation)
        ours_model.train()
    assert (at_training_weights - expected).abs().max() > 1e-3
    for name, value in ours_model.state_dict().items():  # everything back, bit for bit
        assert torch.equal(value, before[name]), name
    _train(ours_model, ours, batches[7:])  # and training goes on as the reference's does
    _train(reference_model, reference, batches[7:])
    for a, b in zip(ours_model.parameters(), reference_model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_lookahead_is_evaluated_at_its_slow_weights_as_the_reference():
    ours_model, reference_model = _model(), _model()
    ours = Lookahead(SGD(ours_model.parameters(), lr=0.1, momentum=0.9), k=5, alpha=0.5)
    reference = pytorch_optimizer.Lookahead(
        torch.optim.SGD(reference_model.parameters(), lr=0.1, momentum=0.9), k=5, alpha=0.5
    )
    _check(
        ours_model,
        ours,
        reference_model,
        reference,
        reference.backup_and_load_cache,
        reference.clear_and_load_backup,
    )


def test_schedule_free_is_evaluated_at_x_with_statistics_recomputed_there():
    ours_model, reference_model = _model(), _model()
    ours = SGDScheduleFree(ours_model.parameters(), lr=0.5, momentum=0.9)
    reference = schedulefree.SGDScheduleFree(
        reference_model.parameters(), lr=0.5, momentum=0.9, foreach=False
    )
    ours.train()
    reference.train()
    _check(ours_model, ours, reference_model, reference, reference.eval, reference.train)


def test_the_training_loop_evaluates_and_saves_lookahead_at_its_slow_weights():
    digits = load("digits")
    spec = TrainSpec(optimizer="lookahead", model="mlp", epochs=1, device="cpu", max_steps=7)
    task = spec.resolved_task
    problem = task.build_problem(digits, spec.model, spec.seed, torch.device("cpu"), torch.float32, {})
    run = TrainingRun(problem, _optimizer(spec, task, problem.model), None, spec, task.target)
    run.epoch(1)
    slow = {name: run.optimizer.state[p]["slow_params"].clone() for name, p in run.network.named_parameters()}
    fast_weights = {name: p.detach().clone() for name, p in run.network.named_parameters()}
    assert any(not torch.equal(slow[name], fast_weights[name]) for name in slow)  # 7 steps: they differ
    at_slow = copy.deepcopy(run.network)
    with torch.no_grad():
        for name, p in at_slow.named_parameters():
            p.copy_(slow[name])
    expected = evaluate_split(at_slow, digits.val, run.device)
    assert run.epoch_rows[-1]["val_loss"] == expected[0]
    assert run.epoch_rows[-1]["val_accuracy"] == expected[1]
    result = run.result()
    for name in slow:
        assert torch.equal(result.state_dict[name], slow[name]), name
    for name, p in run.network.named_parameters():  # and the run itself is back at its fast weights
        assert torch.equal(p.detach(), fast_weights[name])
