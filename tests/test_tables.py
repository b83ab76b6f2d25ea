"""Tables never hide their numbers (issue 13, kind 9): whole values at 80 columns, piped or in a terminal."""

import io
import re

from click.testing import CliRunner
from rich.console import Console
from rich.table import Table

from optbench.cli import main
from optbench.cli.common import print_table

VALUES = ["adam:lr=0.05", "lr=0.05, betas=0.9/0.999, eps=1e-08", "1.8234567", "equivalent to torch.optim"]


def wide_table() -> Table:
    table = Table(title="a table wider than 80 columns")
    for name in ("optimizer", "settings", "final loss", "verdict", "another column", "and one more"):
        table.add_column(name)
    table.add_row(*VALUES, "x" * 12, "y" * 12)
    table.add_row("sgd", "lr=0.09", "9.43e-15", "equivalent", "-", "-")
    return table


def printed(terminal: bool) -> str:
    buffer = io.StringIO()
    print_table(wide_table(), Console(file=buffer, width=80, force_terminal=terminal, color_system=None))
    return buffer.getvalue()


def test_piped_output_is_as_wide_as_the_table_and_cuts_nothing():
    text = printed(terminal=False)
    assert "…" not in text
    row = next(line for line in text.splitlines() if "adam:lr=0.05" in line)
    assert all(value in row for value in VALUES), row  # every value whole, on one line


def test_a_narrow_terminal_gets_the_narrow_layout_with_whole_values():
    text = printed(terminal=True)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for value in VALUES:
        assert any(value in line for line in text.splitlines()), value
    assert any("optimizer" in line and "adam:lr=0.05" in line for line in text.splitlines())


def test_a_table_that_fits_is_printed_as_a_table():
    table = Table()
    table.add_column("optimizer")
    table.add_row("sgd")
    buffer = io.StringIO()
    print_table(table, Console(file=buffer, width=80, force_terminal=True, color_system=None))
    assert buffer.getvalue().splitlines()[1].split() == ["┃", "optimizer", "┃"]


def test_compare_tables_piped_show_whole_values(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "compare",
            "adam:lr=0.05,betas=0.9/0.99",
            "momentum",
            "--surface",
            "elliptic",
            "--steps",
            "20",
            "--out",
            str(tmp_path / "run"),
            "--format",
            "png",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    metrics_row = next(line for line in result.output.splitlines() if line.startswith("│ momentum"))
    assert re.search(r"lr=\d[\d.e-]*, momentum=0\.9 ", metrics_row), metrics_row  # whole value, not "lr=0…"
    assert "adam:lr=0.05,betas=0.9/0.99" in result.output
    # the final point, as the d2l book prints it
    assert "final point" in result.output


def test_noise_floor_table_counts_diverged_runs(tmp_path):
    import optbench
    from optbench.cli.compare_tables import noise_floor_table

    study = optbench.noise_floor(
        ["sgd:lr=1.5", "sgd:lr=0.01"], steps=60, batch_sizes=[10], floor_lrs=[0.01, 0.1]
    )
    buffer = io.StringIO()
    print_table(noise_floor_table(study), Console(file=buffer, width=200, color_system=None))
    rows = {
        line.split("│")[1].strip(): line.split("│")[-2].strip()
        for line in buffer.getvalue().splitlines()
        if line.startswith("│")
    }
    assert rows["sgd:lr=0.01"] == "no"
    assert rows["sgd:lr=1.5"].startswith("step ")


def _metrics_rows(result) -> dict:
    from optbench.cli.compare_tables import metrics_table
    from optbench.objectives import get_surface

    buffer = io.StringIO()
    table = metrics_table(result.metrics, get_surface("rosenbrock"), 500)
    print_table(table, Console(file=buffer, width=250, color_system=None))
    header = next(line for line in buffer.getvalue().splitlines() if "optimizer" in line)
    names = [cell.strip() for cell in re.split(r"[┃│]", header)[1:-1]]
    rows = {}
    for line in buffer.getvalue().splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.split("│")[1:-1]]
            rows[cells[0]] = dict(zip(names, cells, strict=True))
    return rows, table.title


def test_steps_to_tolerance_counts_the_trials_that_did_not_reach():
    import math

    import numpy as np

    import optbench

    # adam: 5 of 20 reach (median beyond the budget); adam lr 0.5: 13 of 20 (a finite median)
    result = optbench.compare(["adam", "adam:lr=0.5"], "rosenbrock", trials=20, steps=500)
    rows, title = _metrics_rows(result)
    assert "median of 20 trials" in title and "beyond the budget" in title
    for name, runs in result.metrics.groupby("optimizer"):
        steps = np.sort(runs["steps_to_tolerance"].fillna(math.inf).to_numpy())
        lower_median = steps[(len(steps) - 1) // 2]
        reached = int(np.isfinite(steps).sum())
        cell = rows[name]["steps to tol"]
        assert 0 < reached < 20
        expected = f"{int(lower_median)}" if np.isfinite(lower_median) else "> 500"
        if reached < 20:
            expected += f" ({reached}/20 reached)"
        assert cell == expected
        assert re.fullmatch(r"(> )?\d+( \(\d+/20 reached\))?", cell), cell  # whole steps
    assert rows["adam"]["steps to tol"].startswith("> 500 (")
    assert not rows["adam:lr=0.5"]["steps to tol"].startswith(">")


def test_sweep_table_prints_steps_to_target_as_whole_steps():
    import math
    from types import SimpleNamespace

    import pandas as pd

    from optbench.cli.sweep import summary_table

    # two seeds crossing the target at 68.6 and 70.1 steps (interpolated between evaluations):
    # the median 69.35 is printed as the first whole step at or after it, 70
    summary = pd.DataFrame(
        {
            "optimizer": ["sgd", "sgd"],
            "lr_scale": ["fixed", "fixed"],
            "batch_size": [16, 16],
            "seed": [0, 1],
            "lr": [0.1, 0.1],
            "final_accuracy": [0.9, 0.91],
            "final_loss": [0.3, 0.29],
            "steps_to_target": [68.6, 70.1],
            "samples_to_target": [68.6 * 16, 70.1 * 16],
            "target_outcome": ["reached", "reached"],
            "wall_time": [1.0, 1.0],
            "diverged": [False, False],
        }
    )
    spec = SimpleNamespace(task="digits", resolved_targets=lambda: (0.85, None))
    buffer = io.StringIO()
    print_table(summary_table(summary, spec), Console(file=buffer, width=200, color_system=None))
    row = next(line for line in buffer.getvalue().splitlines() if line.startswith("│sgd"))
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert str(math.ceil((68.6 + 70.1) / 2)) in cells and "69.3" not in row and "69.4" not in row


def test_compare_on_a_saddle_draws_and_says_why_there_is_no_rate(tmp_path):
    import pytest

    from optbench import theory

    with pytest.raises(ValueError, match="positive definite"):
        theory.optimal_gradient_descent([2.0, -2.0])
    result = CliRunner().invoke(
        main,
        ["compare", "sgd", "adam", "--surface", "saddle", "--out", str(tmp_path / "run"), "--format", "png"],
    )
    assert result.exit_code == 0, result.output
    assert "not positive definite" in " ".join(result.output.split())
    assert (tmp_path / "run" / "loss.png").exists() and (tmp_path / "run" / "trajectories.png").exists()
