"""The benchmark's tables as text (`bench.views`): the terminal, the HTML report and the published page
show the same strings, steps exactly, '–' where there is nothing, '∞' where nothing was reached."""

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

import optbench
from optbench.bench import views
from optbench.bench.report import render
from optbench.cli import main
from optbench.cli.bench import ranking_table, summary_table


def test_steps_are_exact_and_missing_values_are_a_dash():
    assert views.steps(117.5) == "117.5" and views.steps(40.0) == "40" and views.steps(1234.5) == "1234.5"
    assert views.steps(math.inf) == "∞" and views.steps(math.nan) == "–"
    assert views.measure(math.nan) == "–" and views.measure(0.000123456) == "0.000123"
    assert views.measure(math.inf) == "∞" and views.measure(-math.inf) == "-∞"
    assert views.interval(math.nan, 1.0) == "–" and views.interval(0.5, 0.75) == "0.5 to 0.75"
    assert views.whole(3.0) == "3" and views.whole(math.nan) == "–"


RANKING = pd.DataFrame(
    {
        "optimizer": ["adam", "sgd"],
        "score": [0.75, 0.0],
        "score_low": [0.5, np.nan],
        "score_high": [1.0, np.nan],
        "rank": [1.0, 2.0],
        "rank_low": [1.0, np.nan],
        "rank_high": [1.5, np.nan],
        "p_best": [0.9, np.nan],
    }
)
STEPS = pd.DataFrame({"adam": [117.5, 40.0], "sgd": [np.inf, np.nan]}, index=["elliptic", "logistic"])


def test_the_ranking_view_names_its_columns_and_formats_each_cell():
    view = views.ranking_view(RANKING, STEPS)
    assert list(view.columns) == [
        "rank",
        "optimizer",
        "score",
        "score 95%",
        "rank 95%",
        "P(best)",
        "elliptic",
        "logistic",
    ]
    assert view.iloc[0].tolist() == [
        "1",
        "adam",
        "0.750",
        "0.500 to 1.000",
        "1 to 1.5",
        "0.90",
        "117.5",
        "40",
    ]
    assert view.iloc[1].tolist() == ["2", "sgd", "0.000", "–", "–", "–", "∞", "–"]


def rendered(table) -> str:
    console = Console(width=400, record=True, color_system=None)
    console.print(table)
    return console.export_text()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One study of one seed: no bootstrap interval, no seed interval."""
    folder = tmp_path_factory.mktemp("bench") / "single"
    result = optbench.bench(
        ["sgd", "adam"], suite=["elliptic"], folder=folder, studies=1, trials_per_study=2, seeds=1
    )
    return folder, result


def test_terminal_and_report_show_the_same_cells(single):
    folder, result = single
    html = render(result)
    ranking = views.ranking_view(result.ranking, result.task_steps())
    summary = views.summary_view(result.summary)
    for view, table in ((ranking, ranking_table(result)), (summary, summary_table(result))):
        text = rendered(table)
        for column in view.columns:
            assert str(column) in text and f">{column}</th>" in html
        for row in view.itertuples(index=False):
            for cell in row:
                assert cell in text and f">{cell}</td>" in html, cell
    # no table column of the report is a raw column name
    for raw in ("score_low", "p_best", "rank_high", "final_metric", "seconds_per_step"):
        assert f">{raw}</th>" not in html
    # one study of one seed: every interval is a dash, never "0.500-0.500"
    assert set(ranking["score 95%"]) == {"–"} and set(ranking["P(best)"]) == {"–"}
    assert set(summary["95% interval"]) == {"–"}


def test_the_cli_prints_the_views(single, tmp_path):
    out = tmp_path / "again"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "sgd",
            "adam",
            "--tasks",
            "elliptic",
            "--studies",
            "1",
            "--trials",
            "2",
            "--seeds",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    view = views.ranking_view(single[1].ranking, single[1].task_steps())
    for cell in view["score"].tolist() + view["elliptic"].tolist():
        assert cell in result.stdout
    assert "nan" not in result.stdout
