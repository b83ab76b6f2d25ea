"""`train --seeds K`: each optimizer runs with seeds seed..seed+K-1, the tables tell them apart by a
`seed` column, a rerun resumes, and the figures draw the mean with its 95% Student-t band, whose
polygon is checked against the interval computed here from the tables (scipy's t quantile)."""

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.collections import PolyCollection
from scipy.stats import t as student_t

import optbench
from optbench.cli import main
from optbench.errors import OptbenchError
from optbench.seeds import seed_band

matplotlib.use("Agg")

FIXTURE = str(Path(__file__).parent / "fixtures" / "macbeth-act1.txt")
LM = dict(task="shakespeare-tiny", data_dir=FIXTURE, device="cpu", max_steps=20, eval_every_steps=10)


def test_seed_band_is_the_student_t_interval_of_the_mean():
    runs = pd.DataFrame(
        {"seed": [0, 1, 2, 0, 1], "step": [1, 1, 1, 2, 2], "loss": [1.0, 2.0, 3.0, 5.0, np.inf]}
    )
    band = seed_band(runs, "step", "loss")
    # step 1: mean 2, s = 1, n = 3; t_{0.975, 2} = 4.303 (every t table)
    assert band["step"].tolist() == [1, 2] and band["seeds"].tolist() == [3, 1]
    assert band.loc[0, "mean"] == 2.0
    assert band.loc[0, "high"] - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert band.loc[0, "low"] == pytest.approx(2.0 - 4.302653 / math.sqrt(3), rel=1e-6)
    # step 2: the diverged seed's inf does not count, and one seed has no interval
    assert band.loc[1, "mean"] == 5.0 and np.isnan(band.loc[1, "low"]) and np.isnan(band.loc[1, "high"])


def _interval(values, log: bool = False) -> tuple[float, float]:
    values = np.log(np.asarray(values, dtype=float)) if log else np.asarray(values, dtype=float)
    half = student_t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    low, high = values.mean() - half, values.mean() + half
    return (math.exp(low), math.exp(high)) if log else (low, high)


def _check_bands(
    ax, table: pd.DataFrame, x: str, y: str, colors: dict, scale: float = 1.0, log: bool = False
) -> None:
    """Every optimizer has one band in its colour whose polygon's top and bottom edges are the t
    interval of `y` over the table's seeds at each `x`."""
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == table["optimizer"].nunique()
    for band, (name, runs) in zip(bands, table.groupby("optimizer", sort=False), strict=True):
        assert matplotlib.colors.to_hex(band.get_facecolor()[0]) == matplotlib.colors.to_hex(colors[name])
        vertices = band.get_paths()[0].vertices
        for at, rows in runs.groupby(x):
            assert rows["seed"].nunique() == 3
            low, high = (scale * v for v in _interval(rows[y], log))
            ys = vertices[np.isclose(vertices[:, 0], at), 1]
            assert ys.min() == pytest.approx(low, rel=1e-9) and ys.max() == pytest.approx(high, rel=1e-9)


def _line_colors(ax, table: pd.DataFrame) -> dict:
    """Optimizer name -> the colour of its labelled (mean) line."""
    names = set(table["optimizer"])
    return {
        line.get_label().split(" ")[0]: line.get_color()
        for line in ax.get_lines()
        if line.get_label().split(" ")[0] in names
    }


def test_language_model_seeds_tables_and_band(tmp_path):
    result = optbench.train(["adamw", "momentum"], seeds=3, out=tmp_path / "run", **LM)
    for name in ("steps", "epochs", "summary", "evaluations"):
        table = getattr(result, name)
        assert list(table.columns[:3]) == ["optimizer", "family", "seed"]
        assert table.groupby("optimizer")["seed"].unique().map(sorted).map(list).tolist() == [[0, 1, 2]] * 2
    assert sorted(result.runs) == [f"{o} seed={s}" for o in ("adamw", "momentum") for s in range(3)]
    # seed 0 of the three is the single-seed run, number for number
    single = optbench.train(["adamw"], **LM)
    kept = result.steps[(result.steps["optimizer"] == "adamw") & (result.steps["seed"] == 0)]
    assert kept["loss"].tolist() == single.steps["loss"].tolist()
    assert result.summary.groupby("optimizer")["final_val_loss"].nunique().tolist() == [3, 3]

    figure = result.plot()["training"]
    ax = figure.axes[0]
    _check_bands(ax, result.evaluations, "step", "val_loss", _line_colors(ax, result.evaluations))
    mean = next(line.get_ydata() for line in ax.get_lines() if line.get_label() == "adamw")
    adamw = result.evaluations[result.evaluations["optimizer"] == "adamw"]
    assert mean == pytest.approx(adamw.groupby("step")["val_loss"].mean().to_numpy(), rel=1e-12)
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert any("mean of 3 seeds" in text and "95% t interval" in text for text in legend)

    # the same command into the same folder resumes: nothing is trained again, the tables are the same
    again = optbench.train(["adamw", "momentum"], seeds=3, out=tmp_path / "run", **LM)
    assert again.runs == {}
    pd.testing.assert_frame_equal(
        again.summary.drop(columns="train_time"), result.summary.drop(columns="train_time")
    )
    loaded = optbench.load(result.save(tmp_path / "run"))
    assert loaded.meta["seeds"] == 3 and loaded.evaluations["seed"].nunique() == 3


def test_classification_seeds_band_on_loss_and_accuracy():
    result = optbench.train(
        ["sgd", "adam"], task="digits", model="mlp", epochs=2, device="cpu", seeds=3, seed=4
    )
    assert sorted(result.epochs["seed"].unique()) == [4, 5, 6]
    figure = result.plot()["training"]
    loss_ax, accuracy_ax = figure.axes[:2]
    colors = _line_colors(accuracy_ax, result.epochs)
    _check_bands(loss_ax, result.epochs, "epoch", "val_loss", colors)
    _check_bands(accuracy_ax, result.epochs, "epoch", "val_accuracy", colors, scale=100)


def test_linreg_seeds_band_and_one_seed_rule():
    result = optbench.train(["sgd"], task="linreg", seeds=3, epochs=1)
    table = result.regression
    assert table["seed"].unique().tolist() == [0, 1, 2] and result.meta["seeds"] == 3
    # each seed draws its own samples: different gaps from the first step on
    assert table[table["step"] == 0]["suboptimality"].nunique() == 3
    figure = result.plot()["regression"]
    ax = figure.axes[0]
    shifted = table.assign(step=table["step"] + 1)
    # a gap spanning decades: the geometric mean and the t interval of ln(f - f*), never below zero
    _check_bands(ax, shifted, "step", "suboptimality", {"sgd": ax.get_lines()[0].get_color()}, log=True)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any("geometric mean of 3 seeds" in text for text in legend)
    assert "f* =" not in ax.get_title()  # f* differs per seed's samples


@pytest.mark.parametrize("seeds", [0, -1, True, 1.5])
def test_bad_seed_counts_are_refused(seeds):
    with pytest.raises(OptbenchError, match="seeds must be a whole number >= 1"):
        optbench.train(["adamw"], seeds=seeds, **LM)


def test_scalar_takes_one_seed_and_the_cli_says_so_in_one_line(tmp_path):
    with pytest.raises(OptbenchError, match="--seeds does not apply to task 'scalar'"):
        optbench.train(["sgd"], task="scalar", seeds=2)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["train", "--task", "scalar", "--seeds", "2", "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert "--seeds does not apply to task 'scalar'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["train", "--task", "linreg", "--seeds", "0", "--out", str(out)])
    assert result.exit_code == 2 and "seeds must be a whole number >= 1, got 0" in result.output


def test_seed_band_on_a_log_scale_is_the_geometric_mean_and_its_interval():
    runs = pd.DataFrame({"seed": [0, 1, 2], "step": [1, 1, 1], "gap": [1e-2, 1e-4, 1e-6]})
    band = seed_band(runs, "step", "gap", log=True).iloc[0]
    half = 4.302653 * math.log(100) / math.sqrt(3)  # ln values -4.6, -9.2, -13.8: s = ln 100
    assert band["mean"] == pytest.approx(1e-4, rel=1e-9)
    assert band["low"] == pytest.approx(1e-4 * math.exp(-half), rel=1e-6) and band["low"] > 0
    assert band["high"] == pytest.approx(1e-4 * math.exp(half), rel=1e-6)
