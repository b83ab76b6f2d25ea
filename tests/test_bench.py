"""`optbench.bench`: the protocol over a suite on the cell engine, its result, its CLI and its report."""

import re
import shutil
import signal
import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

import optbench
from optbench.bench.profiles import task_steps
from optbench.bench.suite import get_bench_task
from optbench.cells import Interrupted
from optbench.cli import main
from optbench.tasks.logistic import logistic_regression

SMALL = dict(suite="quick", studies=2, trials_per_study=2, seeds=2)

USER_OPTIMIZERS = textwrap.dedent("""
    import torch

    class Raising(torch.optim.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            raise RuntimeError("this optimizer is broken")

    class NaNs(torch.optim.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, dict(lr=lr))

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
    assert len(statuses) == 8 and all(s.startswith("skipped") for s in statuses)

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
    assert outcomes.count("skipped") == 3 and outcomes.count("done") == 5
    for name, table in first.tables().items():
        pd.testing.assert_frame_equal(resumed.tables()[name], table)


def test_a_raising_optimizer_is_recorded_failed_and_nan_as_diverged(tmp_path):
    source = tmp_path / "user_optim.py"
    source.write_text(USER_OPTIMIZERS)
    raising, nans = f"{source}:Raising", f"{source}:NaNs"
    result = optbench.bench(["sgd", raising, nans], suite="quick", studies=1, trials_per_study=2, seeds=1)
    trials = result.trials.set_index("optimizer")
    assert (trials.loc[raising, "status"] == "failed: RuntimeError: this optimizer is broken").all()
    assert (trials.loc[nans, "status"] == "diverged").all()
    assert trials.loc[[raising, nans], "steps"].isna().all()
    assert result.failed == {
        f"{raising} on {task}": "RuntimeError: this optimizer is broken" for task in ("elliptic", "logistic")
    }
    scores = result.ranking.set_index("optimizer")["score"]
    assert scores[raising] == 0 and scores[nans] == 0 and scores["sgd"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "adamw", "nosuchopt"], "unknown optimizer 'nosuchopt'"),
        (["bench", "adamw", "--tasks", "nosuchtask"], "unknown benchmark task 'nosuchtask'"),
        (["bench", "adamw", "--suite", "huge"], "unknown suite 'huge'"),
        (["bench", "adamw", "--tasks", ","], "the benchmark suite is empty"),
        (["bench", "adamw", "--studies", "0"], "studies must be a whole number >= 1, got 0"),
        (["bench", "adamw", "--seeds", "0"], "seeds must be a whole number >= 1, got 0"),
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


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="no chromium on this machine (apt install chromium)")
def test_the_report_renders_in_headless_chromium_with_every_image_decoded(quick, tmp_path):
    """Chromium's own headless mode runs a script in the page that writes what it found into the DOM."""
    folder, _ = quick
    page = tmp_path / "check.html"
    probe = """<script>window.addEventListener('load', () => {
      const images = [...document.images].map(i => i.naturalWidth);
      const rows = [...document.querySelectorAll('table')].map(t => t.querySelectorAll('tbody tr').length);
      const out = document.createElement('pre'); out.id = 'probe';
      out.textContent = 'PROBE ' + JSON.stringify({images, rows});
      document.body.appendChild(out);
    });</script>"""
    page.write_text((folder / "report.html").read_text().replace("</body>", probe + "</body>"))
    run = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r"PROBE (\{.*?\})", run.stdout)
    assert found, run.stderr[-2000:]
    import json

    probe_result = json.loads(found.group(1))
    assert probe_result["images"] and all(width > 0 for width in probe_result["images"])
    assert probe_result["rows"] and all(rows > 0 for rows in probe_result["rows"])


@pytest.mark.slow
def test_two_worker_processes_give_the_same_numbers_as_one(quick, tmp_path):
    _, one = quick
    two = optbench.bench(["sgd", "adamw"], folder=tmp_path, jobs=2, **SMALL)
    for name, table in one.tables().items():
        pd.testing.assert_frame_equal(two.tables()[name], table)
