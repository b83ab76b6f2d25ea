"""Hostile input to `optbench bench` (issue 21): bad input gets one line on stderr naming the value, exit
status 2 and nothing written, before anything runs; an optimizer that raises or returns NaN is recorded
as failed or diverged in the tables; a damaged results folder is recomputed cell by cell, or refused in
one line by `optbench plot`; a run killed with SIGKILL resumes to the numbers of an uninterrupted one.
Each case stands for its kind."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from click.testing import CliRunner
from user_optimizers import PLAIN_SGD

import optbench
from optbench.bench import protocol, run
from optbench.bench.result import RANKING_MEASURES, SUMMARY_MEASURES
from optbench.cli import main
from optbench.errors import OptbenchError

TINY = ["--studies", "1", "--trials", "2", "--seeds", "1"]
WALL_TIME = ["seconds", "seconds_per_step", "seconds_to_target", "threads"]

USER_CLASSES = PLAIN_SGD + textwrap.dedent("""
    import time

    class NoLr(torch.optim.Optimizer):
        def __init__(self, params, step_size=0.01):
            super().__init__(params, dict(step_size=step_size))

    class KwargsOnly(torch.optim.Optimizer):
        def __init__(self, params, **settings):
            super().__init__(params, dict(settings))

    class RejectsItsArguments(Plain):
        def __init__(self, params, lr=0.01):
            raise ValueError("lr must be a string")

    class RaisesAtStep6(Plain):
        def step(self, closure=None):
            self.count = getattr(self, "count", 0) + 1
            if self.count == 6:
                raise RuntimeError("broke at step 6\\nsee the log")
            return super().step(closure)

    class Exits(Plain):
        def step(self, closure=None):
            raise SystemExit(3)

    class Interrupts(Plain):
        def step(self, closure=None):
            raise KeyboardInterrupt

    class ExitsInInit(Plain):
        def __init__(self, params, lr=0.01):
            raise SystemExit(5)

    class InterruptsInInit(Plain):
        def __init__(self, params, lr=0.01):
            raise KeyboardInterrupt

    class RequiresLr(Plain):
        def __init__(self, params, lr, momentum=0.0):
            torch.optim.Optimizer.__init__(self, params, dict(lr=lr, momentum=momentum))

    class Infinite(Plain):
        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("inf"))

    class Slow(Plain):
        def step(self, closure=None):
            time.sleep(0.003)
            return super().step(closure)
""")


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "user_optim.py"
    path.write_text(USER_CLASSES)
    return path


@pytest.fixture
def nothing_runs(monkeypatch):
    """A refusal must come before any trial is drawn or run."""

    def started(*args, **kwargs):
        raise AssertionError("the benchmark started before the refusal")

    monkeypatch.setattr(run, "run_rows", started)
    monkeypatch.setattr(protocol, "quasi_random_studies", started)
    monkeypatch.setattr("optbench.budget.available_bytes", lambda: 8 * 10**9)  # the same line on any machine


def refused(args: list[str], out, expected: str):
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert result.stdout == ""
    assert not out.exists(), sorted(out.iterdir())
    return lines[0]


# (command line after `optbench bench`, FILE standing for the user classes' file; a part of the line)
CASES = [
    # the same task or optimizer twice, under one spelling or two
    ("adam --tasks elliptic,elliptic", "benchmark task 'elliptic' is given twice"),
    ("adam --tasks elliptic,logistic,elliptic", "benchmark task 'elliptic' is given twice"),
    ("adam --suite quick --tasks elliptic", "give --suite or --tasks, not both (got --suite quick and"),
    ("adam adam", "optimizer 'adam' is given twice"),
    ("adam Adam", "'Adam' is the same optimizer as 'adam' (optbench.optimizers.adam:Adam with the same"),
    ("adam optbench.optimizers:Adam", "'optbench.optimizers:Adam' is the same optimizer as 'adam'"),
    ("adam optbench.optimizers.adam:Adam", "'optbench.optimizers.adam:Adam' is the same optimizer as 'adam'"),
    ("adam adam:eps=1e-8", "'adam:eps=1e-8' is the same optimizer as 'adam'"),
    ("momentum sgd:momentum=0.9", "'sgd:momentum=0.9' is the same optimizer as 'momentum'"),
    ("torch:adam torch.optim:Adam", "'torch.optim:Adam' is the same optimizer as 'torch:adam'"),
    (
        "lookahead lookahead:inner=sgd",
        "same optimizer as 'lookahead' (optbench.optimizers.lookahead:Lookahead",
    ),
    # a spec fixing what the protocol tunes; a class the protocol cannot tune
    ("adam:lr=0.1", "'adam:lr=0.1' fixes lr=0.1, but lr is tuned by the protocol for every optimizer"),
    ("sgd momentum:lr=1e-3", "fixes lr=0.001, but lr is tuned by the protocol"),
    ("FILE:NoLr", "'FILE:NoLr': NoLr's constructor takes no lr argument (it takes: step_size)"),
    (
        "FILE:KwargsOnly",
        "KwargsOnly's constructor takes its settings through **settings, so optbench cannot tell whether it "
        "takes lr (the protocol tunes lr for every optimizer): name it, as in def __init__(self, params, "
        "lr=1e-3, **settings)",
    ),
    (
        "lbfgs",
        "'lbfgs': the benchmark does not run lbfgs: L-BFGS takes several gradient evaluations per step",
    ),
    ("adam torch:lbfgs", "'torch:lbfgs': the benchmark does not run lbfgs"),
    ("FILE:RejectsItsArguments", "FILE:RejectsItsArguments: lr must be a string"),
    ("FILE:ExitsInInit", "FILE:ExitsInInit: its constructor raised SystemExit: 5"),
    ("FILE:InterruptsInInit", "FILE:InterruptsInInit: its constructor raised KeyboardInterrupt"),
    # names that are nothing
    ("adma", "unknown optimizer 'adma'; did you mean 'adam'?"),
    ("adamw,sgd", "unknown optimizer 'adamw,sgd': give several optimizers separated by spaces ('adamw sgd')"),
    ("adam --tasks elipstic", "unknown benchmark task 'elipstic'; did you mean 'elliptic'?"),
    ("adam --suite qiuck", "unknown suite 'qiuck'; did you mean 'quick'?"),
    ("adam --tasks ''", "the benchmark suite is empty"),
    ("adam --tasks ' , '", "the benchmark suite is empty"),
    ("nosuch.module:Opt", "cannot import module 'nosuch.module'"),
    ("optbench.specs:parse_optimizer", "is not a torch.optim.Optimizer subclass (it is a function)"),
    ("torch.nn:Linear", "is not a torch.optim.Optimizer subclass (it is a class based on Module)"),
    ("./no_such_file.py:Opt", "optimizer file './no_such_file.py' not found"),
    ("FILE:NoSuchClass", "NoSuchClass"),
    # the cluster executor's parameters, checked by submitit before anything is written
    (
        "adam --cluster local --cluster-option bogus=1",
        "cluster executor 'local': Parameter 'bogus' need to be prefixed by an executor name",
    ),
    (
        "adam --cluster debug --cluster-option timeout_min=abc",
        "cluster executor 'debug': Parameter \"timeout_min\" expected type",
    ),
    # counts
    ("adam --studies 0", "studies must be a whole number >= 1, got 0"),
    ("adam --trials 0", "trials per study must be a whole number >= 1, got 0"),
    ("adam --trials -5", "trials per study must be a whole number >= 1, got -5"),
    ("adam --seeds 0", "seeds must be a whole number >= 1, got 0"),
    ("adam --jobs 0", "jobs must be a whole number >= 1, got 0"),
    ("adam --jobs -2", "jobs must be a whole number >= 1, got -2"),
    ("adam --trials many", "'many' is not a valid integer"),
    ("adam --seed -1", "-1 is not in the range 0<=x<=9223372036854775807"),
    ("adam --shard 2/1", "--shard must be I/N with 1 <= I <= N (e.g. 2/4), got '2/1'"),
    ("adam --shard 1/2/3", "got '1/2/3'"),
    # runaway sizes, from the estimate (`bench.cost`), with and without --allow-long
    (
        "sgd --suite quick --trials 10000000",
        "the benchmark of 1 optimizer(s) x 2 task(s) with 5 study(ies) x 10,000,000 trial(s) and 3 seed(s) "
        "needs about",
    ),
    ("sgd --suite quick --trials 10000000 --allow-long", "x 10,000,000 trial(s) and 3 seed(s) needs about"),
    ("sgd --suite quick --trials 100000000000000000000", "x 100,000,000,000,000,000,000 trial(s)"),
    (
        "sgd --suite quick --studies 1000000",
        "with 1,000,000 study(ies) x 5 trial(s) and 3 seed(s) needs about",
    ),
    (  # sgd steps its trials as one tensor: 200 x (n x 2 + 25) on elliptic, 400 x (n x 31 + 25) on logistic,
        # for n = 50,000 tuning trials, 30,000 seed reruns and 1 timing run: 32,015,400 + 992,042,400
        "sgd --suite quick --studies 10000",
        "with 10,000 study(ies) x 5 trial(s) and 3 seed(s) is about 1,024,057,800 coordinate-steps of work "
        "(steps x trials x coordinates), over the limit of 100,000,000 (about a quarter hour); --allow-long "
        "runs it anyway",
    ),
    ("sgd --suite quick --seeds 100000", "x 5 trial(s) and 100,000 seed(s) is about"),
    ("sgd --tasks elliptic --trials 100000 --studies 10", "10 study(ies) x 100,000 trial(s)"),
]


@pytest.mark.parametrize("line, expected", CASES, ids=[line for line, _ in CASES])
def test_bad_input_is_one_line_naming_the_value_exit_2_nothing_run_or_written(
    tmp_path, classes, nothing_runs, line, expected
):
    args = [arg.replace("FILE", str(classes)) for arg in shlex.split(line)]
    refused(["bench", *args], tmp_path / "out", expected.replace("FILE", str(classes)))


def test_the_work_limit_refuses_one_coordinate_step_past_it_and_allow_long_accepts(tmp_path, monkeypatch):
    from optbench import budget

    # sgd on elliptic (2-D, 200 steps), one trial per cell, three cells: 3 x 200 x (2 + 25)
    work = 3 * 200 * (2 + budget.STEP_COORDINATES)
    args = ["bench", "sgd", "--tasks", "elliptic", "--studies", "1", "--trials", "1", "--seeds", "1"]
    monkeypatch.setattr(budget, "WORK_LIMIT", work - 1)
    refused(args, tmp_path / "out", f"is about {work:,} coordinate-steps of work")
    with pytest.raises(OptbenchError, match=f"about {work:,} coordinate-steps"):
        optbench.bench(["sgd"], suite=["elliptic"], studies=1, trials_per_study=1, seeds=1)
    for limit, extra in ((work, []), (work - 1, ["--allow-long"])):
        monkeypatch.setattr(budget, "WORK_LIMIT", limit)
        out = tmp_path / f"out-{limit}-{len(extra)}"
        result = CliRunner().invoke(main, [*args, *extra, "--out", str(out), "--format", "png"])
        assert result.exit_code == 0, result.output
        assert len(pd.read_parquet(out / "trials.parquet")) == 1


def test_the_memory_of_several_processes_is_refused_naming_them(tmp_path, monkeypatch):
    from optbench import budget

    monkeypatch.setattr(budget, "available_bytes", lambda: budget.WORKER_BYTES)
    line = refused(
        ["bench", "sgd", "--suite", "quick", "--jobs", "4"], tmp_path / "out", "in 2 processes needs"
    )
    assert "this machine has 300 MB available" in line  # two pairs: two processes at most, not four


def test_a_network_tasks_cost_counts_its_model_and_draws_no_random_number():
    import torch

    from optbench.bench.suite import get_bench_task

    task = get_bench_task("digits-mlp")  # 64 inputs -> 128 -> 64 -> 10, batch 64
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    parameters, flops = task.model_cost()
    assert torch.equal(torch.rand(3), expected)
    assert parameters == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert flops == 3 * 64 * 2 * (64 * 128 + 128 * 64 + 64 * 10)  # forward and backward, per batch


def test_spellings_that_tune_differently_are_different_optimizers():
    from optbench.bench.run import check_distinct, tuning_identity
    from optbench.specs import parse_optimizer

    # torch's own class beside ours (the side-by-side check); betas fixed, so not searched
    for pair in (
        ("adam", "torch:adam"),
        ("adam", "adam:betas=0.9/0.999"),
        ("lookahead", "lookahead:inner=adam"),
    ):
        check_distinct([parse_optimizer(text) for text in pair])
    assert tuning_identity(parse_optimizer("adam:betas=0.9/0.999"))[2] == ("lr",)
    assert tuning_identity(parse_optimizer("momentum"))[2] == ("lr",)  # momentum fixed at 0.9: documented


@pytest.mark.parametrize(
    "suite, expected",
    [
        (5, "a benchmark suite is a suite's name or a list of task names, got 5"),
        (["elliptic", "elliptic"], "benchmark task 'elliptic' is given twice"),
        ([["elliptic"]], "unknown benchmark task '['elliptic']'"),
        ([], "the benchmark suite is empty"),
    ],
)
def test_the_python_api_refuses_the_same_suites_in_one_line(tmp_path, suite, expected):
    with pytest.raises(OptbenchError, match=re_escape(expected)):
        optbench.bench(["sgd"], suite=suite, folder=tmp_path / "out", studies=1, trials_per_study=1, seeds=1)
    assert not (tmp_path / "out").exists()


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


# --- what a run records: failures and divergence, never a traceback ---------------------------------


def test_raising_mid_run_exiting_and_infinity_are_recorded_and_the_rest_is_saved(tmp_path, classes):
    names = [f"{classes}:{name}" for name in ("RaisesAtStep6", "Exits", "Infinite", "Interrupts")]
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["bench", "sgd", *names, "--tasks", "elliptic", *TINY, "--out", str(out), "--format", "png"]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "6 trial(s) failed, e.g." in result.stderr  # the three failing classes' trials, said once
    trials = optbench.load(out).trials.set_index("optimizer")["status"]
    raising, exits, infinite, interrupts = names
    # one line each, whatever the message held
    assert (trials[raising] == "failed: RuntimeError: broke at step 6 see the log").all()
    assert (trials[exits] == "failed: SystemExit: 3").all()
    assert (trials[infinite] == "diverged").all()
    # a KeyboardInterrupt of the user's step is its failure, not a Ctrl-C (one arrives as cells.Interrupted)
    assert (trials[interrupts] == "failed: KeyboardInterrupt").all()
    assert not trials["sgd"].str.startswith("failed").any()
    ranking = optbench.load(out).ranking.set_index("optimizer")["score"]
    assert all(ranking[name] == 0 for name in names)
    # the report names each failure with its message (a redrawn report too: read from the tables)
    html = (out / "report.html").read_text()
    assert "<h2>Failed runs</h2>" in html and "RuntimeError: broke at step 6 see the log" in html
    assert f"{interrupts} on elliptic: KeyboardInterrupt" in html
    assert ">outcome</th>" not in html  # the outcomes table's header names its columns, nothing above them
    # three failing classes, each in its tuning and seed cells and in its timing rerun
    assert sorted(optbench.load(out).failed) == sorted(
        [f"{name} on elliptic" for name in (raising, exits, interrupts)]
        + [f"{name} on elliptic (timing)" for name in (raising, exits, interrupts)]
    )


def test_a_class_requiring_lr_runs_under_every_spelling_of_its_module(tmp_path, classes, monkeypatch):
    """lr is the protocol's to give, so a constructor without an lr default is tuned like any other; a
    top-level module's class ('user_optim:RequiresLr') is a class, not a built-in name with settings."""
    monkeypatch.syspath_prepend(str(classes.parent))
    for spelling in (f"{classes}:RequiresLr", "user_optim:RequiresLr"):
        out = tmp_path / spelling.replace("/", "_")
        result = CliRunner().invoke(
            main, ["bench", spelling, "--tasks", "elliptic", *TINY, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        trials = optbench.load(out).trials
        assert (trials["status"] == "reached").any() and trials["lr"].nunique() == 2


# --- a damaged results folder ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "finished"
    return folder, small_bench(["sgd", "adam"], folder)[0]


def small_bench(optimizers, folder, **options):
    """The `finished` benchmark's settings run into `folder`: (result, the first word of each cell's
    status: done, skipped or failed)."""
    statuses = []
    result = optbench.bench(
        optimizers,
        suite=["elliptic"],
        folder=folder,
        studies=1,
        trials_per_study=2,
        seeds=2,
        progress=lambda event: statuses.append(event.status.split(":")[0]),
        **options,
    )
    return result, statuses


def assert_same_numbers(one, other):
    for name, table in one.tables().items():
        drop = [c for c in WALL_TIME if c in table]
        pd.testing.assert_frame_equal(other.tables()[name].drop(columns=drop), table.drop(columns=drop))


def _replace(path, change):
    table = pd.read_parquet(path)
    change(table).to_parquet(path)


DAMAGE = {
    "truncated": lambda path, other: path.write_bytes(path.read_bytes()[:100]),
    "garbage": lambda path, other: path.write_bytes(b"not a parquet file"),
    "another cell's rows": lambda path, other: path.write_bytes(other.read_bytes()),
    # two cells may hold the same trials (one optimizer's tuning on two tasks): the rows say whose they are
    "another cell's rows over the same trials": lambda path, other: _replace(
        path, lambda t: t.assign(cell=other.name.split(".")[0])
    ),
    "no rows": lambda path, other: _replace(path, lambda t: t.iloc[:0]),
    "a row cut": lambda path, other: _replace(path, lambda t: t.iloc[:-1]),
    "no status column": lambda path, other: _replace(path, lambda t: t.drop(columns="status")),
    "text where steps belong": lambda path, other: _replace(path, lambda t: t.assign(steps="many")),
    "other trials": lambda path, other: _replace(path, lambda t: t.assign(lr=t["lr"] * 2)),
    "numbers where the status belongs": lambda path, other: _replace(path, lambda t: t.assign(status=1.0)),
    "garbage marker": lambda path, other: path.with_name(path.name.split(".")[0] + ".done").write_text("{"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cell_is_computed_again_and_the_numbers_are_the_same(finished, tmp_path, damage):
    folder, first = finished
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    cells = sorted((copy / "cells").glob("*.rows.parquet"))
    DAMAGE[damage](cells[0], cells[1])
    again, statuses = small_bench(["sgd", "adam"], copy)
    assert sorted(statuses) == ["done"] + ["skipped"] * 5  # that cell alone
    assert_same_numbers(first, again)


def test_a_damaged_meta_json_on_rerun_is_one_line_and_the_folder_is_left_as_it_was(finished, tmp_path):
    folder, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "meta.json").write_text("{garbage")
    before = sorted(path.name for path in copy.rglob("*"))
    result = CliRunner().invoke(
        main, ["bench", "sgd", "adam", "--tasks", "elliptic", "--studies", "1", "--trials", "2", "--seeds", "2",
               "--out", str(copy)]
    )  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [f"error: corrupt {copy / 'meta.json'}: Expecting property name "
                                                  "enclosed in double quotes: line 1 column 2 (char 1)"]  # fmt: skip
    assert sorted(path.name for path in copy.rglob("*")) == before


def test_a_new_label_for_the_same_cells_labels_their_rows(finished, tmp_path):
    """'Adam' after 'adam' (--force: another spec) reads the same content-keyed cells; the label is no
    part of a cell's content, so the rows take this run's label."""
    folder, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    result, statuses = small_bench(["sgd", "Adam"], copy, force=True)
    assert statuses == ["skipped"] * 6
    assert set(result.seeds["optimizer"]) == set(result.ranking["optimizer"]) == {"sgd", "Adam"}


def _spec_change(**changes):
    def change(folder):
        meta = json.loads((folder / "meta.json").read_text())
        meta["spec"].update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del meta["spec"][key]
        (folder / "meta.json").write_text(json.dumps(meta))

    return change


def _table_change(name, change):
    return lambda folder: _replace(folder / f"{name}.parquet", change)


PLOT_DAMAGE = [
    (
        _spec_change(optimizers=5),
        "the bench spec's 'optimizers' must be a list of distinct optimizer names, got 5",
    ),
    (_spec_change(optimizers=["sgd", "sgd"]), "'optimizers' must be a list of distinct optimizer names"),
    (
        _spec_change(optimizers=["sgd", "adamw"]),
        "seeds.parquet holds the optimizers adam, sgd, but its meta.json",
    ),
    (
        _spec_change(tasks="elliptic"),
        "the bench spec's 'tasks' must be a list of task rows, each with a name",
    ),
    (_spec_change(studies=0), "the bench spec's 'studies' must be a whole number >= 1, got 0"),
    (_spec_change(seeds="3"), "the bench spec's 'seeds' must be a whole number >= 1, got '3'"),
    (_spec_change(space=[1]), "the bench spec's 'space' must be a mapping"),
    (_spec_change(skipped=["mnist1d-mlp"]), "the bench spec's 'skipped' must be a mapping"),
    (_spec_change(trials_per_study=None), "the bench spec lacks 'trials_per_study'"),
    (lambda folder: (folder / "seeds.parquet").write_bytes(b"PAR1"), "corrupt results file"),
    (
        lambda folder: (folder / "ranking.parquet").unlink(),
        "lacks ranking.parquet, a table of its bench result",
    ),
    (_table_change("trials", lambda t: t.assign(status=1.0)), "column 'status' of"),
    (_table_change("seeds", lambda t: t.assign(optimizer="zz")), "seeds.parquet holds the optimizers zz"),
    (
        _table_change("seeds", lambda t: t.iloc[:-1]),
        "seeds.parquet holds 3 row(s) where the run its meta.json",
    ),
    (_table_change("trials", lambda t: t.iloc[:0]), "trials.parquet has no rows"),
    # every column the tables' views read (terminal, report, page): its absence is one line, not a KeyError
    *[
        (_table_change(name, lambda t, c=column: t.drop(columns=c)), f"{name}.parquet")
        for name, columns in (
            ("summary", (*SUMMARY_MEASURES, "metric")),
            ("ranking", RANKING_MEASURES),
            ("timings", ("seconds", "seconds_to_target", "status")),
        )
        for column in columns
    ],
]


@pytest.mark.parametrize("damage, expected", PLOT_DAMAGE, ids=[e for _, e in PLOT_DAMAGE])
def test_plot_of_a_damaged_bench_folder_is_one_line_and_draws_nothing(finished, tmp_path, damage, expected):
    folder, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("report.html", "profiles.p[dn][fg]"))
    damage(copy)
    result = CliRunner().invoke(main, ["plot", str(copy)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and expected in lines[0], lines
    assert not (copy / "report.html").exists() and not list(copy.glob("profiles.p[dn][fg]"))


# --- killed and resumed ------------------------------------------------------------------------------


def test_a_run_killed_by_sigkill_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path, classes):
    slow = f"{classes}:Slow"  # 3 ms a step: its cells take about a second, time enough to kill it
    args = ["bench", "sgd", slow, "--tasks", "elliptic", *TINY, "--format", "png"]
    whole = tmp_path / "whole"
    assert CliRunner().invoke(main, [*args, "--out", str(whole)]).exit_code == 0
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "optbench", *args, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("cells/*.done")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list(out.glob("cells/*.done")))
    assert 1 <= finished < 6, finished  # killed mid-way: some cells finished, not all
    assert not (out / "report.html").exists()
    resumed = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert f"kept {finished} of 6 cell(s) from an earlier run" in resumed.stderr
    assert_same_numbers(optbench.load(whole), optbench.load(out))


def test_the_python_api_takes_an_importable_class_and_refuses_others_in_one_line(
    tmp_path, classes, monkeypatch
):
    import importlib

    import torch

    monkeypatch.syspath_prepend(str(classes.parent))
    plain = importlib.import_module("user_optim").Plain
    result = optbench.bench(
        [plain, torch.optim.SGD], suite=["elliptic"], studies=1, trials_per_study=2, seeds=1
    )
    assert set(result.ranking["optimizer"]) == {"user_optim:Plain", "torch.optim.sgd:SGD"}

    class InAFunction(torch.optim.SGD):
        pass

    for bad, expected in [
        (InAFunction, "optimizer class test_the_python_api_takes"),
        (3, "an optimizer is a name or a spec such as 'adam'"),
    ]:
        with pytest.raises(OptbenchError, match=re_escape(expected)):
            optbench.bench([bad], suite=["elliptic"], folder=tmp_path / "out")
        assert not (tmp_path / "out").exists()
