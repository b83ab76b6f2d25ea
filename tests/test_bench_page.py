"""docs/bench_page.py: the published benchmark page drawn from a saved run, and `--check` (what CI
runs; nothing there reruns the benchmark) saying when the page is out of step with the run.

The script runs here on a small saved run of its own, in a temporary folder: the published run
itself is checked by `python docs/bench_page.py --check` in .ci/run."""

import importlib.util
import json
from pathlib import Path

import pytest

import optbench
from optbench.bench import views

ROOT = Path(__file__).resolve().parent.parent
PAGE = """# A page

Some text.

<!-- bench-page -->
<!-- /bench-page -->

More text.
"""


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench-page")
    result = optbench.bench(["sgd", "adamw"], suite="quick", studies=2, trials_per_study=2, seeds=2)
    result.save(folder / "run")
    return folder


@pytest.fixture
def script(saved_run, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_page", ROOT / "docs" / "bench_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    facts = {
        "command": "optbench bench sgd adamw",
        "seconds": 12.3,
        "cells_found_finished": 0,
        "date": "2026-12-06",
        "machine": "x86_64, 2 cores",
        "load_average_at_start": 1.5,
    }
    (tmp_path / "run.json").write_text(json.dumps(facts))
    (tmp_path / "page.md").write_text(PAGE)
    for name, path in {
        "OUT": tmp_path,
        "RUN": saved_run / "run",
        "FACTS": tmp_path / "run.json",
        "FIGURE": tmp_path / "profiles.png",
        "PAGE": tmp_path / "page.md",
    }.items():
        monkeypatch.setattr(module, name, path)
    monkeypatch.setattr(module, "OPTIMIZERS", ["sgd", "adamw"])
    return module


def test_draw_writes_the_figure_and_the_ranking_with_intervals_between_the_markers(script):
    assert script.check()  # not drawn yet: the figure is missing and the page empty
    script.draw()
    assert script.check() == []
    page = script.PAGE.read_text()
    assert page.startswith("# A page\n\nSome text.") and page.endswith("More text.\n")
    result = script.saved()
    # the same text as the terminal and the report show (`bench.views`), a markdown row per table row
    for view in (views.ranking_view(result.ranking, result.task_steps()), views.summary_view(result.summary)):
        assert "| " + " | ".join(map(str, view.columns)) + " |" in page
        for row in view.itertuples(index=False):
            assert "| " + " | ".join(row) + " |" in page, row
    assert "took 12 s of wall time" in page and "load average 1.5" in page
    assert "bench-results/profiles.png" in page and script.FIGURE.stat().st_size > 0
    assert not set(script.LEFT_OUT) & set(script.OPTIMIZERS)


def test_a_page_out_of_step_with_the_saved_run_is_reported(script):
    script.draw()
    best = script.saved().ranking.iloc[0]
    page = script.PAGE.read_text()
    script.PAGE.write_text(page.replace(f"| {best.score:.3f} |", "| 0.123 |", 1))
    assert [p for p in script.check() if "differ from the saved run" in p]


def test_the_published_optimizers_are_every_built_in_one_but_those_left_out_with_a_reason():
    from optbench.optimizers.registry import ALGORITHMS, PRESETS

    spec = importlib.util.spec_from_file_location("bench_page", ROOT / "docs" / "bench_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.OPTIMIZERS + list(module.LEFT_OUT)) == sorted([*ALGORITHMS, *PRESETS])
