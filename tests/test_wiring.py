"""Issue 15's wiring: external classes in every command, Schedule-Free's eval point, recipes and
verify --against."""

import dataclasses
import pickle

import pytest
import torch
from click.testing import CliRunner
from user_optimizers import SIGN_SGD

from optbench.cli import main
from optbench.errors import OptbenchError
from optbench.models import build_model
from optbench.objectives import get_surface
from optbench.optimizers.adam import Adam
from optbench.optimizers.schedule_free import SGDScheduleFree
from optbench.results import read_metadata
from optbench.runners.recipes import Combined, build_optimizer, recipe_for
from optbench.runners.surface import fixed_starts, run_surface
from optbench.runners.training import TrainSpec, check, train
from optbench.specs import parse_optimizer
from optbench.sweeps import SweepSpec
from optbench.sweeps import sweep as run_sweep
from optbench.sweeps.cells import expand
from optbench.tasks import get_task


@pytest.fixture
def sign_sgd(tmp_path, monkeypatch):
    """A 10-line user optimizer in a file, named relative to the working directory as a user would."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myopt.py").write_text(SIGN_SGD)
    return "myopt.py:SignSGD"


def test_external_spec_checks_settings_round_trips_and_pickles(sign_sgd):
    spec = parse_optimizer(f"{sign_sgd}:lr=0.05")
    assert spec.cls.__name__ == "SignSGD" and dict(spec.hparams) == {"lr": 0.05}
    assert spec.origin.spec == sign_sgd and len(spec.origin.source_sha256) == 64
    assert not spec.algorithm.elementwise  # one optimizer per trial unless the class says otherwise
    assert parse_optimizer(spec.to_text()) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(OptbenchError, match="momentum"):
        parse_optimizer(f"{sign_sgd}:momentum=0.9")
    with pytest.raises(OptbenchError, match="torch:"):
        parse_optimizer(f"torch:{sign_sgd}")


def test_registry_settings_are_our_constructor_defaults():
    with pytest.raises(OptbenchError, match="foreach"):
        parse_optimizer("adam:foreach=true")
    assert parse_optimizer("lion:lr=0.01,betas=0.9/0.99").hparams["betas"] == (0.9, 0.99)


def test_lookahead_inner_is_built_round_trips_and_pickles():
    spec = parse_optimizer("lookahead:inner=adam,lr=0.01,k=3")
    optimizer = spec.build([torch.zeros(3, requires_grad=True)])
    assert isinstance(optimizer.optimizer, Adam) and optimizer.param_groups[0]["lr"] == 0.01
    assert parse_optimizer(spec.to_text()).algorithm.inner == "adam"
    assert pickle.loads(pickle.dumps(spec)).algorithm.inner == "adam"
    assert parse_optimizer("lookahead").algorithm.inner == "sgd"
    with pytest.raises(OptbenchError, match="inner"):
        parse_optimizer("lookahead:inner=lbfgs")


def test_surface_records_schedule_free_evaluation_point_without_changing_steps():
    surface, steps, lr = get_surface("elliptic"), 15, 0.05
    run = run_surface(parse_optimizer(f"sgdschedulefree:lr={lr}"), surface, fixed_starts(surface), steps)
    theta = torch.tensor(surface.start, dtype=torch.float64).reshape(1, -1).clone()
    optimizer = SGDScheduleFree([theta], lr=lr)
    optimizer.train()
    for _ in range(steps):
        theta.grad = surface.evaluate(theta)[1]
        optimizer.step()
    optimizer.eval()  # the averaged iterate x, where Schedule-Free is evaluated
    last = run.trajectory[run.trajectory["step"] == steps]
    assert last[["x", "y"]].to_numpy()[0].tolist() == theta[0].tolist()


def test_external_class_runs_in_compare_train_and_sweep(sign_sgd, tmp_path):
    surface = get_surface("elliptic")
    run = run_surface(parse_optimizer(f"{sign_sgd}:lr=0.1"), surface, fixed_starts(surface), 3)
    start = torch.tensor(surface.start, dtype=torch.float64)
    gradient = surface.evaluate(start.reshape(1, -1))[1][0]
    first = run.trajectory[run.trajectory["step"] == 1][["x", "y"]].to_numpy()[0]
    assert first.tolist() == pytest.approx((start - 0.1 * gradient.sign()).tolist(), abs=1e-15)
    assert run.per_trial

    result = train(TrainSpec(optimizer=f"{sign_sgd}:lr=0.001", model="mlp", epochs=1, max_steps=20))
    losses = result.steps["loss"]
    assert not result.summary["diverged"].iloc[0] and losses.iloc[-1] < losses.iloc[0]
    assert TrainSpec(optimizer=sign_sgd).resolved()["optimizer_origin"]["class_name"] == "SignSGD"

    spec = SweepSpec(
        task="surface:elliptic",
        optimizers=(f"{sign_sgd}:lr=0.05",),
        batch_sizes=(1, 4),
        lr_scales=("none",),
        steps=10,
    )
    swept = run_sweep(spec, tmp_path / "sweep")
    assert not swept.failed and len(swept.computed) == 2
    assert set(swept.summary["optimizer"]) == {f"{sign_sgd}:lr=0.05"}
    origins = read_metadata(tmp_path / "sweep")["spec"]["origins"]
    assert origins[f"{sign_sgd}:lr=0.05"]["class_name"] == "SignSGD"


def test_an_edited_optimizer_file_makes_new_sweep_cells(sign_sgd, tmp_path):
    spec = SweepSpec(
        task="surface:elliptic", optimizers=(sign_sgd, "sgd"), batch_sizes=(1,), lr_scales=("none",), steps=5
    )
    before = {cell.optimizer: cell.key for cell in expand(spec)}
    (tmp_path / "myopt.py").write_text(SIGN_SGD + "# tuned\n")
    after = {cell.optimizer: cell.key for cell in expand(spec)}
    assert before[sign_sgd] != after[sign_sgd] and before["sgd"] == after["sgd"]


@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_muon_alone_trains_with_its_recipe(model):
    spec = TrainSpec(optimizer="muon:lr=0.02", model=model, epochs=1, max_steps=15)
    dataset = check(spec)
    network = build_model(model, dataset.input_shape, dataset.num_classes)
    optimizer = build_optimizer(
        spec.optimizer, recipe_for(spec.optimizer, None), network, get_task("digits").default_hparams
    )
    assert isinstance(optimizer, Combined)
    muon_params = optimizer.optimizers[0].param_groups[0]["params"]
    assert all(p.ndim == 2 for p in muon_params)
    head = [p for p in network.parameters() if p.ndim >= 2][-1]
    assert all(p is not head for p in muon_params)
    result = train(spec)
    assert not result.summary["diverged"].iloc[0]
    assert result.steps["loss"].iloc[-3:].mean() < result.steps["loss"].iloc[:3].mean()
    assert spec.resolved()["recipe"]["recipe"] == "muon"


def test_flattened_kernel_moves_with_its_matrix_view():
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    optimizer = build_optimizer(
        parse_optimizer("muon:lr=0.1"), "muon", network, get_task("digits").default_hparams
    )
    kernel = network[0].weight
    before = kernel.detach().clone()
    network(torch.randn(3, 1, 4, 4)).sum().backward()
    optimizer.step()
    assert not torch.equal(kernel, before)
    optimizer.zero_grad()
    assert kernel.grad is None


def test_no_decay_recipe_and_refusals():
    network = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    optimizer = build_optimizer(
        parse_optimizer("adamw:weight_decay=0.1"), "no-decay", network, get_task("digits").default_hparams
    )
    decays = [(group["weight_decay"], [p.ndim for p in group["params"]]) for group in optimizer.param_groups]
    assert decays == [(0.1, [2, 2]), (0.0, [1, 1, 1, 1])]
    with pytest.raises(OptbenchError, match="weight_decay"):
        recipe_for(parse_optimizer("lbfgs"), "no-decay")
    with pytest.raises(OptbenchError, match="recipe"):
        recipe_for(parse_optimizer("adam"), "nodecay")
    with pytest.raises(OptbenchError, match="lbfgs"):
        check(TrainSpec(optimizer="lbfgs"))


def test_verify_against_certifies_any_class(sign_sgd):
    same = CliRunner().invoke(main, ["verify", "adam", "--against", "torch.optim:Adam"])
    assert same.exit_code == 0 and "16/16" in same.output and "equivalent" in same.output
    differs = CliRunner().invoke(main, ["verify", sign_sgd, "--against", "torch.optim:SGD"])
    assert differs.exit_code == 1 and "DIFFERS" in differs.output


def test_list_shows_references_and_batching():
    output = CliRunner().invoke(main, ["list"], env={"COLUMNS": "250"}).output
    assert "torch.optim.Adam" in output and "lion_pytorch.Lion" in output
    assert "one optimizer per trial" in output and "one tensor" in output


def test_an_elementwise_external_class_batches_its_trials(sign_sgd, tmp_path):
    (tmp_path / "batched.py").write_text(
        SIGN_SGD.replace("    def __init__", "    elementwise = True\n\n    def __init__")
    )
    surface = get_surface("elliptic")
    starts = fixed_starts(surface, trials=3)
    batched = run_surface(parse_optimizer("batched.py:SignSGD:lr=0.1"), surface, starts, 5)
    separate = run_surface(parse_optimizer(f"{sign_sgd}:lr=0.1"), surface, starts, 5)
    assert not batched.per_trial and separate.per_trial
    assert batched.trajectory[["x", "y"]].equals(separate.trajectory[["x", "y"]])


def test_verify_skips_algorithms_whose_reference_is_missing(capsys):
    from optbench.cli.verify import _installed
    from optbench.optimizers.registry import ALGORITHMS

    missing = dataclasses.replace(
        ALGORITHMS["lion"], reference="no_such_package:Lion", distribution="no-such"
    )
    assert _installed([ALGORITHMS["adam"], missing]) == [ALGORITHMS["adam"]]
    assert "no-such" in capsys.readouterr().err


def test_train_cli_says_which_recipe_and_refuses_lbfgs(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--optimizer",
            "muon",
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--format",
            "png",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "recipe muon" in result.output
    assert read_metadata(tmp_path)["spec"]["runs"][0]["recipe"]["recipe"] == "muon"
    refused = CliRunner().invoke(main, ["train", "--optimizer", "lbfgs", "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "lbfgs" in refused.output and not (tmp_path / "x").exists()


def test_a_training_sweep_runs_muon_with_its_recipe_and_lookahead_over_adam(tmp_path):
    spec = SweepSpec(
        optimizers=("muon:lr=0.02", "lookahead:inner=adam,lr=0.001"),
        model="mlp",
        batch_sizes=(32,),
        lr_scales=("none",),
        steps=5,
        evaluations=1,
    )
    swept = run_sweep(spec, tmp_path)
    assert not swept.failed and len(swept.computed) == 2
    texts = swept.summary["optimizer_spec"]
    assert any(text.startswith("lookahead:") and "inner=adam" in text for text in texts)
