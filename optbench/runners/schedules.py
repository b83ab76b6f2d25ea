"""Learning-rate schedules by name: any torch.optim.lr_scheduler class, stepped once per epoch; and
`warmup_cosine`, the per-step warm-up and cosine decay of a step budget (language models).

    build_scheduler("step:step_size=5,gamma=0.5", optimizer, epochs=20)

Settings are parsed like optimizer settings (`specs.parse_value`); lengths default to the
scheduled epochs. Schedulers that need Python functions or other schedulers as arguments
(LambdaLR, SequentialLR, ...) are for Python users, who build them directly.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable

import torch

from ..errors import OptbenchError, did_you_mean
from ..values import named_settings, parse_value

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
    cls = getattr(torch.optim.lr_scheduler, class_name)
    parameters = {
        name: p
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name not in ("self", "optimizer", "last_epoch", "verbose")
    }
    kwargs = {}
    for hname, raw, item in named_settings(
        settings, text, parameters, f"setting of schedule {class_name}", "malformed schedule setting"
    ):
        annotation = str(parameters[hname].annotation)
        kwargs[hname] = _checked(hname, parse_value(raw), annotation, f"{item} in '{text}'")
    lr = optimizer.param_groups[0]["lr"]
    defaults = {
        "CosineAnnealingLR": {"T_max": epochs},
        "PolynomialLR": {"total_iters": epochs},
        "OneCycleLR": {"total_steps": epochs, "max_lr": lr},
        "CyclicLR": {"base_lr": lr / 10, "max_lr": lr},
    }.get(class_name, {})
    missing = [
        name
        for name, p in parameters.items()
        if p.default is inspect.Parameter.empty and name not in {**defaults, **kwargs}
    ]
    if missing:
        raise OptbenchError(f"schedule '{text}' ({class_name}) needs {missing[0]}=VALUE")
    try:
        return cls(optimizer, **{**defaults, **kwargs})
    except (TypeError, ValueError, KeyError) as error:
        raise OptbenchError(f"schedule '{text}' ({class_name}): {error}") from None


# Lengths and periods, in epochs: a zero would divide by zero at the first step.
PERIODS = {
    "step_size",
    "T_max",
    "T_0",
    "T_mult",
    "total_iters",
    "total_steps",
    "epochs",
    "steps_per_epoch",
    "step_size_up",
    "step_size_down",
    "milestones",
}


def _checked(name: str, value, annotation: str, where: str):
    """A schedule setting checked against the type torch annotates it with: whole numbers (periods >= 1),
    finite reals, true/false, one of a Literal's words; milestones a list of whole numbers."""
    literal = annotation.partition("Literal[")[2]
    choices = re.findall(r"'([^']*)'", literal) if literal else []
    if choices:
        if value not in choices:
            raise OptbenchError(f"{where}: {name} must be one of {', '.join(choices)}")
        return value
    if "Callable" in annotation:
        raise OptbenchError(f"{where}: {name} takes a Python function; build this schedule from Python")
    if "Iterable[int]" in annotation:
        items = list(value) if isinstance(value, tuple) else [value]  # 'milestones=5' means one milestone
        return [_checked(name, item, "int", where) for item in items]
    if annotation.strip("'") == "bool":
        if not isinstance(value, bool):
            raise OptbenchError(f"{where}: {name} must be true or false")
        return value
    if value is None and "None" in annotation:
        return None
    number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if "int" in annotation and "float" not in annotation:
        minimum = 1 if name in PERIODS else 0
        if not number or value != int(value) or value < minimum:
            raise OptbenchError(f"{where}: {name} must be a whole number >= {minimum}")
        return int(value)
    if not number:
        raise OptbenchError(f"{where}: {name} must be a finite number")
    return value


def warmup_then_decay(steps: int, warmup_fraction: float) -> Callable:
    """A `make_scheduler` (optimizer -> torch LambdaLR) for a budget of `steps` steps: a linear warm-up
    over round(warmup_fraction · steps) steps (at least 1), then a cosine decay to 0 at `steps`
    (`warmup_cosine` with floor 0, AlgoPerf's baseline schedule decayed fully). Stepped once per step."""
    warmup = max(1, round(warmup_fraction * steps))

    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: warmup_cosine(t, warmup, steps, floor=0.0)
        )

    return make_scheduler


def warmup_cosine(step: int, warmup: int, steps: int, floor: float = 0.1) -> float:
    """The lr of step `step` (0-based) as a multiple of the peak lr, per step: a linear warm-up
    (step + 1) / warmup over `warmup` steps, then a cosine from 1 down to `floor` at `steps` (and
    `floor` after). The schedule of nanoGPT's `get_lr` (Karpathy), min_lr = floor · lr."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
