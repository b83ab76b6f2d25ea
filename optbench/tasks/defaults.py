"""Every default optbench uses when the user gives none, in one place, each with its reason.

Read it like a training script's hyperparameter dict: a user's spec always overrides these
(`OptimizerSpec.resolved(defaults)`: class defaults < these < the spec).
"""

from __future__ import annotations

from ..specs import OptimizerSpec

# The tables below keep their comments aligned in one column, as a table of reasons.
# fmt: off
TRAINING = {
    # LeNet with SGD passes 95% validation accuracy on digits within 10 epochs (tests/test_training.py)
    "epochs": 10,
    "batch_size": 64,        # global; a common small batch that every built-in model fits on a CPU
    # per algorithm family; the rest keep torch's class defaults (Adam's 1e-3 suits training)
    "lr": {
        "sgd": 0.1,          # torch's SGD default 1e-3 barely moves a freshly initialised network
        "asgd": 0.1,         # ASGD is SGD with iterate averaging: the same step size
        "rmsprop": 1e-3,     # torch's 1e-2 overshoots from the first steps (no bias correction)
    },
    # heavy-ball momentum μ lengthens SGD's steady-state step from lr to lr/(1 - μ) (Polyak 1964),
    # so with momentum the default lr is scaled by (1 - μ) to keep the effective step at 0.1
    "scale_lr_by_one_minus_momentum": True,
    # the validation accuracy a classification sweep counts steps to (sweep --target-accuracy)
    "target_accuracy": 0.9,
}

# Stochastic linear regression y = Xw + b + noise (runners.regression): the settings of the linear
# regression chapter of Dive into Deep Learning (Zhang et al.), so results can be checked against it.
REGRESSION = {
    "lr": 0.03,              # well inside SGD's stability limit 2/λ_max ≈ 1 (the Hessian is ≈ 2I)
    "epochs": 3,             # 300 steps of 10 samples: SGD is at its noise floor by then
    "batch_size": 10,
}

SCALAR = {                   # the worked example: loss (y - a·x)², x=2, y=4, a from 1
    "lr": 0.1,               # the example's own step: a = 1 -> 1.8 -> 1.96 -> 1.992
    "iterations": 3,
}

# Per-surface learning rates for the families whose scale differs (the rest keep class defaults).
# sgd-like: on quadratics 2 / (λ_min + λ_max), the best fixed step for gradient descent (it still
# zig-zags along the steep axis: that is the point of `elliptic`); elsewhere the best of an lr sweep.
# Adaptive families: the lr that reaches the minimum within the surface's default steps without wild
# overshoot (from the same sweep); rmsprop's first steps are 1/sqrt(1 - alpha) = 10x its lr, having no
# bias correction, hence its smaller values. `quadratic` computes its sgd lr from its eigenvalues.
SURFACE_LR_FAMILIES = ("sgd", "adam", "rmsprop", "adagrad")   # the columns of SURFACE_LR
SURFACE_LR = {
    #                    sgd     adam   rmsprop adagrad
    "elliptic":        (0.09,    3.0,   1.0,    10.0),
    "bowl":            (0.4,     0.5,   0.1,    1.0),
    "saddle":          (0.05,    0.1,   0.01,   0.5),
    "monkey-saddle":   (0.002,   0.05,  0.005,  0.3),
    "rosenbrock":      (0.002,   0.2,   0.03,   1.0),
    "beale":           (0.03,    0.2,   0.03,   1.0),
    "himmelblau":      (0.01,    0.1,   0.03,   1.0),
    "rastrigin":       (0.002,   0.05,  0.005,  0.5),
    "quadratic":       (None,    0.05,  0.005,  0.5),
}
SURFACE_LR_COLUMN = {"sgd": 0, "asgd": 0, "adam": 1, "adamw": 1, "nadam": 1, "radam": 1, "adamax": 1,
                     "rprop": 1, "muon": 1, "rmsprop": 2, "adagrad": 3}

# The search range per hyperparameter when tuning: the same for every optimizer, so nobody's grid is
# centred on a value someone already knew to be good. lr spans 1e-4..100 (8 points a decade) to cover
# SGD and adaptive scales.
TUNING_RANGES = {
    "lr": "1e-4:100:49:log",
    "momentum": "0:0.99:12:lin",
    "beta1": "0:0.99:12:lin",
    "beta2": "0.9:0.9999:12:lin",
    "alpha": "0.5:0.999:12:lin",
    "rho": "0.5:0.999:12:lin",
    "dampening": "0:0.9:10:lin",
    "weight_decay": "1e-5:1e-1:9:log",
    "eps": "1e-10:1e-2:9:log",
    "lr_decay": "1e-5:1e-1:9:log",
    "momentum_decay": "1e-3:1e-1:9:log",
}

# fmt: on


def training_defaults(optimizer: OptimizerSpec) -> dict:
    """The settings under `optimizer`'s own for training on a data set: TRAINING's lr, scaled by
    (1 - μ) for SGD with momentum μ (see TRAINING)."""
    defaults = {"lr": TRAINING["lr"][optimizer.family]} if optimizer.family in TRAINING["lr"] else {}
    momentum = optimizer.hparams.get("momentum", 0) or 0
    if TRAINING["scale_lr_by_one_minus_momentum"] and optimizer.family == "sgd" and momentum > 0:
        defaults["lr"] = defaults["lr"] * (1 - momentum)
    return defaults


def surface_defaults(surface, family: str) -> dict:
    """The settings under a spec's own for `family` on an `objectives.Surface` (SURFACE_LR)."""
    key = surface.name.partition(":")[0]
    if key == "quadratic":  # lr scales with the curvature: 2 / (λ_min + λ_max) for SGD
        sgd = 2.0 / (min(surface.hessian_eigenvalues) + max(surface.hessian_eigenvalues))
        scales = (sgd,) + SURFACE_LR[key][1:]
    else:
        scales = SURFACE_LR.get(key)
    if scales is None or family not in SURFACE_LR_COLUMN:
        return {}
    return {"lr": scales[SURFACE_LR_COLUMN[family]]}
