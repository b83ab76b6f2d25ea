"""The published benchmark (docs/bench-results.md): every built-in optimizer that applies, on SUITE,
run once by `optbench bench` and drawn from the saved run.

    python docs/bench_page.py            # run the benchmark (minutes), save it, draw the page
    python docs/bench_page.py --draw     # redraw the figure and the page's tables from the saved run
    python docs/bench_page.py --check    # runs nothing: fails (exit 1) when the page or the figure
                                         # is out of step with the saved run (CI runs this)

The run is saved in docs/bench-results/run/ (its tidy parquet tables and meta.json, no cells) with
run.json (the command, its wall time, the machine and its load). The benchmark runs in
results/bench-page/ (ignored by git): an interrupted run resumes there, and run.json then says how
many cells it found finished. The page's figure is
docs/bench-results/profiles.png, and its tables sit between the `<!-- bench-page -->` markers of
docs/bench-results.md, which this script rewrites. CI never reruns the benchmark.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "bench-results"
RUN = OUT / "run"
FACTS = OUT / "run.json"
SCRATCH = ROOT / "results" / "bench-page"
FIGURE = OUT / "profiles.png"
PAGE = ROOT / "docs" / "bench-results.md"
BEGIN, END = "<!-- bench-page -->", "<!-- /bench-page -->"

# torch's 15 less those that do not apply, the presets, then the newer ones (`optbench list`)
OPTIMIZERS = [
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "adamw",
    "nadam",
    "radam",
    "adamax",
    "rmsprop",
    "adagrad",
    "adadelta",
    "asgd",
    "rprop",
    "adafactor",
    "lion",
    "adopt",
    "lamb",
    "soap",
    "prodigy",
    "adamwschedulefree",
    "sgdschedulefree",
    "lookahead",
]
LEFT_OUT = {
    "sparseadam": "takes sparse gradients only (embeddings); every task here has dense ones",
    "lbfgs": "one step runs up to max_iter = 20 gradient evaluations with its own line search, so "
    "steps to target would not count what the others' steps count",
    "muon": "orthogonalises 2-D weight matrices: on the four surfaces the parameter is a vector, and a "
    "ranking over the two networks alone would not compare with the others'",
}
# The default suite: four surfaces and the two cheap networks (digits MLP, MNIST-1D MLP).
SUITE = "default"
# --allow-long: 22 optimizers on the default suite are about 1.9e8 coordinate-steps of work by
# `bench.cost`'s estimate (65 CPU minutes measured), over the quarter hour `bench` runs unasked
COMMAND = ["bench", *OPTIMIZERS, "--suite", SUITE, "--jobs", "2", "--allow-long"]


def run() -> None:
    """Run the benchmark as a user types it, save the run and its facts, then draw."""
    import optbench

    command = [sys.executable, "-m", "optbench", *COMMAND, "--out", str(SCRATCH), "--format", "png"]
    resumed = len(list(SCRATCH.glob("cells/*.done")))
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    optbench.load(SCRATCH).save(RUN, force=True)
    facts = {
        "command": "optbench " + shlex.join(COMMAND),
        "seconds": round(seconds, 1),
        "cells_found_finished": resumed,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": round(load, 2),
    }
    FACTS.write_text(json.dumps(facts, indent=2) + "\n")
    draw()


def draw() -> None:
    """The figure and the page's tables, from the saved run alone."""
    from optbench.plots.style import save_figures

    result = saved()
    save_figures({"profiles": result.plot()["profiles"]}, OUT, ("png",))
    PAGE.write_text(with_block(PAGE.read_text(), block(result)))


def check() -> list[str]:
    """The problems that make the page out of step with the saved run (empty: in step)."""
    if not (RUN / "meta.json").exists() or not FACTS.exists():
        return [f"no saved run in {RUN.name}/ and {FACTS.name}: run python docs/bench_page.py (minutes)"]
    problems = []
    result = saved()
    if not FIGURE.exists():
        problems.append(f"{FIGURE.name} is missing: run python docs/bench_page.py --draw")
    if with_block(PAGE.read_text(), block(result)) != PAGE.read_text():
        problems.append(
            f"{PAGE.name}'s tables differ from the saved run: run python docs/bench_page.py --draw"
        )
    ran = set(result.meta["optimizers"])
    if ran != set(OPTIMIZERS):
        problems.append(
            f"the saved run has other optimizers than the script's: {sorted(ran ^ set(OPTIMIZERS))}"
        )
    return problems


def saved():
    import optbench

    return optbench.load(RUN)


def block(result) -> str:
    """The markdown between the markers: the run's facts, the ranking with intervals, steps per task,
    each task's winner with its final gap interval and seconds, what is left out."""
    facts = json.loads(FACTS.read_text())
    from optbench.bench.views import ranking_view, summary_view

    lines = [
        BEGIN,
        "",
        f"`{facts['command']}` took {facts['seconds']:.0f} s of wall time on {facts['date']} "
        + (
            f"(resuming {facts['cells_found_finished']} finished cells of an interrupted run) "
            if facts["cells_found_finished"]
            else ""
        )
        + f"({facts['machine']}, load average {facts['load_average_at_start']} at the start; "
        f"torch {json.loads((RUN / 'meta.json').read_text())['torch']}), "
        f"{result.meta['studies']} studies × {result.meta['trials_per_study']} trials and "
        f"{result.meta['seeds']} seeds per task and optimizer.",
        "",
        f"![Performance profiles of every built-in optimizer on the {SUITE} suite](bench-results/profiles.png)",
        "",
        "Ranking (score: area under the profile up to τ = 4; 95% bootstrap intervals over studies and "
        "seeds) and median steps to the target per task (∞: not reached):",
        "",
        *markdown(ranking_view(result.ranking, result.task_steps())),
        "",
        "Each task's winner (the study winner with the fewest steps): its final metric (f − f* on a "
        "surface, the target's metric on a network) as the mean over seeds with a 95% Student-t interval, "
        "and seconds from its lone rerun (one trial, one process):",
        "",
        *markdown(summary_view(result.summary.sort_values(["task", "steps", "optimizer"]))),
    ]
    lines += ["", "Left out:", ""]
    lines += [f"- `{name}`: {reason}." for name, reason in LEFT_OUT.items()]
    lines += ["", END]
    return "\n".join(lines)


def markdown(view) -> list[str]:
    """A `bench.views` frame (text already formatted, as the terminal and the report show it) as the
    lines of a markdown table."""
    return [
        "| " + " | ".join(map(str, view.columns)) + " |",
        "|---" * len(view.columns) + "|",
        *("| " + " | ".join(row) + " |" for row in view.itertuples(index=False)),
    ]


def with_block(page: str, text: str) -> str:
    """`page` with the text between its markers replaced by `text` (markers included)."""
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{PAGE}: the markers {BEGIN} and {END} are missing")
    head, rest = page.split(BEGIN, 1)
    return head + text + rest.split(END, 1)[1]


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        found = check()
        for problem in found:
            print(problem, file=sys.stderr)
        sys.exit(1 if found else 0)
    elif sys.argv[1:] == ["--draw"]:
        draw()
    elif not sys.argv[1:]:
        run()
    else:
        raise SystemExit(__doc__)
