"""Evaluating an optimizer where its authors evaluate it: its evaluation rule, as functions a loop calls.

- Schedule-Free takes gradients at y but its answer is the averaged iterate x: `optimizer.eval()`
  moves the parameters to x and `optimizer.train()` back to y (Defazio et al. 2024, and the
  schedulefree package's usage notes).
- Lookahead's answer is its slow weights φ: the reference package (pytorch_optimizer) evaluates
  between `backup_and_load_cache()` (θ saved, φ loaded) and `clear_and_load_backup()` (θ back), as
  the paper's own code does.
- BatchNorm: running statistics gathered during training belong to the weights trained at, not to
  the evaluation weights. The schedulefree README's recipe, used for every rule here: right before
  evaluation, at the evaluation weights, `model.train()` and forward passes over training batches
  under no_grad (the README: "something like" 50), then `model.eval()`.

`evaluation_weights` restores everything afterwards exactly from copies (parameters, BatchNorm
buffers, the random number generators that dropout draws from), so evaluating changes no later
training number. An optimizer without a rule is left alone (and no statistics are recomputed).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

# the schedulefree README's "something like" count of training batches for BatchNorm statistics
RECOMPUTE_BN_BATCHES = 50


def has_eval_mode(optimizer: torch.optim.Optimizer) -> bool:
    """Schedule-Free's train/eval switch."""
    return callable(getattr(optimizer, "eval", None)) and callable(getattr(optimizer, "train", None))


def has_slow_weights(optimizer: torch.optim.Optimizer) -> bool:
    """Lookahead's evaluation at φ (the reference package's method names)."""
    return callable(getattr(optimizer, "backup_and_load_cache", None)) and callable(
        getattr(optimizer, "clear_and_load_backup", None)
    )


def has_evaluation_rule(optimizer: torch.optim.Optimizer) -> bool:
    return has_eval_mode(optimizer) or has_slow_weights(optimizer)


@contextmanager
def evaluation_mode(optimizer: torch.optim.Optimizer):
    """Inside: the parameters at `optimizer.eval()`'s point; after: back in train mode at exactly the
    former point. Optimizers without the switch are left alone."""
    with evaluation_weights(optimizer):
        yield


@contextmanager
def evaluation_weights(optimizer: torch.optim.Optimizer, model: torch.nn.Module | None = None, batches=()):
    """Inside: the parameters at the optimizer's evaluation point (Schedule-Free's x, Lookahead's φ)
    and, when `model` has BatchNorm layers, their running statistics recomputed there from `batches`
    (an iterable of input tensors: the training batches of the schedulefree README's recipe). After:
    parameters, BatchNorm buffers, train/eval modes and random generators exactly as before.

    Optimizers without an evaluation rule: nothing changes, `batches` is not read.
    """
    if not has_evaluation_rule(optimizer):
        yield
        return
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    with torch.no_grad():
        training_point = [p.detach().clone() for p in parameters]
    if has_eval_mode(optimizer):
        optimizer.eval()
    else:
        optimizer.backup_and_load_cache()
    norms = _batch_norms(model)
    saved = [{name: b.clone() for name, b in norm.named_buffers(recurse=False)} for norm in norms]
    try:
        if norms:
            recompute_batch_norm_statistics(model, batches)
        yield
    finally:
        if has_eval_mode(optimizer):
            optimizer.train()
        else:
            optimizer.clear_and_load_backup()
        with torch.no_grad():
            for p, value in zip(parameters, training_point, strict=True):
                p.copy_(value)
            for norm, buffers in zip(norms, saved, strict=True):
                for name, value in buffers.items():
                    getattr(norm, name).copy_(value)


def recompute_batch_norm_statistics(model: torch.nn.Module, batches) -> None:
    """The schedulefree README's recipe: `model.train()`, forward passes over `batches` under no_grad
    (updating the BatchNorm running statistics at the current weights), then the model's former mode.
    The random generators (dropout) are restored afterwards, so training draws the same numbers."""
    was_training = model.training
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        model.train()
        for inputs in batches:
            model(inputs)
    model.train(was_training)


def _batch_norms(model) -> list:
    if model is None:
        return []
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
