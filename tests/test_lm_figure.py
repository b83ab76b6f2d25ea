"""docs/lm_figure.py on the tiny model and the shipped fixture: the four optimizers with seeds into a
results folder without cells, the page's table from the saved tables (the interval recomputed here),
and docs/make_images.py redrawing the figure from the saved folder (its tables in the fingerprint)."""

import importlib.util
import math
import sys
from pathlib import Path

import matplotlib
import pytest
from matplotlib.collections import PolyCollection
from scipy.stats import t as student_t

import optbench

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = str(ROOT / "tests" / "fixtures" / "macbeth-act1.txt")


def load_script(name: str, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        script = load_script("lm_figure", monkeypatch)
        folder = tmp_path_factory.mktemp("lm") / "run"
        script.run(folder, "shakespeare-tiny", FIXTURE, seeds=2, threads=1, max_steps=10)
        return script, folder


def test_run_saves_four_optimizers_with_seeds_and_no_cells(saved):
    _, folder = saved
    assert not (folder / "cells").exists() and (folder / "meta.json").exists()
    result = optbench.load(folder)
    assert list(result.summary["optimizer"].unique()) == ["adamw", "momentum", "lion", "muon"]
    assert result.summary.groupby("optimizer")["seed"].nunique().tolist() == [2, 2, 2, 2]
    recipes = {run["optimizer"]: (run["recipe"] or {}).get("recipe") for run in result.meta["runs"]}
    assert recipes["muon"] == "muon" and recipes["adamw"] == "no-decay"  # one command, each its own groups
    figure = result.plot()["training"]
    assert len([c for c in figure.axes[0].collections if isinstance(c, PolyCollection)]) == 4
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert any(label.startswith("bigram baseline") for label in labels)
    assert any(label.startswith("unigram entropy") for label in labels)


def test_table_rows_are_the_mean_and_t_interval_of_the_saved_summary(saved):
    script, folder = saved
    text = script.table(folder)
    summary = optbench.load(folder).summary
    rows = [
        line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "---" not in line
    ][1:]
    assert [row[0].strip() for row in rows] == ["adamw", "momentum", "lion", "muon"]
    for row in rows:
        values = summary.loc[summary["optimizer"] == row[0].strip(), "final_val_loss"].to_numpy()
        half = student_t.ppf(0.975, 1) * values.std(ddof=1) / math.sqrt(2)
        mean, interval = row[2].split(" [")
        low, high = (float(v) for v in interval.rstrip("] ").split(", "))
        assert float(mean) == pytest.approx(values.mean(), abs=5e-4)
        assert low == pytest.approx(values.mean() - half, abs=5e-4) and high == pytest.approx(
            values.mean() + half, abs=5e-4
        )


def test_make_images_redraws_a_saved_run_and_fingerprints_its_tables(saved, tmp_path, monkeypatch):
    _, folder = saved
    images = load_script("make_images", monkeypatch)
    monkeypatch.setattr(images, "ROOT", folder.parent)
    monkeypatch.setattr(images, "IMAGES", tmp_path)
    monkeypatch.setattr(images, "MANIFEST", tmp_path / "made_with.json")
    recipe = images.Recipe("plot run", {"training.png": "lm.png"}, drawn_by=("training",), saved="run")
    monkeypatch.setattr(images, "RECIPES", [recipe])
    monkeypatch.setattr(images, "SHARED_DRAWING_CODE", [])
    monkeypatch.setattr(images, "PLOTS", ROOT / "optbench" / "plots")
    monkeypatch.setattr(images, "drawing_code", lambda recipe: [])
    before = images.fingerprint(recipe)
    images.regenerate({"lm.png"})
    assert (tmp_path / "lm.png").stat().st_size > 0 and not (folder / "training.png").exists()
    assert matplotlib.image.imread(tmp_path / "lm.png").shape[1] > 500
    summary = folder / "summary.parquet"
    kept = summary.read_bytes()
    summary.write_bytes(kept + b"\0")
    try:
        assert images.fingerprint(recipe) != before  # new tables make the image stale
    finally:
        summary.write_bytes(kept)


def test_the_tuned_lrs_are_the_task_defaults_of_the_comparison():
    from optbench.runners.training import TrainSpec
    from optbench.tasks import defaults as D

    def lr(optimizer, task="shakespeare"):
        return TrainSpec(optimizer=optimizer, task=task, model="transformer").resolved()["optimizer_hparams"][
            "lr"
        ]

    tuned = D.LANGUAGE_MODEL["shakespeare"]["tuned_lr"]
    assert set(tuned) == {"adamw", "momentum", "lion", "muon"}
    for name, value in tuned.items():
        assert lr(name) == value
    assert lr("adamw") == 3e-3 and D.LANGUAGE_MODEL["shakespeare"]["lr"] == 1e-3  # tuned; nanoGPT's row kept
    assert lr("adam") == 1e-3  # the rest of the Adam family keeps nanoGPT's
    assert lr("lion:lr=0.5") == 0.5  # a user's lr wins
    assert lr("lion", "shakespeare-tiny") == 1e-4  # the tiny task keeps Lion's class default
    muon = TrainSpec(optimizer="muon", task="shakespeare", model="transformer").resolved()
    assert muon["recipe"]["adamw_hparams"]["lr"] == 3e-3  # Muon's AdamW part: AdamW's defaults
