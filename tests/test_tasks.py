"""The task registry and the one table of defaults."""

import pytest

from optbench.errors import OptbenchError
from optbench.objectives import SURFACES, get_surface
from optbench.runners.regression import linear_regression, scalar_trace
from optbench.runners.training import TrainSpec
from optbench.specs import parse_optimizer
from optbench.tasks import (
    REGRESSION,
    TASKS,
    TRAINING,
    TUNING_RANGES,
    Target,
    TaskKind,
    get_task,
    surface_task,
    training_defaults,
)
from optbench.tasks import defaults as D


def default_hparams(surface, optimizer: str) -> dict:
    return surface_task(surface).default_hparams(parse_optimizer(optimizer))


def test_every_task_declares_data_model_loss_metric_and_target():
    for task in TASKS.values():
        assert isinstance(task.kind, TaskKind), task.name
        for value in (task.description, task.data, task.model, task.loss, task.metric):
            assert isinstance(value, str) and value, task.name
        assert task.target is None or isinstance(task.target, Target)
        assert task.commands and set(task.commands) <= {"train", "sweep", "compare", "grid"}
    kinds = {task.kind for task in TASKS.values()}
    assert kinds == set(TaskKind)
    assert {f"surface:{name}" for name in SURFACES} <= set(TASKS)
    assert get_task("digits").target == Target("val_accuracy", 0.9, "max")


@pytest.mark.parametrize(
    "name, expected, kind",
    [
        ("digits", "digits", "classification"),
        ("Fashion_MNIST", "fashion-mnist", "classification"),
        ("fashionmnist", "fashion-mnist", "classification"),
        ("regression", "linreg", "regression"),
        ("linreg", "linreg", "regression"),
        ("scalar", "scalar", "regression"),
        ("surface:elliptic", "surface:elliptic", "surface"),
        ("surface:quadratic:dim=20,condition=1000", "surface:quadratic:dim=20,condition=1000", "surface"),
    ],
)
def test_names_and_aliases_resolve_to_one_task(name, expected, kind):
    assert get_task(name).name == expected
    assert get_task(name).kind is TaskKind(kind)


def test_a_surface_task_with_settings_builds_that_surface():
    task = get_task("surface:quadratic:dim=20,condition=1000")
    assert task.surface.dim == 20 and max(task.surface.hessian_eigenvalues) == pytest.approx(1000)
    assert task.key == "quadratic" and task.kind is TaskKind.SURFACE


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(OptbenchError, match="unknown task 'digts'; did you mean 'digits'"):
        get_task("digts")
    with pytest.raises(OptbenchError, match="unknown surface 'elliptc'; did you mean 'elliptic'"):
        get_task("surface:elliptc")


def test_classification_defaults_are_the_training_runners():
    digits = get_task("digits")
    spec = TrainSpec()
    assert (digits.budget.epochs, digits.budget.batch_size) == (spec.epochs, spec.batch_size) == (10, 64)
    assert digits.target.value == TRAINING["target_accuracy"] == 0.9
    assert digits.default_hparams(parse_optimizer("momentum")) == training_defaults(
        parse_optimizer("momentum")
    )


def test_training_lr_is_scaled_by_one_minus_momentum():
    # heavy ball's steady-state step is lr / (1 - μ): with μ = 0.9 the default lr 0.1 becomes 0.01
    assert training_defaults(parse_optimizer("sgd")) == {"lr": 0.1}
    assert training_defaults(parse_optimizer("momentum"))["lr"] == pytest.approx(0.1 * (1 - 0.9))
    assert training_defaults(parse_optimizer("sgd:momentum=0.5"))["lr"] == pytest.approx(0.05)
    assert training_defaults(parse_optimizer("adam")) == {}  # torch's own 1e-3
    assert training_defaults(parse_optimizer("rmsprop")) == {"lr": 1e-3}


def test_regression_default_lr_is_used_when_the_spec_gives_none():
    default = linear_regression("sgd", epochs=1)
    explicit = linear_regression(f"sgd:lr={REGRESSION['lr']}", epochs=1)
    assert default["lr"].iloc[0] == REGRESSION["lr"] == 0.03
    assert default["full_loss"].tolist() == explicit["full_loss"].tolist()
    assert len(default) == 1000 // REGRESSION["batch_size"]
    assert scalar_trace("sgd")["a_next"].tolist() == pytest.approx([1.8, 1.96, 1.992], abs=1e-12)


def test_surface_lrs_come_from_the_table():
    elliptic = get_surface("elliptic")
    assert default_hparams(elliptic, "sgd") == {"lr": D.SURFACE_LR["elliptic"][0]}
    assert default_hparams(elliptic, "adamw") == {"lr": D.SURFACE_LR["elliptic"][1]}
    assert default_hparams(elliptic, "lbfgs") == {}
    # quadratic: 2 / (λ_min + λ_max), the best fixed gradient-descent step; λ from 1 to 100 here
    quadratic = get_surface("quadratic:dim=5,condition=100")
    assert default_hparams(quadratic, "sgd")["lr"] == pytest.approx(2 / 101)
    assert get_task("surface:elliptic").default_hparams(parse_optimizer("sgd")) == {"lr": 0.09}
    # a preset takes its own row where the table has one (momentum on elliptic), else its algorithm's
    assert get_task("surface:elliptic").default_hparams(parse_optimizer("momentum")) == {"lr": 0.00562}
    assert get_task("surface:saddle").default_hparams(parse_optimizer("momentum")) == {"lr": 0.05}


def test_every_tuning_range_parses_to_at_least_two_points():
    from optbench.runners.tuning import DEFAULT_RANGES
    from optbench.values import parse_range

    assert DEFAULT_RANGES is TUNING_RANGES
    for name, text in TUNING_RANGES.items():
        values = parse_range(text, name)
        assert len(values) >= 2 and values[0] < values[-1], name
    lr = parse_range(TUNING_RANGES["lr"])
    assert (lr[0], lr[-1], len(lr)) == pytest.approx((1e-4, 100.0, 49))
    assert lr[1] / lr[0] == pytest.approx(10 ** (1 / 8))  # 8 points a decade


def test_a_non_classification_task_is_refused_by_the_training_runner():
    from optbench.runners.training import check

    with pytest.raises(OptbenchError, match="'linreg' trains no model "):
        check(TrainSpec(task="linreg"))


def test_optbench_list_shows_every_task_with_its_kind():
    from click.testing import CliRunner

    from optbench.cli import main
    from optbench.tasks import describe

    title, columns, rows = describe()
    assert "task" in title and all(len(row) == len(columns) for row in rows)
    names = {row[0].split()[0] for row in rows}
    assert names >= {"digits", "mnist", "fashion-mnist", "cifar10", "scalar", "linreg", "surface:NAME"}
    linreg = rows[[r[0] for r in rows].index("linreg (regression)")]
    assert linreg[:3] == ("linreg (regression)", "regression", "train, sweep, compare")
    scalar = rows[[r[0] for r in rows].index("scalar")]
    assert scalar[2] == "train"
    listed = CliRunner().invoke(main, ["list"])
    assert listed.exit_code == 0
    for name in ("digits", "cifar10", "scalar", "linreg", "tasks (optbench train"):  # rich wraps long cells
        assert name in listed.output
