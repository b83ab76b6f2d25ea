"""Evaluating an optimizer with a train/eval switch (Schedule-Free) where it is meant to be evaluated.

Schedule-Free takes gradients at y but its answer is the averaged iterate x: `optimizer.eval()`
moves the parameters to x and `optimizer.train()` back to y (Defazio et al. 2024, and the
schedulefree package's usage notes). Going there and back round-trips y only up to rounding, so
`evaluation_mode` restores y exactly from a copy: evaluating changes no later training number.

BatchNorm caveat (from the same notes): running statistics gathered at y are not those of x; a
model with BatchNorm should recompute them at x before evaluation. optbench does not.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def has_eval_mode(optimizer: torch.optim.Optimizer) -> bool:
    return callable(getattr(optimizer, "eval", None)) and callable(getattr(optimizer, "train", None))


@contextmanager
def evaluation_mode(optimizer: torch.optim.Optimizer):
    """Inside: the parameters at `optimizer.eval()`'s point; after: back in train mode at exactly the
    former point. Optimizers without the switch are left alone."""
    if not has_eval_mode(optimizer):
        yield
        return
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    with torch.no_grad():
        training_point = [p.detach().clone() for p in parameters]
    optimizer.eval()
    try:
        yield
    finally:
        optimizer.train()
        with torch.no_grad():
            for p, saved in zip(parameters, training_point, strict=True):
                p.copy_(saved)
