"""`optbench.bench`: the protocol over a suite on the cell engine, its result, its CLI and its report."""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from user_optimizers import PLAIN_SGD

import optbench
from optbench.bench import views
from optbench.bench.profiles import task_steps
from optbench.bench.result import final_interval, metric_names, scores, summary
from optbench.bench.run import Pending, in_shard
from optbench.bench.suite import get_bench_task
from optbench.cells import Interrupted
from optbench.cli import main
from optbench.tasks.logistic import logistic_regression

SMALL = dict(suite="quick", studies=2, trials_per_study=2, seeds=2)
CELLS = 2 * 2 * 3  # tasks x optimizers x (tuning, seeds, timing) of SMALL with two optimizers
WALL_TIME = {
    "timings": ["seconds", "seconds_per_step", "seconds_to_target", "threads"],
    "summary": ["seconds_per_step", "seconds_to_target"],
}


def assert_same_numbers(one, other):
    """Every table equal, the lone reruns' wall-clock columns aside (they vary from run to run by
    nature, and with the threads of the process that ran them)."""
    for name, table in one.tables().items():
        drop = WALL_TIME.get(name, [])
        pd.testing.assert_frame_equal(other.tables()[name].drop(columns=drop), table.drop(columns=drop))


USER_OPTIMIZERS = PLAIN_SGD + textwrap.dedent("""
    class Raising(Plain):
        def step(self, closure=None):
            raise RuntimeError("this optimizer is broken")

    class NaNs(Plain):
        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("nan"))
""")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "out"
    return folder, optbench.bench(["sgd", "adamw"], folder=folder, **SMALL)


def test_a_quick_bench_writes_every_table_and_the_ranking_follows_its_steps(quick):
    folder, result = quick
    assert len(result.trials) == 2 * 2 * 2 * 2  # tasks x optimizers x studies x trials
    assert len(result.seeds) == 2 * 2 * 2 * 2  # tasks x optimizers x studies x seeds
    assert set(result.trials["status"]) <= {"reached", "not reached", "diverged"}
    # each study's winner has the fewest steps of its study
    for (opt, task, study), trials in result.trials.groupby(["optimizer", "task", "study"]):
        winner = result.winners.set_index(["optimizer", "task", "study"]).loc[(opt, task, study)]
        assert winner["steps"] == trials["steps"].fillna(np.inf).min()
    # the seeds rerun the winners' hyperparameters
    merged = result.seeds.merge(result.winners, on=["optimizer", "task", "study"], suffixes=("", "_w"))
    assert np.allclose(merged["lr"], merged["lr_w"])
    # profile at tau = 1: the fraction of tasks where the optimizer is (one of) the fastest
    steps = task_steps(result.seeds)
    best = steps.min(axis=1)
    for optimizer in ("sgd", "adamw"):
        fastest = ((steps[optimizer] == best) & np.isfinite(best)).mean()
        at_one = result.profiles.query("optimizer == @optimizer and tau == 1.0")["fraction"].item()
        assert at_one == pytest.approx(fastest)
    assert ((result.ranking["score"] >= 0) & (result.ranking["score"] <= 1)).all()
    loaded = optbench.load(folder)
    assert type(loaded).__name__ == "BenchResult"
    for name, table in result.tables().items():
        pd.testing.assert_frame_equal(loaded.tables()[name], table, check_dtype=False)


def test_a_trial_counts_the_steps_a_bare_torch_sgd_loop_needs(quick):
    """sgd's fastest trial on logistic regression, redone by hand with torch.optim.SGD under the protocol's
    schedule: linear warm-up over 5% of the budget, then a cosine to 0 at the budget (torch's LambdaLR)."""
    _, result = quick
    trials = result.trials.query("optimizer == 'sgd' and task == 'logistic'")
    trial = trials.loc[[trials["steps"].fillna(np.inf).idxmin()]]
    task, problem = get_bench_task("logistic"), logistic_regression(1.0)
    theta = task.starts([0]).clone().requires_grad_(True)
    optimizer = torch.optim.SGD([theta], lr=float(trial["lr"].item()))
    warmup = round(0.05 * task.steps)

    def factor(t):
        return (
            (t + 1) / warmup
            if t < warmup
            else 0.5 * (1 + np.cos(np.pi * (t - warmup) / (task.steps - warmup)))
        )

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    start_gap = None
    reached = np.nan
    for step in range(task.steps + 1):
        value, gradient = problem.evaluate(theta.detach())
        gap = float(value[0]) - problem.f_star
        start_gap = gap if start_gap is None else start_gap
        if gap <= task.tolerance * start_gap:
            reached = step
            break
        theta.grad = gradient
        optimizer.step()
        scheduler.step()
    assert trial["steps"].item() == reached or (np.isnan(reached) and np.isnan(trial["steps"].item()))


def test_a_rerun_computes_nothing_and_an_interrupted_one_resumes_where_it_stopped(quick, tmp_path):
    folder, first = quick
    statuses = []
    optbench.bench(["sgd", "adamw"], folder=folder, progress=lambda e: statuses.append(e.status), **SMALL)
    assert len(statuses) == CELLS and all(s.startswith("skipped") for s in statuses)

    def stop_after_three(event):
        if event.done == 3:
            raise Interrupted(signal.SIGINT)

    with pytest.raises(Interrupted):
        optbench.bench(["sgd", "adamw"], folder=tmp_path, progress=stop_after_three, **SMALL)
    statuses.clear()
    resumed = optbench.bench(
        ["sgd", "adamw"], folder=tmp_path, progress=lambda e: statuses.append(e.status), **SMALL
    )
    outcomes = [s.split(":")[0] for s in statuses]
    assert outcomes.count("skipped") == 3 and outcomes.count("done") == CELLS - 3
    assert_same_numbers(first, resumed)


def test_a_raising_optimizer_is_recorded_failed_and_nan_as_diverged(tmp_path):
    source = tmp_path / "user_optim.py"
    source.write_text(USER_OPTIMIZERS)
    raising, nans = f"{source}:Raising", f"{source}:NaNs"
    result = optbench.bench(["sgd", raising, nans], suite="quick", studies=1, trials_per_study=2, seeds=1)
    trials = result.trials.set_index("optimizer")
    assert (trials.loc[raising, "status"] == "failed: RuntimeError: this optimizer is broken").all()
    assert (trials.loc[nans, "status"] == "diverged").all()
    assert trials.loc[[raising, nans], "steps"].isna().all()
    # its lone timing rerun fails the same way, and says so apart from the trials
    assert result.failed == {
        f"{raising} on {task}{what}": "RuntimeError: this optimizer is broken"
        for task in ("elliptic", "logistic")
        for what in ("", " (timing)")
    }
    scores = result.ranking.set_index("optimizer")["score"]
    assert scores[raising] == 0 and scores[nans] == 0 and scores["sgd"] > 0
    # a failed lone rerun has no seconds per step (it stopped early); a diverged one ran its budget
    timings = result.timings.set_index("optimizer")
    assert timings.loc[raising, "seconds_per_step"].isna().all()
    assert (timings.loc[[nans, "sgd"], "seconds_per_step"] > 0).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "adamw", "nosuchopt"], "unknown optimizer 'nosuchopt'"),
        (["bench", "adamw", "--tasks", "nosuchtask"], "unknown benchmark task 'nosuchtask'"),
        (["bench", "adamw", "--suite", "huge"], "unknown suite 'huge'"),
        (["bench", "adamw", "--tasks", ","], "the benchmark suite is empty"),
        (["bench", "adamw", "--studies", "0"], "studies must be a whole number >= 1, got 0"),
        (["bench", "adamw", "--seeds", "0"], "seeds must be a whole number >= 1, got 0"),
        (["bench", "adamw", "--shard", "0/2"], "--shard must be I/N with 1 <= I <= N (e.g. 2/4), got '0/2'"),
        (["bench", "adamw", "--shard", "3/2"], "got '3/2'"),
        (["bench", "adamw", "--shard", "a/b"], "got 'a/b'"),
        (
            ["bench", "adamw", "--cluster", "local", "--cluster-option", "timeout"],
            "malformed --cluster-option",
        ),
        (["bench", "adamw", "--cluster-option", "timeout_min=5"], "needs --cluster"),
        (["bench", "adamw", "--quick", "--suite", "full"], "it cannot be combined with --suite full"),
        (["bench", "adamw", "--quick", "--tasks", "elliptic"], "it cannot be combined with --tasks elliptic"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    from click.testing import CliRunner

    out = tmp_path / "out"
    run = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert run.exit_code == 2, run.output
    assert message in run.output and len(run.output.strip().splitlines()) == 1
    assert not out.exists()


def test_a_task_budget_of_zero_steps_is_refused():
    from optbench.bench.suite import BenchTask
    from optbench.errors import OptbenchError

    with pytest.raises(OptbenchError, match="at least 1 step, got 0"):
        BenchTask("t", "elliptic", 0, 1e-6, 0.0, "")


def test_the_profile_figure_has_one_distinct_line_per_optimizer_with_its_score(quick):
    _, result = quick
    fig = result.plot()["profiles"]
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() and not line.get_label().startswith("_")]
    assert [line.get_label().split(" ")[0] for line in lines] == list(result.ranking["optimizer"])
    for line, score in zip(lines, result.ranking["score"], strict=True):
        assert f"score {score:.2f}" in line.get_label()
    looks = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines}
    assert len({look[0] for look in looks}) == len(lines)
    assert ax.get_xlim() == (1.0, 4.0) and "τ" in ax.get_xlabel() and "fraction" in ax.get_ylabel()


def test_the_report_is_one_file_with_embedded_images_and_filled_tables(quick):
    folder, result = quick
    html = (folder / "report.html").read_text()
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 1 and len(images[0]) > 1000
    assert "http://" not in html and "https://" not in html  # opens offline
    for optimizer in ("sgd", "adamw"):
        assert f"<td>{optimizer}</td>" in html
    assert "Halton" in html and "torch" in html  # the protocol and the environment
    assert "Timings are from lone reruns" in html and "Student-t" in html


def test_plot_dir_redraws_the_figures_and_the_report_from_the_saved_tables(quick, tmp_path):
    from click.testing import CliRunner

    folder, result = quick
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("cells", "report.html", "profiles.p[dn][fg]"))
    run = CliRunner().invoke(main, ["plot", str(copy)])
    assert run.exit_code == 0, run.output
    assert (copy / "profiles.png").stat().st_size > 0 and (copy / "profiles.pdf").exists()
    html = (copy / "report.html").read_text()
    tables = re.compile(r"<table.*?</table>", re.S)
    assert tables.findall(html) == tables.findall((folder / "report.html").read_text())
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 1
    for row in views.summary_view(result.summary).itertuples(index=False):
        assert all(f">{cell}</td>" in html for cell in row), row


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


# Runs first in the page: records load errors (a broken image), uncaught exceptions and console.error
# calls; once loaded, writes them with what it found into the DOM, which --dump-dom prints.
PROBE = """<script>
  const problems = [];
  window.addEventListener('error', e => problems.push(e.message || ('failed to load ' + (e.target.src || e.target.href))), true);
  const error = console.error;
  console.error = (...args) => { problems.push(args.join(' ')); error(...args); };
  window.addEventListener('load', () => {
    const images = [...document.images].map(i => i.naturalWidth);
    const rows = [...document.querySelectorAll('table')].map(t => t.querySelectorAll('tbody tr').length);
    const out = document.createElement('pre'); out.id = 'probe';
    out.textContent = 'PROBE ' + JSON.stringify({images, rows, problems});
    document.body.appendChild(out);
  });
</script>"""


def render_in_chromium(html: str, folder):
    """Load `html` in headless chromium (offline, no driver): the probe's findings, and every line the
    page wrote to the console (chromium's --enable-logging puts them on stderr as CONSOLE lines)."""
    import json

    page = folder / "check.html"
    page.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    run = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r"PROBE (\{.*?\})</pre>", run.stdout)
    assert found, run.stderr[-2000:]
    return json.loads(found.group(1)), re.findall(r":CONSOLE[^\]]*\] (.*)", run.stderr)


needs_chromium = pytest.mark.skipif(
    _chromium() is None, reason="no chromium on this machine (apt install chromium chromium-driver)"
)


@needs_chromium
def test_the_report_renders_in_headless_chromium_with_every_image_decoded_and_no_console_error(
    quick, tmp_path
):
    folder, _ = quick
    probe, console_lines = render_in_chromium((folder / "report.html").read_text(), tmp_path)
    assert probe["images"] and all(width > 0 for width in probe["images"])
    assert probe["rows"] and all(rows > 0 for rows in probe["rows"])
    assert probe["problems"] == [] and console_lines == []


@needs_chromium
def test_the_browser_check_sees_a_broken_image_a_script_error_and_a_console_error(tmp_path):
    html = """<!doctype html><html><head><title>t</title></head><body><img src="missing.png">
    <script>console.error("logged error"); undefinedFunction();</script></body></html>"""
    probe, console_lines = render_in_chromium(html, tmp_path)
    assert probe["images"] == [0]
    assert any("missing.png" in p for p in probe["problems"])
    assert any("logged error" in p for p in probe["problems"])
    assert any("undefinedFunction" in p for p in probe["problems"])
    assert any("logged error" in line for line in console_lines)


@pytest.mark.slow
def test_two_worker_processes_give_the_same_numbers_as_one(quick, tmp_path):
    _, one = quick
    two = optbench.bench(["sgd", "adamw"], folder=tmp_path, jobs=2, **SMALL)
    assert_same_numbers(one, two)


# --- scale: shards, the cluster executor, lone timings, intervals ---------------------------------


def test_two_shards_into_one_folder_split_the_cells_and_give_the_unsharded_numbers(quick, tmp_path):
    _, whole = quick
    computed = {}
    for shard in [(2, 2), (1, 2)]:
        statuses = []
        outcome = optbench.bench(
            ["adamw", "sgd"],  # another order: the shards depend on content keys only
            folder=tmp_path,
            shard=shard,
            progress=lambda e, statuses=statuses: statuses.append(e.status),
            **SMALL,
        )
        computed[shard] = {s.split(": ", 1)[1] for s in statuses if s.startswith("done")}
        if shard == (2, 2):
            assert isinstance(outcome, Pending) and (outcome.finished, outcome.total) == (2, 4)
            assert not (tmp_path / "seeds.parquet").exists()
    assert len(computed[(1, 2)]) == len(computed[(2, 2)]) == CELLS // 2
    assert not computed[(1, 2)] & computed[(2, 2)]
    assert (tmp_path / "report.html").exists()  # the last shard found every cell: it assembled
    last = optbench.load(tmp_path)
    # the same numbers as the unsharded run, whatever the optimizers' order
    key = ["task", "optimizer", "study", "seed"]
    pd.testing.assert_frame_equal(
        last.seeds.sort_values(key, ignore_index=True)[whole.seeds.columns],
        whole.seeds.sort_values(key, ignore_index=True),
    )
    rerun = optbench.bench(["sgd", "adamw"], folder=tmp_path, force=True, **SMALL)  # no shard: assembles
    assert_same_numbers(whole, rerun)


def test_a_shard_without_pairs_computes_nothing_and_the_last_shard_assembles(quick, tmp_path):
    _, whole = quick  # 2 optimizers x 2 tasks: 4 pairs, so shard 5 of 5 holds none
    empty = optbench.bench(["sgd", "adamw"], folder=tmp_path, shard=(5, 5), **SMALL)
    assert isinstance(empty, Pending) and (empty.finished, empty.total) == (0, 4)
    assert not list((tmp_path / "cells").glob("*.done"))
    for index in range(1, 5):
        outcome = optbench.bench(["sgd", "adamw"], folder=tmp_path, shard=(index, 5), **SMALL)
    assert_same_numbers(whole, outcome)
    again = optbench.bench(["sgd", "adamw"], folder=tmp_path, shard=(5, 5), **SMALL)  # finds all done
    assert_same_numbers(whole, again)


def test_shards_cover_every_pair_once_in_balanced_sizes():
    keys = [f"{k:016x}" for k in (9, 3, 7, 1, 5, 8, 2)]
    items = list(range(len(keys)))
    shards = [in_shard(items, keys, (i, 3)) for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == items
    assert sorted(len(s) for s in shards) == [2, 2, 3]
    assert shards[0] == [0, 3, 4]  # the keys 1, 5 and 9: first, fourth and seventh in key order
    assert in_shard(items, keys, (1, 1)) == items


@pytest.mark.parametrize("shard", [(0, 2), (3, 2), ("a", "b"), (1,), (True, 2)])
def test_a_bad_shard_is_refused_before_anything_is_written(tmp_path, shard):
    from optbench.errors import OptbenchError

    with pytest.raises(OptbenchError, match="shard must be"):
        optbench.bench(["sgd"], folder=tmp_path / "out", shard=shard, **SMALL)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cluster", ["debug", pytest.param("local", marks=pytest.mark.slow)])
def test_the_submitit_executor_gives_the_local_numbers_one_job_per_batched_cell(
    quick, tmp_path, cluster, monkeypatch
):
    pytest.importorskip("submitit", reason="submitit (the 'cluster' extra) is not installed")
    from optbench.cells import Submitit

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    _, local = quick
    executor = Submitit(cluster=cluster, parameters={"timeout_min": 10}, poll_seconds=0.2)
    result = optbench.bench(["sgd", "adamw"], folder=tmp_path, executor=executor, **SMALL)
    assert_same_numbers(local, result)
    assert list(result.statuses.values()) == ["done"] * CELLS
    if cluster == "local":  # one job per cell, each a whole batch of trials (or a lone timing)
        assert len(list((tmp_path / ".submitit").rglob("*_result.pkl"))) == CELLS


def test_each_winner_is_rerun_alone_for_its_seconds(quick):
    _, result = quick
    timings = result.timings.set_index(["task", "optimizer"])
    assert len(timings) == 4 and not timings.index.duplicated().any()
    seeds = result.seeds.assign(steps=result.seeds["steps"].fillna(np.inf))
    for (task, optimizer), lone in timings.iterrows():
        mine = seeds[(seeds["task"] == task) & (seeds["optimizer"] == optimizer)]
        medians = mine.groupby("study")["steps"].median()
        assert lone["study"] == medians.index[medians.to_numpy().argmin()]  # the task's winner
        # the same trial as seed 0 of its study in the batched seeds cell (noiseless tasks: same steps)
        batched = mine[(mine["study"] == lone["study"]) & (mine["seed"] == 0)].iloc[0]
        assert lone["lr"] == batched["lr"] and lone["seed"] == 0
        assert np.nan_to_num(lone["steps"], nan=np.inf) == batched["steps"]
        assert lone["seconds"] > 0
        assert lone["seconds_per_step"] == pytest.approx(lone["seconds"] / get_bench_task(task).steps)
        assert np.allclose(
            lone["seconds_to_target"], lone["steps"] * lone["seconds_per_step"], equal_nan=True
        )
    # the summary's seconds to target are its own steps (median over seeds) at the lone rerun's pace
    summary = result.summary
    reached = np.isfinite(summary["steps"])
    assert np.allclose(
        summary["seconds_to_target"][reached], (summary["steps"] * summary["seconds_per_step"])[reached]
    )
    assert summary["seconds_to_target"][~reached].isna().all()
    assert (result.timings["threads"] == 1).all()  # timed on one thread, networks too
    # the profiles use steps only: the same ranking from the seeds table alone
    profiles, ranking = scores(result.seeds)
    pd.testing.assert_frame_equal(ranking, result.ranking)


def test_the_final_metric_interval_is_students_t_over_the_winners_seeds(quick):
    from scipy import stats

    _, result = quick
    assert len(result.summary) == 4
    for row in result.summary.itertuples():
        rows = result.seeds.query("task == @row.task and optimizer == @row.optimizer and study == @row.study")
        values = rows["final_metric"].to_numpy()
        assert row.metric == "f - f*"  # the quick suite's tasks are surfaces
        np.testing.assert_allclose(values, rows["final_gap"].to_numpy())
        assert row.seeds == len(values) == 2 and row.final_metric == pytest.approx(values.mean())
        reference = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
        assert row.final_metric_low == pytest.approx(max(0.0, reference.low))
        assert row.final_metric_high == pytest.approx(reference.high)


def test_the_final_interval_covers_the_mean_95_percent_of_the_time():
    # K = 3 seeds of a normal metric, wide enough that some intervals are cut at 0
    draws = np.random.default_rng(0).normal(1.1, 0.8, size=(4000, 3))
    covered = [low <= 1.1 <= high for low, high in (final_interval(d) for d in draws)]
    assert 0.93 <= np.mean(covered) <= 0.97
    assert all(np.isnan(final_interval(np.array(v))).all() for v in ([1.0], [1.0, np.inf], [np.nan, 2.0]))


def test_an_optimizer_that_takes_beta2_as_a_number_runs_each_trial_alone_and_equals_torch():
    """RAdam's rectification reads β2 as a number, so the searched betas cannot be per-trial tensors:
    its trials run one at a time (mode 'per_trial'), never 'failed', and each ends where a lone
    torch.optim.RAdam run under the protocol's schedule ends."""
    result = optbench.bench(["radam"], suite=["elliptic"], studies=1, trials_per_study=2, seeds=1)
    trials = result.trials
    assert not trials["status"].str.startswith("failed").any(), trials["status"].tolist()
    assert set(trials["mode"]) == {"per_trial"}
    task = get_bench_task("elliptic")
    warmup = round(0.05 * task.steps)
    for row in trials.itertuples():
        x = task.starts([0]).clone()
        optimizer = torch.optim.RAdam([x], lr=row.lr, betas=(row.beta1, row.beta2))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda t: (
                (t + 1) / warmup
                if t < warmup
                else 0.5 * (1 + np.cos(np.pi * (t - warmup) / (task.steps - warmup)))
            ),
        )
        for _ in range(task.steps):
            x.grad = task.surface.evaluate(x.detach())[1]
            optimizer.step()
            scheduler.step()
        gap = float(task.surface.evaluate(x.detach())[0].item()) - task.surface.minimum_value
        assert row.final_metric == pytest.approx(gap, rel=1e-9, abs=1e-12)


def test_a_network_tasks_summary_names_its_metric_and_gives_its_t_interval():
    from scipy import stats

    seeds = pd.DataFrame(
        dict(task="digits-mlp", optimizer="adamw", study=0, seed=[0, 1, 2], steps=[10.0, 20.0, 30.0],
             final_metric=[0.95, 0.96, 0.98])
    )  # fmt: skip
    timings = pd.DataFrame(
        dict(
            task=["digits-mlp"],
            optimizer=["adamw"],
            study=[0],
            seconds_per_step=[0.01],
            seconds_to_target=[0.2],
        )
    )
    row = summary(seeds, timings, metric_names([{"name": "digits-mlp", "metric": "val_accuracy"}])).iloc[0]
    reference = stats.ttest_1samp([0.95, 0.96, 0.98], 0.0).confidence_interval(0.95)
    assert row.metric == "val_accuracy" and row.steps == 20.0
    assert row.final_metric == pytest.approx(0.9633333333333334)
    assert (row.final_metric_low, row.final_metric_high) == pytest.approx((reference.low, reference.high))
    assert metric_names([{"name": "elliptic"}]) == {"elliptic": "f - f*"}


def test_a_rerun_from_the_cli_says_how_many_cells_it_kept(tmp_path):
    from click.testing import CliRunner

    out = tmp_path / "out"
    args = ["bench", "sgd", "--tasks", "elliptic", "--studies", "1", "--trials", "2", "--seeds", "1"]
    args += ["--out", str(out)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "kept" not in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "kept 3 of 3 cell(s) from an earlier run" in again.output  # tuning, seeds, timing


def test_the_report_says_how_each_cell_ran_the_schedule_and_what_was_skipped(quick):
    import copy

    from optbench.bench.report import render

    _, result = quick
    html = render(result)
    assert "How the trials ran" in html and "No learning-rate schedule" not in html
    assert "linear warm-up over the first 5% of the budget, then a cosine" in html
    for row in result.trials.groupby(["task", "optimizer"])["mode"].first().reset_index().itertuples():
        assert re.search(rf"<td>{row.task}</td>\s*<td>{row.optimizer}</td>\s*<td>{row.mode}</td>", html)
    assert "Tasks skipped on this machine" not in html
    skipped = copy.copy(result)
    skipped.meta = {**result.meta, "skipped": {"fashion-mnist-mlp": "skipped: no Fashion-MNIST data"}}
    assert "<li>fashion-mnist-mlp: skipped: no Fashion-MNIST data</li>" in render(skipped)


def test_quick_runs_the_quick_suite(tmp_path):
    import json

    from click.testing import CliRunner

    from optbench.tasks.defaults import BENCH_SUITES

    out = tmp_path / "out"
    args = ["bench", "sgd", "--quick", "--studies", "1", "--trials", "1", "--seeds", "1", "--out", str(out)]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    tasks = [task["name"] for task in json.loads((out / "meta.json").read_text())["spec"]["tasks"]]
    assert tasks == list(BENCH_SUITES["quick"])


def test_the_callers_torch_threads_change_no_number_and_are_kept():
    """Every cell computes on one intra-op thread whatever the caller set (the timings say so), so a
    float32 network's numbers, which depend on the thread count (the language model's do), cannot
    depend on the caller or on --jobs; the caller's own setting is back afterwards."""
    before, runs = torch.get_num_threads(), []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            runs.append(
                optbench.bench(
                    ["sgd"], suite=["logistic", "shakespeare-tiny"], studies=1, trials_per_study=2, seeds=1
                )
            )
            assert torch.get_num_threads() == threads
            assert runs[-1].timings["threads"].tolist() == [1] * len(runs[-1].timings)
    finally:
        torch.set_num_threads(before)
    assert_same_numbers(*runs)


def test_on_a_noisy_task_seed_0_repeats_the_tuning_trial_and_the_timing_repeats_its_rerun():
    """A trial's gradient noise is keyed by its seed, not drawn in row order from one generator per cell:
    the winner's seed-0 rerun (batched with other seeds) is its tuning trial (batched with other trials),
    and the lone timing rerun gives the steps it times (seconds to target = steps x seconds per step)."""
    result = optbench.bench(
        ["adam", "lamb"], suite=["noisy-rosenbrock"], studies=2, trials_per_study=3, seeds=2
    )
    assert get_bench_task("noisy-rosenbrock").noise > 0
    keys = ["optimizer", "study", "trial"]
    winners = result.winners.set_index(keys)
    seed_0 = result.seeds[result.seeds["seed"] == 0].set_index(keys)
    assert len(seed_0) == 4
    for index, rerun in seed_0.iterrows():
        tuned = winners.loc[index]  # a winner's steps are ∞ where it never reached, a rerun's NaN
        assert np.array_equal(
            [tuned["steps"], tuned["final_metric"]],
            [np.nan_to_num(rerun["steps"], nan=np.inf), rerun["final_metric"]],
            equal_nan=True,
        ), index
    seeds = result.seeds.set_index(["optimizer", "study", "seed"])
    for lone in result.timings.itertuples():
        rerun = seeds.loc[(lone.optimizer, lone.study, lone.seed)]
        assert np.array_equal(
            [lone.steps, lone.final_metric], [rerun["steps"], rerun["final_metric"]], equal_nan=True
        )
        assert np.allclose(lone.seconds_to_target, lone.steps * lone.seconds_per_step, equal_nan=True)
    # seeds differ: the noise of seed 1 is not seed 0's
    assert not np.array_equal(
        result.seeds[result.seeds["seed"] == 1]["final_metric"].to_numpy(), seed_0["final_metric"].to_numpy()
    )


def test_optbench_bench_shows_the_signature_of_the_function_it_calls():
    import inspect

    from optbench.bench.run import bench

    assert inspect.signature(optbench.bench) == inspect.signature(bench)
    assert "trials_per_study" in inspect.signature(optbench.bench).parameters
    with pytest.raises(TypeError, match="unexpected keyword argument 'trials'"):
        optbench.bench(["sgd"], trials=3)
