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
