"""Learning-rate schedules by name: any torch.optim.lr_scheduler class, stepped once per epoch.

    build_scheduler("step:step_size=5,gamma=0.5", optimizer, epochs=20)

Settings are parsed like optimizer settings (`specs.parse_value`); lengths default to the
scheduled epochs. Schedulers that need Python functions or other schedulers as arguments
(LambdaLR, SequentialLR, ...) are for Python users, who build them directly.
"""

from __future__ import annotations

import torch

from ..errors import OptbenchError, did_you_mean
from ..specs import parse_value

SCHEDULE_ALIASES = {
    "cosine": "CosineAnnealingLR",
    "step": "StepLR",
    "multistep": "MultiStepLR",
    "exponential": "ExponentialLR",
    "plateau": "ReduceLROnPlateau",
    "linear": "LinearLR",
    "polynomial": "PolynomialLR",
    "constant": "ConstantLR",
    "onecycle": "OneCycleLR",
    "cosine_restarts": "CosineAnnealingWarmRestarts",
    "cyclic": "CyclicLR",
}
NEEDS_CODE = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler"}


def schedule_names() -> dict[str, str]:
    """Every name `--schedule` accepts -> the torch.optim.lr_scheduler class name."""
    module = torch.optim.lr_scheduler
    classes = [
        name
        for name in dir(module)
        if isinstance(getattr(module, name), type)
        and name not in NEEDS_CODE
        and name not in ("LRScheduler", "_LRScheduler")
        and (issubclass(getattr(module, name), module.LRScheduler) or name == "ReduceLROnPlateau")
    ]
    return {**{name.lower(): name for name in classes}, **SCHEDULE_ALIASES}


def build_scheduler(text: str | None, optimizer, epochs: int):
    """'cosine' or 'step:step_size=5,gamma=0.5' -> a torch.optim.lr_scheduler stepped once per epoch.

    Lengths default to the scheduled epochs (T_max, total_iters, total_steps); OneCycleLR's
    max_lr defaults to the optimizer's lr.
    """
    if not text:
        return None
    name, _, settings = text.strip().partition(":")
    names = schedule_names()
    key = name.lower()
    if key not in names:
        if name in NEEDS_CODE or key in {n.lower() for n in NEEDS_CODE}:
            raise OptbenchError(
                f"schedule '{name}' needs Python functions or schedulers as arguments; use it from Python"
            )
        raise did_you_mean("schedule", name, names)
    class_name = names[key]
    kwargs = {}
    for item in filter(None, settings.split(",")):
        hname, eq, raw = item.partition("=")
        if not eq or not raw.strip():
            raise OptbenchError(f"malformed schedule setting '{item}' in '{text}': expected name=value")
        value = parse_value(raw)
        kwargs[hname.strip()] = list(value) if isinstance(value, tuple) else value
    lr = optimizer.param_groups[0]["lr"]
    defaults = {
        "CosineAnnealingLR": {"T_max": epochs},
        "PolynomialLR": {"total_iters": epochs},
        "OneCycleLR": {"total_steps": epochs, "max_lr": lr},
        "CyclicLR": {"base_lr": lr / 10, "max_lr": lr},
    }.get(class_name, {})
    if class_name == "MultiStepLR" and not isinstance(kwargs.get("milestones", []), list):
        kwargs["milestones"] = [kwargs["milestones"]]  # 'milestones=5' means one milestone
    try:
        return getattr(torch.optim.lr_scheduler, class_name)(optimizer, **{**defaults, **kwargs})
    except (TypeError, ValueError, KeyError) as error:
        raise OptbenchError(f"schedule '{text}' ({class_name}): {error}") from None
