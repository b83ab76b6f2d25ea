"""Series a reader can tell apart and name (issue 23, figures): a user's own optimizer keeps its class
name and a colour of its own in every figure kind, curves drawn on top of each other say so (decided
from the data), theory lines are told apart from their series, and sweep figures show what the table
used (a tuned rule's chosen lr, one perfect-scaling reference, x marks of visible series)."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from user_optimizers import SIGN_SGD  # noqa: E402

import optbench  # noqa: E402
from optbench.objectives import get_surface  # noqa: E402
from optbench.plots import coinciding as coincide  # noqa: E402
from optbench.plots import style as plot_style  # noqa: E402
from optbench.plots import sweeps as sweep_plots  # noqa: E402
from optbench.plots.bench import profile_figure  # noqa: E402
from optbench.plots.surfaces import THEORY_STYLE, plot_loss, plot_trajectories  # noqa: E402
from optbench.plots.training import plot_training  # noqa: E402

BUILT_IN_COLOURS = {mcolors.to_hex(look.color) for look in plot_style.FAMILY_LOOK.values()}


def hex_of(artist) -> str:
    return mcolors.to_hex(artist.get_color())


def legend_lines(fig) -> list:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    return [h for legend in legends for h in legend.legend_handles if isinstance(h, matplotlib.lines.Line2D)]


def legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def by_label(fig) -> dict:
    """First line of a legend label -> its legend handle."""
    return {line.get_label().split("\n")[0]: line for line in legend_lines(fig)}


def plotted(fig) -> dict:
    """First line of a label -> the line drawn with it (the data, where a legend handle has none)."""
    return {line.get_label().split("\n")[0]: line for ax in fig.axes for line in ax.get_lines()}


def surface_table(series, steps=20):
    """A surface trajectory table: series = [(optimizer, family, loss(step) -> float)]."""
    rows = []
    for name, family, loss in series:
        for step in range(steps + 1):
            rows.append(
                dict(optimizer=name, family=family, settings="", lr=0.1, trial=0, step=step,
                     x=loss(step), y=0.0, loss=loss(step), diverged=False)
            )  # fmt: skip
    return pd.DataFrame(rows)


# --- a user's own optimizer -------------------------------------------------------------------------


@pytest.fixture()
def user_file(tmp_path):
    path = tmp_path / "myopt.py"
    path.write_text(SIGN_SGD)
    return path


def test_a_users_class_is_named_by_its_class_in_its_own_colour_in_the_comparison_figures(user_file):
    spec = f"{user_file}:SignSGD:lr=0.1"
    result = optbench.compare(["adam", spec, "sgd"], "elliptic", steps=15)
    for name, fig in result.plot().items():
        lines = by_label(fig)
        assert "SignSGD (lr=0.1)" in lines, (name, list(lines))
        assert not any("myopt.py" in text for text in legend_texts(fig)), name
        colour = hex_of(lines["SignSGD (lr=0.1)"])
        assert colour not in BUILT_IN_COLOURS  # never a built-in's, so never Adam's orange
        assert colour == plot_style.EXTERNAL_COLOURS[0]
    plt.close("all")


def test_labels_of_every_spelling_of_a_users_optimizer():
    assert plot_style.series_label("dir/sub/myopt.py:MyOpt:lr=0.1") == "MyOpt (lr=0.1)"
    assert plot_style.series_label("mypkg.mod:MyOpt", 0.001) == "MyOpt (lr=0.001)"
    # the settings column of a table wins over the typed spec, as for built-ins
    assert plot_style.series_label("mypkg.mod:MyOpt:lr=0.1", settings="lr=0.1, beta=0.5") == (
        "MyOpt (lr=0.1, beta=0.5)"
    )
    assert plot_style.family_of("dir/myopt.py:MyOpt:lr=0.1") == "dir/myopt.py:MyOpt"
    assert plot_style.family_of("torch:adam:lr=1") == "adam"


def test_a_zoo_optimizer_is_named_by_its_class_and_package():
    pytest.importorskip("pytorch_optimizer")
    assert (
        plot_style.series_label("pytorch_optimizer:lion:lr=1e-4", 1e-4)
        == "Lion [pytorch_optimizer] (lr=0.0001)"
    )


def test_user_classes_never_take_a_built_in_colour_whatever_their_place():
    pairs = [("adam", "adam"), ("a.py:A", "a.py:A"), ("a.py:A:lr=2", "a.py:A"), ("m.n:B", "m.n:B")]
    pairs += [(f"m.n{k}:C", f"m.n{k}:C") for k in range(3)]
    looks = plot_style.assign_looks(pairs)
    for label, look in looks.items():
        if label != "adam":
            assert look.color in plot_style.EXTERNAL_COLOURS and look.color not in BUILT_IN_COLOURS, label
    assert len({look.color for look in looks.values()}) == len(pairs)


def test_every_figure_kind_names_a_users_class_and_gives_it_its_own_colour():
    spec, family = "lab/myopt.py:MyOpt:lr=0.1", "lab/myopt.py:MyOpt"
    epochs = pd.DataFrame(
        [
            dict(optimizer=name, family=fam, lr=0.1, epoch=e, val_loss=2.0 / e, val_accuracy=0.5 + 0.1 * e,
                 train_accuracy=0.5 + 0.1 * e, diverged=False)
            for name, fam in (("sgd", "sgd"), (spec, family))
            for e in (1, 2, 3)
        ]
    )  # fmt: skip
    profiles = pd.DataFrame(
        [dict(optimizer=name, tau=t, fraction=min(1.0, t / 4)) for name in ("adam", spec) for t in (1, 2, 4)]
    )
    ranking = pd.DataFrame(
        dict(optimizer=["adam", spec], score=[0.6, 0.5], score_low=[0.5, 0.4], score_high=[0.7, 0.6])
    )
    for fig in (plot_training(epochs), profile_figure(profiles, ranking)):
        lines = by_label(fig)
        ours = [label for label in lines if label.startswith("MyOpt (lr=0.1)")]
        assert ours and not any("myopt.py" in text for text in legend_texts(fig))
        assert hex_of(lines[ours[0]]) not in BUILT_IN_COLOURS
    summary, table = sweep_tables(optimizers=(spec,))
    fig = sweep_plots.figures(table, summary, pd.DataFrame())["sweep_loss_curves"]
    assert fig.get_suptitle().startswith("MyOpt (lr=0.1): loss curves")
    plt.close("all")


# --- curves drawn on top of each other ---------------------------------------------------------------


def test_torch_adam_under_adam_is_said_to_coincide_from_the_data_not_the_name():
    result = optbench.compare(["adam", "torch:adam", "sgd"], "elliptic", steps=30)
    figures = result.plot()
    for name in ("loss", "trajectories"):
        texts = legend_texts(figures[name])
        notes = [text for text in texts if coincide.COINCIDES in text]
        assert len(notes) == 1 and notes[0].startswith("torch:adam (lr=3)"), (name, texts)
        assert notes[0].endswith("(coincides with adam (lr=3))")
    plt.close("all")


def test_sgd_hidden_under_asgd_at_default_settings_is_noted():
    # ASGD's default decay (lambd=1e-4) moves its loss by at most 1% from SGD's over 100 steps: less than
    # a pixel on the loss axis, so the curves are one on the figure
    result = optbench.compare(["sgd", "asgd"], "elliptic", steps=100)
    fig = result.plot()["loss"]
    assert any(
        text.startswith("asgd") and "coincides with sgd (lr=0.09)" in text for text in legend_texts(fig)
    )
    plt.close("all")


def test_curves_apart_on_screen_are_not_said_to_coincide():
    table = surface_table(
        [
            ("sgd", "sgd", lambda t: 10 * 0.8**t),
            ("adam", "adam", lambda t: 10 * 0.8**t * 1.5),  # a visible factor 1.5 apart
            ("rmsprop", "rmsprop", lambda t: 10 * 0.8**t * (1 + 1e-12)),  # equal to rounding
        ]
    )
    fig = plot_loss(table, get_surface("elliptic"))
    texts = legend_texts(fig)
    assert [t for t in texts if coincide.COINCIDES in t] == [
        "rmsprop (lr=0.1)\n  (coincides with sgd (lr=0.1))"
    ]
    plt.close(fig)


def test_coinciding_needs_the_same_points_drawn():
    on = {0: np.array([[0.0, 1.0], [1.0, 2.0]])}
    gap = {0: np.array([[0.0, 1.0], [np.nan, np.nan]])}
    nothing = {0: np.full((2, 2), np.nan)}
    assert coincide.coinciding({"a": on, "b": on}) == {"b": "a"}
    assert coincide.coinciding({"a": on, "b": gap}) == {}
    assert coincide.coinciding({"a": nothing, "b": nothing}) == {}
    shifted = {0: on[0] + [0.0, 2 * coincide.COINCIDE_PIXELS]}
    assert coincide.coinciding({"a": on, "b": shifted}) == {}


THEORY_DASHES = tuple(THEORY_STYLE["linestyle"][1])


def dashes(line) -> tuple:
    """The on-off pattern a line is drawn with, before scaling by its width (matplotlib keeps no public
    getter; get_linestyle() reads '--' for every custom pattern)."""
    return tuple(line._unscaled_dash_pattern[1] or ())


def test_sgd_variants_and_their_theory_lines_are_told_apart_by_colour():
    specs = ["sgd", "sgd:lr=0.05", "sgd:momentum=0.5", "sgd:lr=0.02"]
    result = optbench.compare(specs, "elliptic", steps=60)
    fig = result.plot()["loss"]
    ax = fig.axes[0]
    series = [line for line in legend_lines(fig) if "analytic rate" not in line.get_label()]
    colours = [hex_of(line) for line in series]
    assert len(series) == 4 and len(set(colours)) == 4
    theory = [
        line for line in ax.get_lines() if line.get_label().startswith("_") and dashes(line) == THEORY_DASHES
    ]
    assert sorted(hex_of(line) for line in theory) == sorted(
        colours
    )  # one theory line per series, its colour
    assert all(dashes(line) != THEORY_DASHES for line in series)
    explained = [line for line in legend_lines(fig) if "analytic rate" in line.get_label()]
    assert len(explained) == 1 and dashes(explained[0]) == THEORY_DASHES
    plt.close("all")


# --- sweep figures --------------------------------------------------------------------------------------


def sweep_tables(
    optimizers=("sgd", "adam"), rules=("linear",), tuned_lrs=None, steps_to_target=None, seeds=1
):
    """A sweep's (summary, cell table): B = 16, 32, 64; steps to target 100, 50, 25 unless given
    (a function of (optimizer, rule, B, lr)); with `tuned_lrs` (B -> the lrs tried) the `tuned` rule
    has one cell per lr and lr_chosen marks the one with the fewest steps."""
    steps_to_target = steps_to_target or (lambda o, r, b, lr: 1600 / b)
    summary, table, cell = [], [], 0
    for optimizer in optimizers:
        for rule in rules:
            for b in (16, 32, 64):
                for seed in range(seeds):
                    lrs = tuned_lrs[b] if rule == "tuned" else [0.1 * b / 16]
                    reached = [steps_to_target(optimizer, rule, b, lr) for lr in lrs]
                    best = int(np.nanargmin([s if np.isfinite(s) else np.inf for s in reached]))
                    for k, lr in enumerate(lrs):
                        cell += 1
                        summary.append(
                            dict(cell=cell, task="linreg", optimizer=optimizer, family=optimizer, lr_scale=rule,
                                 batch_size=b, base_batch_size=16, base_lr=0.1, lr=lr, seed=seed, steps=100,
                                 final_loss=1e-3 * lr, final_accuracy=np.nan, steps_to_target=reached[k],
                                 target_accuracy=np.nan, target_loss=1e-3, diverged=False, lr_chosen=k == best)
                        )  # fmt: skip
                        for step in range(0, 101, 10):
                            table.append(
                                dict(cell=cell, task="linreg", optimizer=optimizer, family=optimizer,
                                     lr_scale=rule, batch_size=b, lr=lr, seed=seed, step=step,
                                     loss=lr * (step + 1.0) ** -1, eval_loss=lr * (step + 1.0) ** -1,
                                     eval_accuracy=np.nan)
                            )  # fmt: skip
    return pd.DataFrame(summary), pd.DataFrame(table)


def test_a_tuned_sweep_draws_the_chosen_lrs_and_their_loss_curves():
    tried = {b: [0.025 * b / 16 * 2.0**k for k in range(-2, 3)] for b in (16, 32, 64)}
    chosen = {16: tried[16][4], 32: tried[32][3], 64: tried[64][2]}

    def steps(o, r, b, lr):  # fewest steps at the chosen lr
        return 10.0 if math.isclose(lr, chosen[b]) else 50.0

    summary, table = sweep_tables(
        optimizers=("sgd",), rules=("tuned",), tuned_lrs=tried, steps_to_target=steps
    )
    figures = sweep_plots.figures(table, summary, pd.DataFrame())
    lr_line = plotted(figures["sweep_lr"])["tuned (best of 5 lrs per B)"]
    assert np.allclose(lr_line.get_xdata(), [16, 32, 64])
    assert np.allclose(lr_line.get_ydata(), [chosen[16], chosen[32], chosen[64]])
    ax = figures["sweep_loss_curves"].axes[0]
    for line in ax.get_lines():
        b = int(line.get_label().removeprefix("B="))
        # the drawn curve is the chosen lr's loss (lr / (step + 1)), not a median over the 5 tried
        assert np.allclose(line.get_ydata(), chosen[b] / (line.get_xdata() + 1.0))
    plt.close("all")


def test_a_multi_optimizer_sweep_has_one_perfect_scaling_line_and_only_marks_of_visible_series():
    def steps(o, r, b, lr):
        return 1600 / b if o == "sgd" else (np.nan if b == 64 else 2400 / b)

    summary, table = sweep_tables(steps_to_target=steps)
    fig = sweep_plots.steps_to_target(summary, pd.DataFrame())
    ax = fig.axes[0]
    references = [line for line in ax.get_lines() if "perfect scaling" in line.get_label()]
    assert len(references) == 1
    # through the fewest steps at the smallest B: 100 steps at B=16, so 25 at B=64
    assert np.allclose(references[0].get_ydata(), [100, 50, 25])
    drawn = {
        hex_of(line)
        for line in ax.get_lines()
        if not line.get_label().startswith("_") and np.isfinite(line.get_ydata()).any()
    }
    marks = [c for c in ax.collections if len(c.get_offsets())]
    assert marks
    for collection in marks:
        colour = mcolors.to_hex(collection.get_facecolor()[0])
        assert colour in drawn, "an x in a colour no visible series has"
    plt.close("all")


def rendered_ticks(fig, axis="y") -> list[str]:
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    ticks = (ax.yaxis if axis == "y" else ax.xaxis).get_ticklabels(which="both")
    return [t.get_text() for t in ticks if t.get_text()]


def test_sweep_axes_print_plain_numbers_and_titles_say_what_was_aggregated():
    summary, table = sweep_tables(steps_to_target=lambda o, r, b, lr: 90 / (b / 16) ** 0.3)
    for fig in (sweep_plots.steps_to_target(summary, pd.DataFrame()), sweep_plots.lr_used(summary)):
        labels = rendered_ticks(fig, "y") + rendered_ticks(fig, "x")
        assert labels and all(not any(c in text for c in "×^$") for text in labels), labels
        assert all(float(text.replace("−", "-")) > 0 for text in labels)
        title = fig.axes[0].get_title()
        assert "1 seed" in title and "over seeds" not in title
    two, _ = sweep_tables(steps_to_target=lambda o, r, b, lr: 1600 / b, seeds=2)
    assert (
        "2 seeds, median over seeds" in sweep_plots.steps_to_target(two, pd.DataFrame()).axes[0].get_title()
    )
    plt.close("all")


def test_the_trajectory_figure_labels_a_users_class_too(user_file):
    table = surface_table([("adam", "adam", lambda t: 0.9**t), (f"{user_file}:SignSGD", f"{user_file}:SignSGD",
                                                                 lambda t: 0.8**t)])  # fmt: skip
    fig = plot_trajectories(table, get_surface("elliptic"))
    assert "SignSGD (lr=0.1)" in by_label(fig)
    plt.close(fig)


def test_x_marks_of_a_sweep_series_that_diverged_at_every_batch_size_have_a_legend_owner():
    summary, _ = sweep_tables()
    summary.loc[summary["optimizer"] == "adam", "diverged"] = True
    fig = sweep_plots.final_metric(summary)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["sgd: linear (lr ∝ B)", "adam: linear (lr ∝ B): diverged at every B (x on top edge)"]
    marks = [c for c in ax.collections if len(c.get_offsets())]
    assert len(marks) == 1 and sorted(np.asarray(marks[0].get_offsets())[:, 0]) == [16, 32, 64]
    plt.close(fig)


@pytest.mark.parametrize(
    "names", [("adam", "radam"), ("adamw", "muon"), ("sgd", "nadam"), ("adamw", "momentum", "lion", "muon")]
)
def test_built_in_families_sharing_a_palette_colour_get_different_colours_in_one_figure(names):
    # eight Okabe-Ito colours for seventeen families: adam/radam, adamw/muon and sgd/nadam share one
    looks = plot_style.assign_looks([(name, name) for name in names])
    colours = [looks[name].color for name in names]
    assert len(set(colours)) == len(names), colours
    assert looks[names[0]] == plot_style.FAMILY_LOOK.get(names[0], looks[names[0]])  # the first keeps its own
