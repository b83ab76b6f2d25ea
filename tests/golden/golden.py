"""The golden check: fixed commands whose parquet tables must keep their content hashes.

A refactor must not change a single number. Each command below runs into its own folder; every
parquet table it writes is read back, its floats rounded to 10 significant digits (so the hash does
not depend on how a file was compressed or on the last bit of a sum), and hashed. The hashes live in
`hashes.json` beside this file.

    python tests/golden/golden.py            # check; exit 1 and list what changed
    python tests/golden/golden.py --update   # record new hashes (say why in the commit)

A deliberate change of numbers updates the hashes in the same commit and says why there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
HASHES = HERE / "hashes.json"

COMMANDS = {
    "compare-elliptic": "compare sgd adam rmsprop --surface elliptic",
    "compare-noise-repro": "compare sgd adam --noise 0.5 --trials 3 --check-repro",
    "compare-tune": "compare sgd momentum adam --surface elliptic --tune",
    "compare-linreg": "compare sgd adam:lr=0.05 --surface linreg --trials 2 --steps 200",
    "grid-sgd": "grid sgd --surface elliptic --lr 1e-3:1:8 --momentum 0:0.9:6",
    "train-digits-lenet": "train --task digits --model lenet --optimizer sgd --optimizer adam --epochs 2",
    "train-scalar": "train --task scalar",
    "train-linreg": "train --task linreg --optimizer sgd --optimizer adam:lr=0.05",
    "train-ddp": "train --task digits --model mlp --optimizer sgd --epochs 1 --nproc 2",
    "sweep-digits": "sweep --batch-size 16,64 --lr-scale linear,none --steps 60 --evaluations 20",
    "sweep-surface": "sweep --task surface:elliptic --batch-size 1,4 --lr-scale linear --steps 50",
}


# Wall-clock measurements differ from run to run; everything else must not. The sweep cell key (a
# hash of the cell's settings) is left out so that a redesign may change how cells are keyed.
TIMING_COLUMNS = {
    "wall_time",
    "train_time",
    "epoch_time",
    "samples_per_s",
    "tokens_per_s",
    "seconds",
    "wall_s",
    "elapsed",
    "time_s",
}


def table_digest(path: Path) -> str:
    frame = pd.read_parquet(path)
    frame = frame.drop(columns=[c for c in frame.columns if c in TIMING_COLUMNS or c == "cell"])
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].map(
                lambda x: (
                    np.format_float_positional(x, precision=10, fractional=False)
                    if np.isfinite(x)
                    else repr(x)
                )
            )
    text = frame.to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_command(name: str, args: str, root: Path) -> dict[str, str]:
    out = root / name
    cli = [
        sys.executable,
        "-c",
        "from optbench.cli import entry; entry()",
        *shlex.split(args),
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    done = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr[-2000:]}")
    # Per-cell files are named by cell key and gathered into the merged tables, which are compared.
    tables = [p for p in sorted(out.rglob("*.parquet")) if "cells" not in p.relative_to(out).parts]
    return {str(p.relative_to(out)): table_digest(p) for p in tables}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--update", action="store_true", help="record the hashes instead of checking them")
    parser.add_argument("--only", action="append", help="run only this command (repeatable)")
    options = parser.parse_args()
    names = options.only or list(COMMANDS)
    recorded = json.loads(HASHES.read_text()) if HASHES.exists() else {}
    changed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            got = run_command(name, COMMANDS[name], Path(tmp))
            want = recorded.get(name)
            status = "ok" if got == want else "CHANGED"
            if got != want:
                changed.append(name)
                for table in sorted(set(got) | set(want or {})):
                    if (want or {}).get(table) != got.get(table):
                        print(f"    {table}: {(want or {}).get(table)} -> {got.get(table)}")
            print(f"{status:8} {name}: {len(got)} tables", flush=True)
            recorded[name] = got if options.update else recorded.get(name)
    if options.update:
        HASHES.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        print(f"recorded {HASHES}")
    elif changed:
        raise SystemExit(f"golden check failed: {', '.join(changed)}")


if __name__ == "__main__":
    main()
