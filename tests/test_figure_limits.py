"""Figures say what they cannot show and use their canvas (issue 23, figures): a run at f_min exactly
is marked as such instead of vanishing, a clipped loss axis says so, a diverged series is called NaN/inf
only where a value was non-finite, no module name reaches a legend, heat maps fill the canvas, the GIF
is large enough to read and keeps the noise σ, and the training figure's panels and series are told
apart."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.transforms as mtransforms  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

import optbench  # noqa: E402
from optbench.experiments import plan_tuning  # noqa: E402
from optbench.objectives import get_surface  # noqa: E402
from optbench.plots import style as plot_style  # noqa: E402
from optbench.plots.grid_map import plot_grid  # noqa: E402
from optbench.plots.surfaces import animate, plot_loss  # noqa: E402
from optbench.plots.training import plot_regression, plot_training  # noqa: E402


def legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def marks_at(ax, y: float) -> list:
    """Scatter collections drawn at axes-fraction height `y` (the diverged and floor marks)."""
    return [
        c
        for c in ax.collections
        if len(c.get_offsets()) and np.allclose(np.asarray(c.get_offsets())[:, 1], y)
    ]


def surface_table(series, steps=20):
    rows = []
    for name, family, loss in series:
        for step in range(steps + 1):
            rows.append(
                dict(optimizer=name, family=family, settings="", lr=0.1, trial=0, step=step,
                     x=0.0, y=0.0, loss=loss(step), diverged=False)
            )  # fmt: skip
    return pd.DataFrame(rows)


# --- honest limits -------------------------------------------------------------------------------------


def test_a_run_reaching_f_min_exactly_is_marked_at_the_step_it_got_there():
    # SGD with lr = 1/2 on f = x² + 10y² from (2, 0): x_1 = 2 - 0.5·2·2 = 0, so f_1 = f_min = 0 exactly
    result = optbench.compare(["sgd:lr=0.5", "sgd:lr=0.1"], "elliptic", steps=20, start=(2.0, 0.0))
    assert result.trajectory.query("optimizer == 'sgd:lr=0.5' and step >= 1")["loss"].eq(0.0).all()
    fig = result.plot()["loss"]
    ax = fig.axes[0]
    texts = legend_texts(fig)
    assert any(text.startswith("sgd (lr=0.5), at f_min from step 1 (▼)") for text in texts), texts
    assert "▼ on bottom edge: reached f_min exactly or below float resolution" in texts
    floors = marks_at(ax, plot_style.FLOOR_Y)
    assert len(floors) == 1 and np.asarray(floors[0].get_offsets())[0, 0] == 1
    looks = plot_style.optimizer_looks(result.trajectory)
    assert mcolors.to_hex(floors[0].get_facecolor()[0]) == mcolors.to_hex(looks["sgd:lr=0.5"].color)
    # the other run reaches no floor and keeps its whole curve
    assert not any(text.startswith("sgd (lr=0.1),") for text in texts)
    plt.close("all")


def test_gaps_below_float_resolution_next_to_a_nonzero_minimum_are_the_floor():
    # 8 ulps of f_min = 100: 1.8e-13; a computed gap of 1e-14 there is rounding, not a loss value
    assert plot_style.float_floor(100.0) == 8 * np.finfo(float).eps * 100
    assert plot_style.float_floor(0.0) == 0.0
    steps = pd.DataFrame(
        dict(optimizer="sgd", family="sgd", step=range(6), suboptimality=[1.0, 1e-3, 1e-9, 1e-14, 0.0, 1e-14],
             diverged=False, lr=0.1)
    )  # fmt: skip
    fig = plot_regression(steps, f_star=100.0)
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    drawn = np.asarray(line.get_xdata())[np.isfinite(line.get_ydata())]
    np.testing.assert_array_equal(
        drawn, [1, 2, 3]
    )  # steps 0-2 (drawn at step + 1); the floor's are not drawn
    assert np.asarray(marks_at(ax, plot_style.FLOOR_Y)[0].get_offsets())[0, 0] == 4  # step 3, drawn at 3 + 1
    assert "▼ on bottom edge: reached f* exactly or below float resolution" in legend_texts(fig)
    plt.close(fig)


def test_curves_leaving_the_20_decade_axis_get_a_note_and_others_none():
    deep = surface_table([("sgd", "sgd", lambda t: 10.0 ** (2 - 2 * t)), ("adam", "adam", lambda t: 10.0)])
    shallow = surface_table(
        [("sgd", "sgd", lambda t: 10.0 ** (2 - 0.5 * t)), ("adam", "adam", lambda t: 10.0)]
    )
    notes = []
    for table in (deep, shallow):
        fig = plot_loss(table, get_surface("elliptic"))
        ax = fig.axes[0]
        low, high = ax.get_ylim()
        notes.append([t.get_text() for t in ax.texts if "run off the axis" in t.get_text()])
        plt.close(fig)
    assert np.log10(high / low) <= plot_style.LOSS_DECADES + 1e-9
    assert len(notes[0]) == 1 and f"it shows {plot_style.LOSS_DECADES} decades" in notes[0][0]
    assert notes[1] == []


def test_diverged_series_say_nan_inf_only_where_a_value_was_non_finite():
    table = surface_table(
        [
            ("sgd", "sgd", lambda t: np.inf if t >= 5 else 10.0),
            ("adam", "adam", lambda t: 10.0 * 3.0**t),  # finite, flagged by the threshold rule
            ("rmsprop", "rmsprop", lambda t: 10.0 * 0.5**t),
        ]
    )
    table.loc[(table["optimizer"] != "rmsprop") & (table["step"] >= 5), "diverged"] = True
    fig = plot_loss(table, get_surface("elliptic"))
    texts = legend_texts(fig)
    assert "sgd (lr=0.1), diverged at step 5 (NaN/inf)" in texts
    assert "adam (lr=0.1), diverged at step 5 (finite, ended >10x start gap)" in texts
    assert "rmsprop (lr=0.1)" in texts
    plt.close(fig)


def test_no_legend_of_a_comparison_names_a_module():
    specs = ["sgd:lr=0.2", "adam"]
    plan = plan_tuning(specs, "elliptic", over=("lr",), ranges={"lr": "1e-3:10:9"}, starts=2)
    result = optbench.compare(specs, "elliptic", steps=20, tune=plan)
    for name, fig in result.plot().items():
        for text in legend_texts(fig) + [t.get_text() for ax in fig.axes for t in ax.texts]:
            assert "runners." not in text and "optbench." not in text, (name, text)
    plt.close("all")


# --- layout ---------------------------------------------------------------------------------------------


def test_a_heat_map_uses_its_canvas():
    axes = {"lr": [1e-3, 1e-2, 0.1, 0.3], "momentum": [0.0, 0.5, 0.9]}
    result = optbench.grid("sgd", axes, "elliptic", steps=30)
    fig = result.plot()["grid"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    drawn = mtransforms.Bbox.union([ax.get_tightbbox(renderer) for ax in fig.axes])  # map and colour bar
    legend = fig.legends[0].get_window_extent(renderer)
    whole = fig.get_tightbbox(renderer)  # in inches: what a saved PNG holds
    whole = mtransforms.Bbox.from_extents(*(np.asarray(whole.extents) * fig.dpi))
    # the legend sits under the map and its colour bar, not beside them in an empty third of the canvas
    assert legend.x0 >= drawn.x0 - 2 and legend.x1 <= drawn.x1 + 2
    assert drawn.width >= 0.95 * whole.width
    plt.close("all")


def test_the_gif_is_large_enough_to_read_and_keeps_the_noise_in_its_title(monkeypatch):
    result = optbench.compare(["sgd", "adam"], "elliptic", steps=10, trials=2, noise=0.5)
    titles = []
    original = matplotlib.axes.Axes.set_title

    def record(ax, text, *args, **kwargs):
        titles.append(text)
        return original(ax, text, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", record)
    gif = Image.open(io.BytesIO(result.animation()))
    assert gif.size[0] >= 800
    assert titles and "gradient noise σ = 0.5" in titles[-1]
    direct = Image.open(io.BytesIO(animate(result.trajectory, get_surface("elliptic"), frames=3, noise=0.25)))
    assert direct.size == gif.size and "gradient noise σ = 0.25" in titles[-1]


def two_sgd_training(same=False):
    """Epoch and step tables of sgd at lr 0.1 and 0.5 (halved after epoch 1); `same`: equal curves."""
    rows = []
    for name, lr in (("sgd", 0.1), ("sgd:lr=0.5", 0.5)):
        gain = 1.0 if same else 1 + lr
        for epoch in (1, 2, 3):
            rows.append(dict(optimizer=name, family="sgd", epoch=epoch, lr=lr * (0.5 if epoch > 1 else 1),
                             val_loss=1.0 / epoch / gain, val_accuracy=(0.6 + 0.1 * epoch) / gain,
                             train_accuracy=0.6 + 0.1 * epoch, diverged=False))  # fmt: skip
    epochs = pd.DataFrame(rows)
    steps = pd.DataFrame(
        [dict(optimizer=name, epoch=s // 4 + 1, step=s, loss=2.0 / (s + 1), lr=0.1 if s < 4 else 0.05)
         for name in ("sgd", "sgd:lr=0.5") for s in range(12)]
    )  # fmt: skip
    return epochs, steps


def test_the_training_figure_gives_two_sgd_specs_two_colours_and_its_titles_do_not_overlap():
    epochs, steps = two_sgd_training()
    fig = plot_training(epochs, steps, title="digits, lenet")
    validation = [line for line in fig.axes[1].get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in validation] == ["sgd (lr=0.1)", "sgd (lr=0.5)"]
    assert validation[0].get_color() != validation[1].get_color()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes] + [
        fig._suptitle.get_window_extent(renderer)
    ]
    assert len(boxes) == 4  # three panels (the lr changes) and the figure's title
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            assert not first.overlaps(second), (first, second)
    plt.close(fig)


def test_the_heat_map_title_names_a_users_class_not_its_file():
    cells = pd.DataFrame(
        [dict(optimizer="lab/my.py:MyOpt:lr=0.1", lr=lr, beta=b, final_loss=lr * b + 1e-3, diverged=False)
         for lr in (0.01, 0.1, 1.0) for b in (0.1, 0.5, 0.9)]
    )  # fmt: skip
    fig = plot_grid(cells, get_surface("elliptic"), "lr", "beta")
    assert fig.axes[0].get_title().startswith("MyOpt on elliptic")
    plt.close(fig)


def test_the_training_figure_says_when_two_runs_draw_the_same_curves():
    epochs, steps = two_sgd_training(same=True)
    fig = plot_training(epochs, steps)
    assert [text for text in legend_texts(fig) if "coincides" in text] == [
        "sgd (lr=0.5)\n  (coincides with sgd (lr=0.1))"
    ]
    plt.close(fig)
