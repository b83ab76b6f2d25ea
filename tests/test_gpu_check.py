"""The GPU check script, proven end to end on the CPU with tiny sizes (its dry run).

The dry run runs in a fresh process where `rich_click` cannot be imported, as on the GPU machine.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check
from benchmarks.gpu_sections import equivalence, extras, failure, language_model, training
from optbench.optimizers.registry import TORCH_ALGORITHMS as ALGORITHMS

ROOT = Path(__file__).resolve().parent.parent
WITHOUT_RICH_CLICK = """
import runpy, sys
sys.modules["rich_click"] = None          # importing it now raises ImportError, as on the GPU machine
sys.argv = ["gpu_check.py", *sys.argv[1:]]
runpy.run_path("benchmarks/gpu_check.py", run_name="__main__")
"""


def run_script(*args: str) -> subprocess.CompletedProcess:
    """The script in a fresh process, without a time limit: how long it takes depends on the machine."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_RICH_CLICK, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def tables_under(text: str, heading: str) -> list[list[dict]]:
    """The markdown tables between `heading` and the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next(
        (
            i
            for i in range(start, len(lines))
            if lines[i].startswith("#") and len(lines[i].split(" ")[0]) <= len(level)
        ),
        len(lines),
    )
    tables, current = [], None
    for line in lines[start:end]:
        if line.startswith("|") and current is None:
            current = {"columns": [c.strip() for c in line.strip("|").split("|")], "rows": []}
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            current["rows"].append(
                dict(zip(current["columns"], (c.strip() for c in line.strip("|").split("|")), strict=False))
            )
        elif current is not None:
            tables.append(current["rows"])
            current = None
    if current is not None:
        tables.append(current["rows"])
    return tables


def number(cell: str) -> float:
    return float(cell)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.md"
    answer = run_script("--dry-run", "--out", str(out))
    return answer, out.read_text()


def test_dry_run_finishes_every_section_without_rich_click(dry_run):
    answer, text = dry_run
    assert answer.returncode == 0, answer.stderr[-3000:]
    for section in ("equivalence", "step-cost", "training", "extras", "language-model"):
        assert re.search(rf"_section {section}: done in [0-9.]+ s \(no time box\)_", text), section
    assert "time box spent" not in text and "**cut**" not in text and "cut: not finished" not in text
    environment = {
        row["what"]: row["value"] for row in tables_under(text, "# optbench GPU check (dry run, cpu)")[0]
    }
    assert environment["torch"].startswith(torch.__version__)
    assert environment["optbench"].split(" from ")[1].startswith(str(ROOT / "optbench"))
    assert "failed; traceback" not in text


def test_dry_run_certifies_every_algorithm_on_the_device(dry_run):
    _, text = dry_run
    amp, certificate = tables_under(text, "## 1. Equivalence on the device")[:2]
    assert {(row["algorithm"], row["reference"]) for row in amp} >= {
        ("adam", "torch fused"),
        ("sgd", "torch"),
    }
    assert all(row["passed"] == "yes" for row in amp), amp
    assert all(row["steps taken (ours, torch)"] in ("4, 4", "-, -") for row in amp)
    readable = {row["algorithm"] for row in certificate if row["ours"] == "readable"}
    assert readable == set(ALGORITHMS)
    for row in certificate:
        if row["first failure"].startswith("torch refuses"):
            assert "capturable" in row["reference"]  # on the CPU only capturable is refused
        else:
            assert int(row["checks"]) >= 2 and row["passed"] == row["checks"], row
        if row["ours"] == "fast" and row["checks"] != "0":
            assert int(row["steps on path"]) > 0, row  # the fast path was taken, not the readable one
    assert (
        "skipped: tests/test_optim_db.py is not in this tree." in text
        or "tests/test_optim_db.py` with" in text
    )


def test_dry_run_step_cost_and_training_tables(dry_run):
    _, text = dry_run
    first, ten_times = tables_under(text, "## 2. Step cost at ResNet-18 and 10x ResNet-18 shapes")
    adam = next(row for row in first if row["algorithm"] == "adam")
    for column in ("floor (ms)", "ours (ms)", "fast (ms)", "torch foreach (ms)", "torch fused (ms)"):
        assert number(adam[column]) > 0
    assert number(adam["fast / torch fused"]) == pytest.approx(
        number(adam["fast (ms)"]) / number(adam["torch fused (ms)"]), rel=0.01
    )
    assert [row["algorithm"] for row in ten_times] == ["adam"]
    (train_table,) = tables_under(text, "## 3. Training loop against a bare fused loop")
    assert [row["precision"] for row in train_table] == list(training.PRECISIONS)
    for row in train_table:
        bare, ours = number(row["bare loop, torch fused"]), number(row["optbench, ours fast"])
        assert bare > 0 and ours > 0
        expected = "met" if number(row["ours fast / bare"]) >= training.TARGET else "**missed**"
        assert row["ours fast >= 0.9x"] == expected
    contiguous = {row["precision"]: row["parameters contiguous"] for row in train_table}
    assert contiguous["fp32"] == "yes"
    assert contiguous["bf16 + channels_last"].startswith("no (")  # the conv weights


def test_dry_run_cpu_runs_are_identical(dry_run):
    _, text = dry_run
    (repro,) = tables_under(text, "### compare --check-repro: CPU against the device")
    assert [row["optimizer"] for row in repro] == list(extras.REPRO_OPTIMIZERS)
    assert all(
        row["first differing step"] == "identical" and number(row["max difference"]) == 0 for row in repro
    )
    assert "- language model" not in text  # driven by its own section


def test_dry_run_language_model_modes(dry_run):
    _, text = dry_run
    (modes,) = tables_under(text, "## 5. Language model: eager, bf16, compile")
    rows = {row["mode"]: row for row in modes}
    assert list(rows) == list(language_model.MODES)
    for mode in ("eager fp32", "bf16 autocast"):  # trained: a rate, and a loss below ln(vocabulary)
        assert number(rows[mode]["steps/s (whole run)"]) > 0 and number(rows[mode]["train s"]) > 0
        assert 0 < number(rows[mode]["val loss"]) < math.log(83)
    assert number(rows["bf16 autocast"]["val loss"]) == pytest.approx(
        number(rows["eager fp32"]["val loss"]), abs=0.05
    )
    for mode in ("compile", "compile + bf16"):  # the dry run compiles nothing unless asked
        assert rows[mode]["steps/s (whole run)"] == "skipped: --no-compile"


def failing(settings, report, budget):
    report.write("before the failure")
    raise ValueError("broken on purpose")


def endless(settings, report, budget):
    report.write("started")
    while True:
        time.sleep(0.01)


def test_a_failed_section_is_recorded_and_the_next_one_runs(tmp_path):
    report = gpu_check.Report(tmp_path / "out.md", echo=False)
    settings = gpu_check.Settings("cpu", tiny=True, compile=False, data_dir=None)
    assert gpu_check.run_section(gpu_check.Section("bad", "bad", 10, failing), settings, report) == "failed"
    assert (
        gpu_check.run_section(gpu_check.Section("slow", "slow", 0.05, endless), settings, report, grace_s=0.2)
        == "cut"
    )
    text = report.path.read_text()
    assert "ValueError: broken on purpose" in text and "before the failure" in text
    assert "**cut**: interrupted at its hard limit (0.2 s)" in text and "_section slow: cut in" in text


def test_a_spent_box_starts_no_new_item(tmp_path):
    report = gpu_check.Report(tmp_path / "out.md", echo=False)
    settings = gpu_check.Settings("cpu", tiny=True, compile=False, data_dir=None)
    step_cost = next(s for s in gpu_check.sections() if s.name == "step-cost")
    assert gpu_check.run_section(step_cost, settings, report, box=0.0, grace_s=math.inf) == "done"
    assert "not run, time box spent: adam, sgd, adafactor" in report.path.read_text()


def test_only_reruns_one_section_and_appends(tmp_path):
    out = tmp_path / "out.md"
    for _ in range(2):
        assert gpu_check.main(["--dry-run", "--only", "extras", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("## 4. Everything else") == 2 and "## 1." not in text
    assert text.count("# optbench GPU check (dry run, cpu)") == 2


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("OPTBENCH_TEST_COMPILE") != "1",
    reason="compiles with torch.compile; set OPTBENCH_TEST_COMPILE=1",
)
def test_dry_run_with_the_compiled_path(tmp_path):
    out = tmp_path / "gpu_check.md"
    answer = run_script(
        "--dry-run", "--compile", "--only", "equivalence", "--only", "step-cost", "--out", str(out)
    )
    text = out.read_text()
    assert answer.returncode == 0, text[-3000:]
    certificate = tables_under(text, "## 1. Equivalence on the device")[1]
    compiled = [row for row in certificate if row["ours"] == "compiled" and row["checks"] != "0"]
    assert {row["algorithm"] for row in compiled} >= {"adam", "rmsprop"}
    assert all(row["passed"] == row["checks"] and int(row["steps on path"]) > 0 for row in compiled)
    adam = next(
        row
        for row in tables_under(text, "## 2. Step cost at ResNet-18 and 10x ResNet-18 shapes")[0]
        if row["algorithm"] == "adam"
    )
    assert number(adam["compiled (ms)"]) > 0 and number(adam["compile (s)"]) > 0


def test_a_section_left_no_time_is_listed_as_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "WHOLE_RUN_S", 0)
    out = tmp_path / "out.md"
    assert gpu_check.main(["--dry-run", "--time-boxes", "--only", "extras", "--out", str(out)]) == 1
    text = out.read_text()
    assert "not run: the run's 0 s are spent (rerun it with --only extras)" in text
    assert "extras not run" in text


def test_the_dry_run_has_no_clock(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "WHOLE_RUN_S", 0)  # a run with no time left at all still finishes
    out = tmp_path / "out.md"
    assert gpu_check.main(["--dry-run", "--only", "extras", "--out", str(out)]) == 0
    text = out.read_text()
    assert "_section extras: done in" in text and "(no time box)_" in text and "not run" not in text


def test_a_bad_box_is_one_line_and_status_2(tmp_path, capsys):
    out = tmp_path / "out.md"
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--dry-run", "--box", "extra=10", "--out", str(out)])
    assert exit_.value.code == 2
    assert (
        "--box extra=10: unknown section 'extra' (valid: equivalence, step-cost, training, extras, language-model)"
        in capsys.readouterr().err
    )
    assert not out.exists()


def test_the_optim_db_test_runs_with_the_device_in_its_environment(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / equivalence.OPTIM_DB_TEST).write_text(
        "import os\n\n"
        "def test_device():\n    assert os.environ['OPTBENCH_TEST_DEVICE'] == 'cpu'\n\n"
        "def test_skipped():\n    import pytest\n    pytest.skip('no such dtype here')\n"
    )
    settings = gpu_check.Settings("cpu", tiny=True, compile=False, data_dir=None, root=tmp_path)
    text = equivalence.optim_db(settings, gpu_check.Budget(math.inf))
    assert "with OPTBENCH_TEST_DEVICE=cpu: exit status 0, **1 passed, 1 skipped in" in text
    assert "SKIPPED [1]" in text and "no such dtype here" in text


def swallowing(settings, report, budget):
    while True:
        try:
            time.sleep(0.01)
        except Exception:  # noqa: BLE001 - what the certificate does with a failing check
            report.write("swallowed")


def test_the_hard_limit_is_not_swallowed_by_code_that_records_failures(tmp_path):
    report = gpu_check.Report(tmp_path / "out.md", echo=False)
    settings = gpu_check.Settings("cpu", tiny=True, compile=False, data_dir=None)
    section = gpu_check.Section("greedy", "greedy", 0.05, swallowing)
    assert gpu_check.run_section(section, settings, report, grace_s=0.2) == "cut"
    assert "swallowed" not in report.path.read_text()


def one_item_fails(settings, report, budget):
    row = report.table(["item", "result"])
    row(["good", 1.0])
    try:
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore lines")
    except RuntimeError as error:
        row(["bad", failure(error)])
    row(["after", 2.0])


def test_an_item_that_raised_is_its_row_and_counted(tmp_path):
    report = gpu_check.Report(tmp_path / "out.md", echo=False)
    settings = gpu_check.Settings("cpu", tiny=True, compile=False, data_dir=None)
    section = gpu_check.Section("items", "items", 10, one_item_fails)
    assert gpu_check.run_section(section, settings, report) == "done, 1 item failed"
    text = report.path.read_text()
    assert "| bad | **failed**: RuntimeError: CUDA error: an illegal memory access was encountered |" in text
    assert "| after | 2.000 |" in text
