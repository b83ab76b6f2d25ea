"""What compiling costs on the compiled fast path: the first step, cold and warm, per algorithm.

    python benchmarks/compiled_update.py                          # every compiled algorithm
    python benchmarks/compiled_update.py --algorithms adam,sgd --shapes lenet5

For each algorithm, two fresh Python processes run `fast(cls, compiled=True)` on the chosen
parameter shapes: the first with an empty inductor cache directory ("cold": tracing, inductor's
code generation and the C++ compiler), the second with the directory the first filled ("warm":
what every later process of a user pays). Each reports its first step (gathering the buffers and
compiling), its second step, and the fastest of 10 further steps. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

CHILD = """
import json, sys, time, torch
sys.path.insert(0, {benchmarks!r})
from step_cost import SHAPES, make_params
from optbench.optimizers import ALGORITHMS, fast
algorithm = ALGORITHMS[{name!r}]
params = make_params(SHAPES[{shapes!r}](), "cpu", sparse=False)
optimizer = fast(algorithm.ours, compiled=True)(params, **algorithm.test_hparams)
times = []
for _ in range(12):
    start = time.perf_counter()
    optimizer.step()
    times.append(time.perf_counter() - start)
print(json.dumps(dict(path=optimizer.fast_path, first=times[0], second=times[1], steady=min(times[2:]))))
"""


def first_steps(name: str, shapes: str, cache: str) -> dict:
    code = CHILD.format(benchmarks=str(Path(__file__).parent), name=name, shapes=shapes)
    environment = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
    start = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    return result


def main():
    from optbench.optimizers import FAST_ALGORITHMS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algorithms", default=",".join(FAST_ALGORITHMS))
    parser.add_argument("--shapes", default="resnet18")
    args = parser.parse_args()
    import torch

    print(
        f"# compile cost of the compiled fast path, {date.today()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, {args.shapes} shapes\n"
    )
    print(
        "| algorithm | cold: 1st step (s) | cold: 2nd step (s) | warm: 1st step (s) | warm: 2nd step (s) "
        "| steady (ms) | warm process (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.algorithms.split(","):
        with tempfile.TemporaryDirectory() as cache:
            try:
                cold = first_steps(name, args.shapes, cache)
                warm = first_steps(name, args.shapes, cache)
            except subprocess.CalledProcessError as error:  # e.g. no C++ compiler: the row says why
                reason = (error.stderr or "").strip().splitlines()[-1:] or [f"exit status {error.returncode}"]
                print(f"| {name} | skipped: {reason[0][:150]} | - | - | - | - | - |", flush=True)
                continue
        print(
            f"| {name} | {cold['first']:.2f} | {cold['second']:.2f} | {warm['first']:.2f} | "
            f"{warm['second']:.2f} | {warm['steady'] * 1e3:.2f} | {warm['process']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
