"""The CLI's contract: results on stdout, one red error line and exit 2 for bad input."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from optbench.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_list_shows_every_optimizer():
    result = run("list")
    assert result.exit_code == 0
    for name in ("sgd", "adam", "rmsprop", "lbfgs", "muon", "sparseadam", "momentum"):
        assert name in result.output


def test_verify_prints_certificate_and_json():
    result = run("verify", "sgd", "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["equivalent"] and report["algorithms"][0]["combinations"] == 20
    assert report["algorithms"][0]["worst_deviation_float64"] <= 1e-9


def _entry(*args):
    return subprocess.run(
        [sys.executable, "-c", "from optbench.cli import entry; entry()", *args],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["verify", "adma"], "unknown optimizer 'adma'; did you mean 'adam'?"),
        (["verify", "--nope"], "No such option"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(args, expected):
    completed = _entry(*args)
    assert completed.returncode == 2
    assert expected in completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
