"""Hostile files (issue 24): damaged results folders for `optbench plot` and `optbench.load`, hostile
configs and output names. Each is one line naming the problem and the value, exit status 2, no traceback,
nothing written (`test_hostile.refused`), refused before any run starts or any figure is drawn.
"""

from __future__ import annotations

import json
import os

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
