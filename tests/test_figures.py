"""What the figures show, read from their artists: looks, labels, the diverged mark, criteria and winners,
stability edges, axes and resolution (issue 13, kinds 1, 2, 5, 8 and 11)."""

import io
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from PIL import Image  # noqa: E402

import optbench  # noqa: E402
from optbench import theory  # noqa: E402
from optbench.cli import main  # noqa: E402
from optbench.experiments import plan_tuning  # noqa: E402
from optbench.objectives import get_surface  # noqa: E402
from optbench.optimizers.registry import ALGORITHMS, PRESETS  # noqa: E402
from optbench.plots import style as plot_style  # noqa: E402
from optbench.plots.grid_map import plot_grid  # noqa: E402
from optbench.plots.style import optimizer_looks  # noqa: E402
from optbench.plots.surfaces import plot_loss, plot_trajectories  # noqa: E402
from optbench.plots.sweeps import final_metric  # noqa: E402
from optbench.plots.training import plot_training  # noqa: E402


def listed_optimizers() -> list[tuple[str, str]]:
    """(label, family) of every optimizer `optbench list` shows."""
    return [(name, name) for name in ALGORITHMS] + [(name, base) for name, (base, _) in PRESETS.items()]


def fake_trajectory(labels_and_families, steps=30, diverge=()):
    """A surface trajectory table: loss 10·0.8^t per optimizer; those in `diverge` blow up from step 5."""
    rows = []
    for label, family in labels_and_families:
        for step in range(steps + 1):
            gone = label in diverge and step >= 5
            loss = math.inf if gone else 10 * 0.8**step
            rows.append(
                {
                    "optimizer": label,
                    "family": family,
                    "settings": "lr=0.1",
                    "lr": 0.1,
                    "trial": 0,
                    "step": step,
                    "x": 1e30 if gone else 0.5**step,
                    "y": 0.0,
                    "loss": loss,
                    "diverged": gone,
                }
            )
    return pd.DataFrame(rows)


def legend_lines(fig):
    return [
        handle
        for ax in fig.axes
        if ax.get_legend()
        for handle in ax.get_legend().legend_handles
        if isinstance(handle, matplotlib.lines.Line2D)
    ]


def diverged_marks(ax) -> list[PathCollection]:
    """Scatter collections drawn by `style.mark_diverged`: at y = DIVERGED_Y in axes coordinates."""
    marks = []
    for collection in ax.collections:
        offsets = np.asarray(collection.get_offsets())
        if (
            len(offsets)
            and isinstance(collection, PathCollection)
            and np.allclose(offsets[:, 1], plot_style.DIVERGED_Y)
        ):
            marks.append(collection)
    return marks


# --- kind 1: every series is told apart, in every figure of a run, with one label format -------------


def test_every_listed_optimizer_drawn_together_gets_a_distinct_look():
    trajectory = fake_trajectory(listed_optimizers())
    surface = get_surface("elliptic")
    for fig in (plot_trajectories(trajectory, surface), plot_loss(trajectory, surface)):
        lines = [line for line in legend_lines(fig) if line.get_label() not in ("start", "minimum")]
        triples = {
            (matplotlib.colors.to_hex(line.get_color()), line.get_linestyle(), line.get_marker())
            for line in lines
        }
        assert len(lines) == len(listed_optimizers()) == len(triples)
        plt.close(fig)


def test_looks_are_keyed_by_the_full_spec_and_kept_across_a_runs_figures():
    result = optbench.compare(["adam:lr=0.1", "adam:lr=1", "sgd", "torch:adam"], "elliptic", steps=20)
    figures = result.plot()
    looks = {}
    for name in ("trajectories", "loss"):
        for line in legend_lines(figures[name]):
            if line.get_label() in ("start", "minimum") or line.get_label().startswith("analytic rate"):
                continue
            label = line.get_label().split("\n")[0]
            look = (matplotlib.colors.to_hex(line.get_color()), line.get_linestyle(), line.get_marker())
            assert looks.setdefault(label, look) == look, f"{label} changes look between figures"
    assert set(looks) == {"adam (lr=0.1)", "adam (lr=1)", "sgd (lr=0.09)", "torch:adam (lr=3)"}
    assert len(set(looks.values())) == 4
    plt.close("all")


def test_legend_label_shows_the_lr_used_also_torchs_default():
    assert plot_style.series_label("torch:adam", 0.001) == "torch:adam (lr=0.001)"
    assert plot_style.series_label("adam:lr=3", 3.0) == "adam (lr=3)"
    assert (
        plot_style.series_label("momentum", settings="lr=0.09, momentum=0.9")
        == "momentum (lr=0.09, momentum=0.9)"
    )
    # two specs differing beyond lr keep their difference; without a known lr the typed one is shown
    assert plot_style.series_label("adam:lr=0.05,betas=0.9/0.99", 0.05) == "adam (lr=0.05, betas=0.9/0.99)"
    assert plot_style.series_label("torch:adam:lr=10") == "torch:adam (lr=10)"


# --- kind 5: divergence never breaks a picture and is marked the same way ------------------------------


def test_diverged_run_is_marked_in_trajectory_and_loss_figures():
    trajectory = fake_trajectory([("sgd", "sgd"), ("adam", "adam")], diverge={"sgd"})
    surface = get_surface("elliptic")
    loss = plot_loss(trajectory, surface)
    labels = [line.get_label() for line in legend_lines(loss)]
    assert "sgd (lr=0.1), diverged at step 5 (NaN/inf)" in labels and "adam (lr=0.1)" in labels
    marks = diverged_marks(loss.axes[0])
    assert len(marks) == 1 and np.asarray(marks[0].get_offsets())[0, 0] == 5
    assert any(label.startswith("x on top edge") for label in labels)
    trajectories = plot_trajectories(trajectory, surface)
    assert "sgd (lr=0.1), diverged at step 5 (NaN/inf)" in [
        line.get_label() for line in legend_lines(trajectories)
    ]
    plt.close("all")


def test_linreg_divergence_plots_and_replots(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "compare",
            "sgd:lr=1.5",
            "--surface",
            "linreg",
            "--steps",
            "60",
            "--batch-size",
            "1,10",
            "--floor-lrs",
            "1e-3:0.3:3",
            "--out",
            str(out),
            "--format",
            "png",
        ],
    )
    assert result.exit_code == 0, result.output
    replot = CliRunner().invoke(main, ["plot", str(out), "--format", "png"])
    assert replot.exit_code == 0, replot.output
    study = optbench.load(out)
    figure = study.plot()["suboptimality"]
    for ax in figure.axes:
        assert diverged_marks(ax), "every panel's diverging run gets the x"
        low, high = ax.get_ylim()
        assert np.isfinite([low, high]).all() and high < 1e6
    plt.close("all")


def test_training_figure_marks_a_diverged_run_like_every_figure():
    epochs = pd.DataFrame(
        {
            "optimizer": ["sgd"] * 3 + ["adam"] * 3,
            "family": ["sgd"] * 3 + ["adam"] * 3,
            "epoch": [1, 2, 3] * 2,
            "val_loss": [1.0, 0.5, 0.3, 1.0, np.inf, np.nan],
            "val_accuracy": [0.5, 0.7, 0.8, 0.5, 0.1, 0.1],
            "train_accuracy": [0.5, 0.7, 0.8] * 2,
            "lr": [0.1] * 3 + [0.001] * 3,
            "diverged": [False] * 3 + [False, True, True],
        }
    )
    fig = plot_training(epochs)
    marks = diverged_marks(fig.axes[0])
    assert len(marks) == 1 and np.asarray(marks[0].get_offsets())[0, 0] == 2
    labels = fig.legends[0].get_texts()
    assert [text.get_text() for text in labels][:2] == ["sgd (lr=0.1)", "adam (lr=0.001), diverged (NaN/inf)"]
    plt.close(fig)


def test_training_figure_puts_a_diverged_runs_steps_at_their_epochs():
    # sgd: 2 whole epochs of 10 steps; adam stopped at step 2 of epoch 1 (it diverged there)
    epochs = pd.DataFrame(
        {
            "optimizer": ["sgd", "sgd", "adam"],
            "family": ["sgd", "sgd", "adam"],
            "epoch": [1, 2, 1],
            "val_loss": [1.0, 0.5, np.nan],
            "val_accuracy": [0.5, 0.7, 0.1],
            "train_accuracy": [0.5, 0.7, 0.1],
            "lr": [0.1, 0.1, 10.0],
            "diverged": [False, False, True],
        }
    )
    steps = pd.DataFrame(
        {
            "optimizer": ["sgd"] * 20 + ["adam"] * 3,
            "epoch": [1] * 10 + [2] * 10 + [1] * 3,
            "step": list(range(20)) + [0, 1, 2],
            "loss": [1.0] * 20 + [1.0, 50.0, 1e5],
            "lr": [0.1] * 20 + [10.0] * 3,
        }
    )
    fig = plot_training(epochs, steps)
    adam_steps = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 3]
    # step k ends at epoch (k + 1) / 10, not (k + 1) / 3
    np.testing.assert_allclose(adam_steps[0].get_xdata(), [0.1, 0.2, 0.3])
    marks = diverged_marks(fig.axes[0])
    assert len(marks) == 1 and np.asarray(marks[0].get_offsets())[0, 0] == pytest.approx(0.3)
    plt.close(fig)


def test_trajectory_x_marks_the_point_where_the_run_diverged():
    # bowl (0.1x² + 2y²), sgd lr 0.52: y grows |1 - 4·0.52| = 1.08-fold a step, x shrinks 0.896-fold;
    # f_1 = 2.5·0.896² + 8·1.08² = 11.3 > f_0 = 10.5 and f rises from there: diverged at step 1, at
    # (-5·0.896, 2·1.08) = (-4.48, 2.16); the run leaves the window (|y| > 3) only after step 5
    compare = optbench.compare(["sgd:lr=0.52"], "bowl", steps=60)
    assert compare.metrics["diverged_at"].iloc[0] == 1
    fig = plot_trajectories(compare.trajectory, get_surface("bowl"))
    colour = matplotlib.colors.to_rgba(next(iter(optimizer_looks(compare.trajectory).values())).color)
    marks = [
        c
        for c in fig.axes[0].collections
        if isinstance(c, PathCollection)
        and len(c.get_offsets()) == 1
        and np.allclose(c.get_edgecolor()[0], colour) | np.allclose(c.get_facecolor()[0], colour)
    ]
    assert len(marks) == 1
    np.testing.assert_allclose(np.asarray(marks[0].get_offsets())[0], [-4.48, 2.16], rtol=1e-12)
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert "sgd (lr=0.52), diverged at step 1 (finite, ended >10x start gap)" in legend
    plt.close(fig)


def test_the_diverged_legend_states_the_one_definition_not_nan_only():
    assert "NaN/inf" in plot_style.DIVERGED_RULE and "10x" in plot_style.DIVERGED_RULE
    assert "1000x" in plot_style.STOPPED_RULE
    assert plot_style.diverged_handle().get_label() == f"x on top edge: diverged ({plot_style.DIVERGED_RULE})"
    assert "runners." not in plot_style.diverged_handle().get_label()


# --- kind 2: a figure and its table agree ---------------------------------------------------------------


def test_tuning_heat_map_colours_the_criterion_and_stars_the_tables_winner():
    surface = get_surface("elliptic")
    plan = plan_tuning(
        ["sgd"], surface, ["lr", "momentum"], {"lr": "1e-3:0.3:6", "momentum": "0:0.9:4"}, 2, "steps-to-tol"
    )
    result = optbench.compare(["sgd"], surface, steps=60, tune=plan)
    winner = result.tuning.summary.iloc[0]
    fig = result.plot()["tune_grid_sgd"]
    ax = fig.axes[0]
    stars = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label().startswith("best")]
    assert len(stars) == 1
    np.testing.assert_allclose(stars[0].get_offsets()[0], [winner["lr"], winner["momentum"]])
    assert "steps-to-tol" in stars[0].get_label()
    assert fig.axes[1].get_ylabel().startswith("steps to tolerance")
    plt.close("all")


def test_grid_star_is_the_printed_best_cell():
    result = optbench.grid(
        "sgd", {"lr": list(np.geomspace(1e-3, 0.3, 6)), "momentum": [0.0, 0.5, 0.9]}, steps=30
    )
    best = result.best()
    ax = result.plot()["grid"].axes[0]
    stars = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label().startswith("best")]
    np.testing.assert_allclose(stars[0].get_offsets()[0], [best["lr"], best["momentum"]])
    plt.close("all")


def test_a_clipped_colour_bar_says_so():
    lrs, momenta = np.meshgrid(np.geomspace(1e-3, 1, 5), [0.0, 0.5])
    cells = pd.DataFrame(
        {
            "optimizer": "sgd",
            "family": "sgd",
            "lr": lrs.ravel(),
            "momentum": momenta.ravel(),
            "final_loss": np.geomspace(1e-60, 1e3, lrs.size),
            "diverged": False,
            "steps": 10,
        }
    )
    fig = plot_grid(cells, get_surface("elliptic"), "lr", "momentum")
    colourbar = fig.axes[1]
    assert "clipped" in colourbar.get_ylabel()
    assert colourbar.get_ylim()[0] == pytest.approx(3 - plot_style.LOSS_DECADES)
    plt.close(fig)


# --- kind 8: theory overlays follow the axes drawn ---------------------------------------------------------


def test_stability_edge_moves_with_dampening():
    surface = get_surface("elliptic")
    lam = max(surface.hessian_eigenvalues)
    result = optbench.grid(
        "sgd:momentum=0.9",
        {"lr": list(np.geomspace(0.05, 2, 8)), "dampening": list(np.linspace(0, 0.9, 6))},
        surface,
        steps=30,
    )
    edge = [
        line for line in result.plot()["grid"].axes[0].get_lines() if "stability edge" in line.get_label()
    ]
    lrs, dampening = (np.asarray(values, dtype=float) for values in edge[0].get_data())
    shown = np.isfinite(dampening)
    assert shown.sum() > 100
    np.testing.assert_allclose(lrs[shown] * (1 - dampening[shown]), 2 * 1.9 / lam, rtol=2e-3)  # 0.19/(1-d)
    # the edge is where the runs start to diverge
    metrics = result.metrics
    limit = 2 * 1.9 / lam / (1 - metrics["dampening"])
    assert not metrics[metrics["lr"] < 0.9 * limit]["diverged"].any()
    plt.close("all")


@pytest.mark.parametrize(
    "spec", ["sgd:lr=0.05,momentum=0.5,dampening=0.5", "sgd:lr=0.05,momentum=0.6,nesterov=True"]
)
def test_analytic_rate_of_dampened_and_nesterov_sgd_matches_the_measured_one(spec):
    import torch

    from optbench.runners.surface import run_surface
    from optbench.specs import parse_optimizer

    surface = get_surface("elliptic")
    run = run_surface(parse_optimizer(spec), surface, torch.tensor([surface.start]), 200)
    measured = theory.measured_rate(run.trajectory["step"], run.trajectory["loss"] - surface.minimum_value)
    analytic = theory.analytic_rate("sgd", parse_optimizer(spec).resolved(), surface.hessian_eigenvalues)
    assert measured == pytest.approx(analytic, rel=0.01)


def test_nesterov_stability_limit_is_the_edge_of_its_rate():
    eigenvalues = get_surface("elliptic").hessian_eigenvalues
    for momentum in (0.3, 0.9):
        limit = theory.stability_limit(eigenvalues, momentum, nesterov=True)
        assert limit == pytest.approx(2 * (1 + momentum) / ((1 + 2 * momentum) * max(eigenvalues)))
        assert (
            theory.nesterov_rate(0.99 * limit, momentum, eigenvalues)
            < 1
            < theory.nesterov_rate(1.01 * limit, momentum, eigenvalues)
        )


# --- kind 11: publication-ready ------------------------------------------------------------------------


def png_width(fig) -> int:
    buffer = io.BytesIO()
    with plot_style.style():
        fig.savefig(buffer, format="png", dpi=plot_style.PNG_DPI)
    plt.close(fig)
    return Image.open(io.BytesIO(buffer.getvalue())).size[0]


def test_one_resolution_policy_for_every_png(tmp_path):
    epochs = pd.DataFrame(
        {
            "optimizer": "sgd",
            "family": "sgd",
            "epoch": [1, 2],
            "val_loss": [1.0, 0.5],
            "val_accuracy": [0.5, 0.7],
            "train_accuracy": [0.5, 0.7],
            "lr": 0.1,
            "diverged": False,
        }
    )
    summary = pd.DataFrame(
        {
            "optimizer": "momentum",
            "lr_scale": "linear",
            "batch_size": [16, 64, 256],
            "final_accuracy": [0.8, 0.9, 0.85],
            "final_loss": [0.5, 0.3, 0.4],
            "diverged": False,
            "steps": 100,
            "lr": [0.01, 0.04, 0.16],
        }
    )
    trajectory = fake_trajectory([("sgd", "sgd")])
    low, high = (plot_style.PNG_DPI * inches for inches in plot_style.WIDTH_RANGE_INCHES)
    for fig in (plot_training(epochs), final_metric(summary), plot_loss(trajectory, get_surface("elliptic"))):
        assert low <= png_width(fig) <= high * 1.1


def test_sweep_axes_read_16_64_256_and_accuracy_in_percent():
    summary = pd.DataFrame(
        {
            "optimizer": "momentum",
            "lr_scale": "linear",
            "batch_size": [16, 64, 256],
            "final_accuracy": [0.8, 0.9, 0.85],
            "final_loss": [0.5, 0.3, 0.4],
            "diverged": False,
            "steps": 100,
            "lr": [0.01, 0.04, 0.16],
        }
    )
    fig = final_metric(summary)
    ax = fig.axes[0]
    fig.canvas = matplotlib.backends.backend_agg.FigureCanvasAgg(fig)
    fig.canvas.draw()
    assert [label.get_text() for label in ax.get_xticklabels()] == ["16", "64", "256"]
    assert "%" in ax.get_ylabel()
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [80, 90, 85])


def test_loss_axis_spanning_many_decades_stays_readable_and_titles_name_the_run():
    trajectory = fake_trajectory([("sgd", "sgd")], steps=300)  # 10·0.8^300 ≈ 1e-28
    trajectory.loc[trajectory["step"] == 300, "loss"] = 1e-63
    fig = plot_loss(trajectory, get_surface("elliptic"))
    low, high = fig.axes[0].get_ylim()
    assert high / low <= 10.0**plot_style.LOSS_DECADES * 1.01
    assert "1 trial, 300 steps" in fig.axes[0].get_title()
    plt.close(fig)


def test_a_schedule_gets_an_lr_panel_and_the_title_names_task_and_model():
    from optbench.plots.training import training_figures

    epochs = pd.DataFrame(
        {
            "optimizer": "sgd",
            "family": "sgd",
            "epoch": [1, 2],
            "val_loss": [1.0, 0.5],
            "val_accuracy": [0.5, 0.7],
            "train_accuracy": [0.5, 0.7],
            "lr": [0.1, 0.05],
            "diverged": False,
        }
    )
    steps = pd.DataFrame(
        {
            "optimizer": "sgd",
            "epoch": [1, 1, 2, 2],
            "step": [0, 1, 2, 3],
            "loss": [2.0, 1.5, 1, 0.8],
            "lr": [0.1, 0.1, 0.05, 0.05],
        }
    )
    summary = pd.DataFrame({"optimizer": ["sgd"], "task": ["digits"], "model": ["lenet"]})
    fig = training_figures({"epochs": epochs, "steps": steps, "summary": summary})["training"]
    assert len(fig.axes) == 3 and fig.axes[2].get_ylabel() == "learning rate"
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_ydata(), [0.1, 0.1, 0.05, 0.05])
    assert fig._suptitle.get_text() == "digits, lenet"
    assert plot_style.DIVERGED_Y < 1  # diverged marks sit inside the axes, clear of the titles
    plt.close(fig)


def test_noise_floor_marks_an_unstable_setting_instead_of_a_settled_point():
    from optbench.plots.fair import plot_noise_floor

    floors = pd.DataFrame(
        {
            "optimizer": "momentum:lr=0.003",
            "family": "sgd",
            "batch_size": 1,
            "lr": [0.01, 0.1, 0.3],
            "measured": [1e-6, 1e-5, 90.0],
            "theory": [1e-6, 1e-5, np.inf],
            "diverged": False,
        }
    )
    ax = plot_noise_floor(floors).axes[0]
    assert ax.get_title() == "momentum: lr on the x axis"  # the spec's own lr is not what the panel ran
    points = [line for line in ax.get_lines() if line.get_marker() == "o"][0]
    np.testing.assert_allclose(np.asarray(points.get_ydata(), dtype=float), [1e-6, 1e-5, np.nan])
    marks = diverged_marks(ax)
    assert len(marks) == 1 and np.asarray(marks[0].get_offsets())[0, 0] == 0.3
    plt.close("all")


def test_the_training_figure_states_the_blow_up_limit_it_stops_at():
    epochs = pd.DataFrame(
        {
            "optimizer": ["sgd"],
            "family": ["sgd"],
            "epoch": [1],
            "val_loss": [np.nan],
            "val_accuracy": [0.1],
            "train_accuracy": [0.1],
            "lr": [50.0],
            "diverged": [True],
        }
    )
    labels = [text.get_text() for text in plot_training(epochs).legends[0].get_texts()]
    assert f"x on top edge: diverged ({plot_style.STOPPED_RULE})" in labels
    plt.close("all")


def test_a_final_loss_scored_heat_map_names_its_colour_bar_after_the_loss_not_steps():
    cells = pd.DataFrame(
        {
            "optimizer": ["sgd"] * 4,
            "lr": [0.1, 0.1, 0.2, 0.2],
            "momentum": [0.0, 0.9, 0.0, 0.9],
            "score": [1e-8, 1e-2, 1e-5, 10.0],
            "diverged": [False] * 4,
        }
    )
    fig = plot_grid(cells, get_surface("elliptic"), "lr", "momentum", value="score", criterion="final-loss")
    bar = fig.axes[-1]
    assert bar.get_ylabel().startswith("log10(final f - f_min)")
    low, high = bar.get_ylim()
    assert low == pytest.approx(-8) and high == pytest.approx(1)  # log10 of the scores, not steps
    fig = plot_grid(cells, get_surface("elliptic"), "lr", "momentum", value="score", criterion="steps-to-tol")
    assert fig.axes[-1].get_ylabel().startswith("steps to tolerance")
    plt.close("all")
