"""How long the command line takes to answer without doing any work, as a ratio to a bare `import torch`.

    .venv/bin/python benchmarks/startup.py [--rounds 7]

Times, in fresh interpreters started by this one process:
  baseline       python -c "import torch"
  help           optbench --help
  command        optbench compare --help
  train help     optbench train --help
  sweep help     optbench sweep --help
  typo           optbench compare adma                 (one-line "unknown optimizer" error, exit 2)
  bad task       optbench train --task digts           (one-line "unknown task" error, exit 2)
  bad sweep      optbench sweep --task digts           (the same, from sweep)
  bad surface    optbench compare sgd --surface elipic (one-line "unknown surface" error, exit 2)
The variants take turns within each round (baseline, help, command, ..., baseline, ...),
so a change in the machine's load affects them alike; each ratio is the median over rounds of
variant / baseline of the same round, printed with its range. Target (issue 19): every ratio well
under 0.5. The CLI runs as `python -m optbench` from this source tree, as installed by `pip install -e`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {
    "baseline": ["-c", "import torch"],
    "help": ["-m", "optbench", "--help"],
    "command": ["-m", "optbench", "compare", "--help"],
    "train help": ["-m", "optbench", "train", "--help"],
    "sweep help": ["-m", "optbench", "sweep", "--help"],
    "typo": ["-m", "optbench", "compare", "adma"],
    "bad task": ["-m", "optbench", "train", "--task", "digts"],
    "bad sweep": ["-m", "optbench", "sweep", "--task", "digts"],
    "bad surface": ["-m", "optbench", "compare", "sgd", "--surface", "elipic"],
}
EXPECTED_STATUS = {"typo": 2, "bad task": 2, "bad sweep": 2, "bad surface": 2}


def seconds(args: list[str]) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, env=env, check=False)
    return time.perf_counter() - begin, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    seconds(VARIANTS["baseline"])  # the first start reads everything from disk: not a measurement
    times = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, args in VARIANTS.items():
            elapsed, status = seconds(args)
            if status != EXPECTED_STATUS.get(name, 0):
                sys.exit(f"{name}: exit status {status}, expected {EXPECTED_STATUS.get(name, 0)}")
            times[name].append(elapsed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load:.1f}, Python {platform.python_version()}, {rounds} rounds"
    )
    base = times["baseline"]
    print(f"{'variant':12} {'median s':>9} {'ratio to import torch (median, range)':>40}")
    for name, values in times.items():
        ratios = [value / reference for value, reference in zip(values, base, strict=True)]
        print(
            f"{name:12} {statistics.median(values):9.3f} "
            f"{statistics.median(ratios):18.3f}  ({min(ratios):.3f} - {max(ratios):.3f})"
        )


if __name__ == "__main__":
    main()
