"""Hostile files (issue 24): damaged results folders for `optbench plot` and `optbench.load`, hostile
configs and output names. Each is one line naming the problem and the value, exit status 2, no traceback,
nothing written (`test_hostile.refused`), refused before any run starts or any figure is drawn.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_hostile import refused

import optbench
from optbench import bounded
from optbench.errors import OptbenchError


def results_folder(tmp_path, meta_json: str | None = None):
    folder = tmp_path / "results"
    folder.mkdir()
    if meta_json is not None:
        (folder / "meta.json").write_text(meta_json)
    return folder


def plot_refused(tmp_path, folder, expected: str):
    before = sorted(path.name for path in folder.iterdir())
    refused(["plot", str(folder)], tmp_path / "out", expected)
    assert sorted(path.name for path in folder.iterdir()) == before
    with pytest.raises(OptbenchError) as raised:
        optbench.load(folder)
    assert expected in str(raised.value)


def test_a_meta_json_that_is_a_folder_is_one_line(tmp_path):
    folder = results_folder(tmp_path)
    (folder / "meta.json").mkdir()
    plot_refused(tmp_path, folder, f"meta.json {folder / 'meta.json'} is a folder, not a file")


def test_a_meta_json_linked_to_dev_zero_is_refused_without_reading_it(tmp_path):
    folder = results_folder(tmp_path)
    (folder / "meta.json").symlink_to("/dev/zero")
    plot_refused(tmp_path, folder, f"meta.json {folder / 'meta.json'} is not a regular file")


def test_a_meta_json_past_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "MAX_BYTES", 2**20)
    folder = results_folder(tmp_path, json.dumps({"kind": "compare", "spec": {"pad": "x" * 2**20}}))
    plot_refused(tmp_path, folder, "is larger than 1 MB: not one optbench wrote")


@pytest.mark.parametrize(
    "text",
    ["[" * 200_000 + "]" * 200_000, '{"kind": "compare", "spec": ' + '{"a": ' * 101 + "1" + "}" * 102],
    ids=["200000-deep list", "101-deep spec"],
)
def test_deeply_nested_meta_json_is_one_line(tmp_path, text):
    folder = results_folder(tmp_path, text)
    plot_refused(tmp_path, folder, "nested deeper than 100 levels")


def test_json_nesting_at_the_limit_is_read(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100 + "]" * 100)
    deepest = []
    for _ in range(99):
        deepest = [deepest]
    assert bounded.load_json(path) == deepest
    path.write_text("[" * 101 + "]" * 101)
    with pytest.raises(OptbenchError, match="nested deeper than 100 levels"):
        bounded.load_json(path)


# a 1 kB billion laughs: nine levels of nine aliases each, 9^9 = 387,420,489 strings once expanded
BOMB = "hparams:\n  a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"  {level}: &{level} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, level in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_a_yaml_anchor_bomb_is_refused_from_its_node_graph(tmp_path):
    assert len(BOMB) < 1024
    config = tmp_path / "bomb.yaml"
    config.write_text(BOMB)
    refused(
        ["sweep", "--config", str(config), "--task", "surface:elliptic"],
        tmp_path / "out",
        f"{config} expands to more than 100,000 values through its YAML aliases",
    )


def test_yaml_aliases_within_the_limit_are_expanded_as_usual(tmp_path):
    config = tmp_path / "ok.yaml"
    config.write_text("a: &a [1, 2]\nb: [*a, *a]\n")
    assert bounded.load_yaml(config) == {"a": [1, 2], "b": [[1, 2], [1, 2]]}
    config.write_text(
        "a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + "c: [" + "*b, " * 50_000 + "]\n"
    )
    with pytest.raises(OptbenchError, match="expands to more than 100,000 values"):
        bounded.load_yaml(config)


@pytest.mark.parametrize(
    "text", ["task: " + "[" * 100_000 + "]" * 100_000, "hparams:\n  lr: " + "[" * 150 + "1" + "]" * 150]
)
def test_a_deeply_nested_yaml_config_is_one_line(tmp_path, text):
    config = tmp_path / "deep.yaml"
    config.write_text(text + "\n")
    refused(
        ["sweep", "--config", str(config), "--task", "surface:elliptic"],
        tmp_path / "out",
        f"{config} is nested deeper than 100 levels",
    )


def test_a_config_that_is_a_folder_or_a_device_is_one_line(tmp_path):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    refused(["sweep", "--config", str(folder)], tmp_path / "out", f"File '{folder}' is a directory")
    refused(
        ["sweep", "--config", "/dev/zero"], tmp_path / "out", "config file /dev/zero is not a regular file"
    )


LONG_OUT = [
    "compare sgd --steps 5",
    "grid sgd --lr 0.01:0.1:2 --momentum 0:0.9:2 --steps 5",
    "train --task linreg --epochs 1",
    "train --epochs 1",
    "sweep --task surface:elliptic --steps 5",
    "bench sgd --suite quick",
]


@pytest.mark.parametrize("line", LONG_OUT)
@pytest.mark.parametrize("name", ["x" * 256, "é" * 128], ids=["256 ascii", "128 two-byte"])
def test_an_out_name_over_255_bytes_is_refused_before_any_work(tmp_path, line, name):
    out = tmp_path / "out"
    refused(
        [*line.split(), "--out", str(out / name)],
        out,
        f"output folder name '{name[:37]}...' is 256 bytes long; a file system allows at most 255",
    )


def test_an_out_name_of_255_bytes_is_accepted_and_the_library_refuses_256(tmp_path):
    out = tmp_path / ("x" * 255)
    assert optbench.compare("sgd", steps=3).save(out) == out
    assert (out / "meta.json").exists()
    with pytest.raises(OptbenchError, match="is 256 bytes long"):
        optbench.sweep(task="surface:elliptic", steps=3, folder=tmp_path / ("y" * 256))
    assert sorted(os.listdir(tmp_path)) == ["x" * 255]


# --- damaged tables: one schema check per result kind (experiments/result.py) ------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Results folders of each kind, saved once; a test damages its own copy."""
    root = tmp_path_factory.mktemp("saved")
    optbench.compare(["sgd", "adam"], steps=5).save(root / "compare")
    optbench.grid("sgd", {"lr": [0.01, 0.05, 0.1], "momentum": [0.0, 0.5, 0.9]}, steps=5).save(root / "grid")
    optbench.train("sgd", task="linreg", epochs=1).save(root / "linreg")
    optbench.train("sgd", task="digits", epochs=1).save(root / "train")
    optbench.sweep(task="surface:elliptic", steps=5, batch_sizes=[16, 64], folder=root / "sweep").save()
    shutil.rmtree(root / "sweep" / "cells")  # read from its merged tables (cells: below)
    return root


def damaged(saved, tmp_path, kind: str, table: str, damage) -> Path:
    """A copy of the saved `kind` folder whose `table` is `damage(table)`, or gone when damage is None."""
    folder = tmp_path / kind
    shutil.copytree(saved / kind, folder)
    path = folder / f"{table}.parquet"
    if damage is None:
        path.unlink()
    else:
        damage(pd.read_parquet(path)).to_parquet(path)
    return folder


def as_text(column):
    return lambda table: table.assign(**{column: table[column].astype(str) + "x"})


def nan_in(column):
    return lambda table: table.assign(**{column: np.nan})


DAMAGES = [
    ("compare", "metrics", as_text("final_loss"), "column 'final_loss' of {path} holds '"),
    ("compare", "trajectory", as_text("loss"), "column 'loss' of {path} holds '"),
    ("grid", "metrics", as_text("lr"), "column 'lr' of {path} holds '"),
    ("linreg", "regression", as_text("suboptimality"), "column 'suboptimality' of {path} holds '"),
    ("sweep", "summary", as_text("final_loss"), "column 'final_loss' of {path} holds '"),
    ("train", "epochs", as_text("diverged"), "column 'diverged' of {path} holds 'Falsex' where true/false"),
    ("compare", "metrics", lambda t: t.iloc[:0], "{path} has no rows"),
    ("grid", "metrics", lambda t: t.iloc[:0], "{path} has no rows"),
    ("linreg", "regression", lambda t: t.iloc[:0], "{path} has no rows"),
    ("sweep", "sweep", lambda t: t.iloc[:0], "{path} has no rows"),
    ("train", "summary", lambda t: t.iloc[:0], "{path} has no rows"),
    ("compare", "trajectory", nan_in("step"), "column 'step' of {path} holds nan in row 0, where a finite"),
    ("grid", "metrics", nan_in("momentum"), "column 'momentum' of {path} holds nan in row 0"),
    ("sweep", "sweep", nan_in("batch_size"), "column 'batch_size' of {path} holds nan in row 0"),
    ("compare", "trajectory", nan_in("loss"), "column 'loss' of {path} holds no finite value"),
    ("linreg", "regression", nan_in("suboptimality"), "column 'suboptimality' of {path} holds no finite"),
    ("train", "steps", nan_in("loss"), "column 'loss' of {path} holds no finite value"),
    ("grid", "metrics", lambda t: t.iloc[:1], "{path} holds 1 row(s) where the run its meta.json records made 9"),
    ("compare", "metrics", lambda t: t.iloc[:1], "{path} holds 1 row(s) where the run its meta.json records made 2"),
    ("sweep", "summary", lambda t: t.iloc[:1], "summary.parquet holds 1 row(s) where sweep.parquet holds 2 cell(s)"),
    ("train", "epochs", None, "{folder} lacks epochs.parquet, a table of its train result"),
    ("sweep", "sweep", lambda t: t.assign(cell="0123456789abcdef"), "{path} holds cell 0123456789abcdef, which"),
]  # fmt: skip


@pytest.mark.parametrize(
    "kind, table, damage, expected", DAMAGES, ids=[f"{k}-{t}-{i}" for i, (k, t, _, _) in enumerate(DAMAGES)]
)
def test_a_damaged_table_is_refused_in_one_line_before_any_figure(
    saved, tmp_path, kind, table, damage, expected
):
    folder = damaged(saved, tmp_path, kind, table, damage)
    plot_refused(tmp_path, folder, expected.format(path=folder / f"{table}.parquet", folder=folder))


def test_every_column_diverging_is_a_result_drawn_not_a_damaged_table(saved, tmp_path):
    def every_cell_diverged(table):
        return table.assign(final_loss=np.nan, diverged=True, best=False)

    folder = damaged(saved, tmp_path, "grid", "metrics", every_cell_diverged)
    result = optbench.load(folder)
    assert result.metrics["diverged"].all()
    figure = result.plot()["grid"]
    figure.canvas.draw()
    assert figure.axes[0].get_xlabel() and figure.axes[0].get_ylabel()


def test_a_train_folder_whose_tables_are_gone_is_refused_not_drawn_as_nothing(saved, tmp_path):
    for kind in ("train", "linreg"):
        folder = tmp_path / kind
        shutil.copytree(saved / kind, folder)
        for path in folder.glob("*.parquet"):
            path.unlink()
        plot_refused(tmp_path, folder, f"{folder} holds no result tables yet: nothing to draw")


def test_a_foreign_table_under_a_cell_key_of_the_sweep_is_never_merged(tmp_path):
    folder = tmp_path / "sweep"
    optbench.sweep(task="surface:elliptic", steps=5, batch_sizes=[16, 64], folder=folder)
    first, second = sorted((folder / "cells").glob("*.sweep.parquet"))
    second.write_bytes(first.read_bytes())  # another cell's rows under this cell's key
    key = second.name.split(".")[0]
    plot_refused(
        tmp_path, folder, f"{second} holds the rows of cell(s) {first.name.split('.')[0]}, not {key}"
    )
    # a finished cell of another spec (left by --force) is not read: only the spec's own keys are
    (folder / "cells" / "0123456789abcdef.sweep.parquet").write_bytes(first.read_bytes())
    (folder / "cells" / "0123456789abcdef.done").write_text(json.dumps({"tables": ["sweep"]}))
    second.unlink()
    result = optbench.load(folder)
    assert set(result.table["cell"]) == {first.name.split(".")[0]}


def test_a_grid_larger_than_a_screen_is_drawn_in_blocks_and_says_so(monkeypatch):
    from optbench.objectives import get_surface
    from optbench.plots import grid_map

    monkeypatch.setattr(grid_map, "SCREEN_CELLS", 4)
    lr, momentum = np.meshgrid(np.geomspace(1e-3, 1, 10), np.linspace(0, 0.9, 9))
    final = (lr * (1 + momentum)).ravel()
    diverged = final > 1.5  # the two largest lr x momentum corners
    cells = pd.DataFrame(
        {"optimizer": "sgd", "lr": lr.ravel(), "momentum": momentum.ravel(), "final_loss": final + 1.0,
         "diverged": diverged, "steps": 5}
    )  # fmt: skip
    figure = grid_map.plot_grid(cells, get_surface("quadratic"), "lr", "momentum")
    ax = figure.axes[0]
    mesh = ax.collections[-1]
    assert mesh.get_array().shape == (3, 4)  # 9 rows in blocks of 3, 10 columns in blocks of 3 (last: 1)
    assert "10 x 9 cells drawn as 4 x 3: each the median of 3 x 3 cells" in ax.get_title()
    low, high = ax.get_xlim()
    assert low < 1e-3 < 1 < high  # the blocks cover the whole grid
    # block (0, 0) holds lr[:3] x momentum[:3]: its value is their median, drawn as log10(f - f_min)
    expected = np.log10(
        np.median(final.reshape(9, 10)[:3, :3]) + 1.0 - get_surface("quadratic").minimum_value
    )
    assert mesh.get_array()[0, 0] == pytest.approx(expected)
