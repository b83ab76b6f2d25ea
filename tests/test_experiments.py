"""The Python API is the product: each CLI command's tables come out of one library call, exactly."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import optbench
from optbench.cli import main
from optbench.errors import OptbenchError
from optbench.objectives import get_surface
from optbench.results import write_metadata
from optbench.values import parse_range


def cli_tables(tmp_path, *args) -> dict:
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, [*args, "--format", "png", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {path.stem: pd.read_parquet(path) for path in sorted(out.glob("*.parquet"))}


def api_tables(tmp_path, result) -> dict:
    """The API's tables as they come back from disk, so both sides went through the same parquet writer."""
    out = result.save(tmp_path / "api")
    return {path.stem: pd.read_parquet(path) for path in sorted(out.glob("*.parquet"))}


def assert_same_tables(cli: dict, api: dict, exact: bool = True):
    assert sorted(cli) == sorted(api)
    for stem in cli:
        # rtol only for linreg: MKL's batched matmul may round the last bit differently with memory alignment
        pd.testing.assert_frame_equal(cli[stem], api[stem], check_exact=exact, rtol=1e-12, obj=stem)


def test_compare_api_reproduces_the_command(tmp_path):
    cli = cli_tables(
        tmp_path,
        "compare",
        "sgd",
        "adam:lr=0.5",
        "rmsprop",
        "--surface",
        "elliptic",
        "--steps",
        "30",
        "--trials",
        "3",
        "--seed",
        "4",
    )
    result = optbench.compare(["sgd", "adam:lr=0.5", "rmsprop"], "elliptic", steps=30, trials=3, seed=4)
    assert_same_tables(cli, api_tables(tmp_path, result))
    assert set(cli) == {"trajectory", "metrics", "rates"}


def test_tuned_compare_api_reproduces_the_command(tmp_path):
    cli = cli_tables(
        tmp_path,
        "compare",
        "sgd",
        "momentum",
        "--tune",
        "--tune-over",
        "lr,momentum",
        "--tune-range",
        "lr=1e-2:1:4",
        "--tune-range",
        "momentum=0:0.9:3",
        "--tune-starts",
        "2",
        "--steps",
        "25",
        "--criterion",
        "steps-to-tol",
    )
    plan = optbench.plan_tuning(
        ["sgd", "momentum"],
        "elliptic",
        over=["lr", "momentum"],
        ranges={"lr": "1e-2:1:4", "momentum": "0:0.9:3"},
        starts=2,
        criterion="steps-to-tol",
    )
    result = optbench.compare(["sgd", "momentum"], "elliptic", steps=25, tune=plan)
    assert_same_tables(cli, api_tables(tmp_path, result))
    assert {"tuning", "tuned"} <= set(cli)
    # the comparison ran at the winners of the tuning
    winners = result.tuning.summary.set_index("optimizer")
    ran = result.metrics.set_index("optimizer")
    assert ran.loc["momentum", "lr"] == winners.loc["momentum", "lr"]
    assert ran.loc["momentum", "momentum"] == winners.loc["momentum", "momentum"]


def test_check_repro_api_reproduces_the_command(tmp_path):
    cli = cli_tables(
        tmp_path,
        "compare",
        "sgd",
        "adam",
        "--noise",
        "0.5",
        "--trials",
        "2",
        "--steps",
        "20",
        "--check-repro",
    )
    result = optbench.compare(["sgd", "adam"], steps=20, trials=2, noise=0.5, check_repro=True)
    assert_same_tables(cli, api_tables(tmp_path, result))
    cpu = result.repro[result.repro["comparison"] == "cpu run 1 vs run 2"]
    assert list(cpu["optimizer"]) == ["sgd", "adam"] and (cpu["max_difference"] == 0).all()


def test_linreg_api_reproduces_the_command(tmp_path):
    cli = cli_tables(
        tmp_path,
        "compare",
        "sgd",
        "adam:lr=0.05",
        "--surface",
        "linreg",
        "--trials",
        "2",
        "--steps",
        "100",
        "--batch-size",
        "5,50",
        "--floor-lrs",
        "0.01:0.1:3",
    )
    study = optbench.noise_floor(
        ["sgd", "adam:lr=0.05"], steps=100, seeds=2, batch_sizes=[5, 50], floor_lrs=parse_range("0.01:0.1:3")
    )
    assert_same_tables(cli, api_tables(tmp_path, study), exact=False)
    settled = study.settled()
    assert len(settled) == 4 and settled["ratio"].notna().tolist() == [True, True, False, False]


def test_grid_api_reproduces_the_command(tmp_path):
    cli = cli_tables(tmp_path, "grid", "sgd", "--lr", "1e-3:1:5", "--momentum", "0:0.9:4", "--steps", "40")
    axes = {"lr": parse_range("1e-3:1:5"), "momentum": parse_range("0:0.9:4")}
    result = optbench.grid("sgd", axes, "elliptic", steps=40)
    assert_same_tables(cli, api_tables(tmp_path, result))
    best = result.best()  # the robust best cell (tests/test_defaults.py), marked in the saved table too
    assert best["best"] and int(result.metrics["best"].sum()) == 1 and not best["diverged"]


def test_saved_results_load_back_and_plot(tmp_path):
    plan = optbench.plan_tuning(["sgd"], "elliptic", ranges={"lr": "1e-2:1:5"}, starts=2)
    result = optbench.compare(["sgd", "adam"], steps=15, tune=plan)
    loaded = optbench.load(result.save(tmp_path / "cmp"))
    assert isinstance(loaded, optbench.Comparison)
    for stem, _table in result.tables().items():
        pd.testing.assert_frame_equal(
            loaded.tables()[stem].reset_index(drop=True),
            pd.read_parquet(tmp_path / "cmp" / f"{stem}.parquet"),
            obj=stem,
        )
    figures = loaded.plot()
    assert sorted(figures) == ["loss", "sensitivity", "trajectories"]
    legend = [text.get_text() for text in figures["sensitivity"].axes[0].get_legend().get_texts()]
    winner = result.tuning.summary.set_index("optimizer").loc["sgd", "lr"]
    assert f"sgd (lr={winner:.3g}): tuned" in legend


def test_api_errors_are_one_clear_line(tmp_path):
    with pytest.raises(OptbenchError, match="exactly two axes"):
        optbench.grid("sgd", {"lr": [0.1, 0.2]})
    with pytest.raises(OptbenchError, match="given once"):
        optbench.compare(["sgd", "sgd"])
    with pytest.raises(OptbenchError, match="start needs 2 coordinates"):
        optbench.compare("sgd", start=(1.0, 2.0, 3.0))
    with pytest.raises(OptbenchError, match="adam has no hyperparameter 'momentum'"):
        optbench.plan_tuning(["adam"], "elliptic", over=["momentum"])
    with pytest.raises(OptbenchError, match="no known minimum"):
        optbench.plan_tuning(["sgd"], get_surface("saddle"), criterion="steps-to-tol")
    with pytest.raises(OptbenchError, match="torch.optim does not accept"):
        optbench.noise_floor(["torch:sgd"], steps=10)
    write_metadata(tmp_path, "bogus", {}, 0)
    with pytest.raises(
        OptbenchError, match="kind .bogus. is not one of bench, compare, grid, noise_floor, sweep, train$"
    ):
        optbench.load(tmp_path)


def test_grid_figure_draws_the_stability_limit_from_theory():
    axes = {"lr": list(np.geomspace(1e-3, 0.3, 6)), "momentum": [0.0, 0.5, 0.9]}
    figure = optbench.grid("sgd", axes, steps=20).plot()["grid"]
    line = [line for line in figure.axes[0].get_lines() if "stability edge" in line.get_label()]
    assert len(line) == 1
    lrs, momenta = (np.asarray(values, dtype=float) for values in line[0].get_data())
    shown = np.isfinite(momenta)
    lam_max = max(get_surface("elliptic").hessian_eigenvalues)
    np.testing.assert_allclose(
        lrs[shown], 2 * (1 + momenta[shown]) / lam_max, rtol=1e-3
    )  # lr = 2(1 + μ)/λ_max


def test_grid_star_names_the_criterion_that_chose_it():
    """The star sits on the table's best cell and its legend says by which criterion (issue 13, kind 2)."""
    result = optbench.grid("sgd", {"lr": [0.01, 0.05, 0.09], "momentum": [0.0, 0.5]}, "elliptic", steps=60)
    best = result.best()
    figure = result.plot()["grid"]
    texts = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    texts += [
        text.get_text() for ax in figure.axes if ax.get_legend() for text in ax.get_legend().get_texts()
    ]
    star = [t for t in texts if t.startswith("best by")]
    assert star and "fewest steps to tol, off the stability edge" in star[0]
    assert f"lr={best['lr']:.3g}" in star[0]


def test_every_result_keeps_one_contract_and_saving_never_draws(tmp_path):
    """Each kind of result saves its tables (and no figure), loads back as its own class, and redraws
    from what was loaded alone; kinds are unique, so `optbench.load` knows which class a folder holds."""
    from optbench.experiments.result import KINDS
    from optbench.sweeps import SweepSpec

    results = {
        "compare": optbench.compare(["sgd"], steps=10),
        "noise_floor": optbench.noise_floor(["sgd"], steps=20, batch_sizes=[10], floor_lrs=[0.01, 0.1]),
        "grid": optbench.grid("sgd", {"lr": [0.01, 0.1], "momentum": [0.0, 0.9]}, "elliptic", steps=10),
        "train": optbench.train(["sgd"], "linreg", epochs=1),
        "sweep": optbench.sweep(
            SweepSpec(task="surface:elliptic", batch_sizes=(1, 4), lr_scales=("none",), steps=10),
            tmp_path / "sweep-run",
        ),
        "bench": optbench.bench(["sgd"], suite=["elliptic"], studies=1, trials_per_study=1, seeds=1),
    }
    assert sorted(KINDS) == sorted(results)
    for kind, result in results.items():
        assert isinstance(result, optbench.Result) and result.kind == kind
        folder = result.save(tmp_path / kind)
        assert {
            path.suffix for path in folder.iterdir() if path.is_file() and not path.name.startswith(".")
        } == {
            ".parquet",
            ".json",
        }
        loaded = optbench.load(folder)
        assert type(loaded) is type(result)
        assert sorted(loaded.tables()) == sorted(result.tables())
        figures = loaded.plot()
        assert figures and all(figure.axes for figure in figures.values()), kind
    with pytest.raises(AttributeError):
        results["train"].epochs_table  # noqa: B018 - no attribute forwarding: a typo is an error
    assert results["train"].regression is results["train"].tables()["regression"]


def test_every_experiment_reports_one_progress_event_type(tmp_path):
    from optbench.progress import Progress
    from optbench.sweeps import SweepSpec

    events = {"compare": [], "grid": [], "sweep": []}
    optbench.compare(["sgd", "adam"], steps=10, progress=events["compare"].append)
    optbench.grid(
        "sgd", {"lr": [0.01, 0.1], "momentum": [0.0, 0.9]}, steps=10, progress=events["grid"].append
    )
    spec = SweepSpec(task="surface:elliptic", batch_sizes=(1, 4), lr_scales=("none",), steps=10)
    optbench.sweep(spec, tmp_path, progress=events["sweep"].append)
    assert all(isinstance(event, Progress) for reported in events.values() for event in reported)
    assert {(e.bar, e.done, e.total) for e in events["compare"] if e.done == e.total} == {
        ("sgd", 10, 10),
        ("adam", 10, 10),
    }
    assert [(e.bar, e.done, e.total) for e in events["grid"]][-1] == ("sgd", 10, 10)
    assert [(e.done, e.total, e.status.split(":")[0]) for e in events["sweep"]] == [
        (1, 2, "done"),
        (2, 2, "done"),
    ]
