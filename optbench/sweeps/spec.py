"""What decides a sweep (`SweepSpec`), its checks, and the lr-scaling rules.

The lr of a cell is scaled from the pair (base_lr, base_batch_size = B0) by one of three rules
(Goyal et al. 2017 for linear; Krizhevsky 2014 and Hoffer et al. 2017 for sqrt):

    linear: lr = base_lr * B / B0      sqrt: lr = base_lr * sqrt(B / B0)      none: lr = base_lr

and `tuned` runs a small lr grid at every batch size, base_lr * sqrt(B / B0) * 2^k for k = -2..2 (five
points, from a quarter to four times the sqrt rule, so it brackets `none` and `linear` up to B/B0 = 16),
and keeps the fastest: steps to target measured as Shallue et al. (2018) and McCandlish et al. (2018)
measure it, with the lr tuned at each batch size, which the critical batch size model describes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..errors import OptbenchError, did_you_mean
from ..models import MODELS
from ..runners.devices import MAX_THREADS
from ..specs import parse_optimizer
from ..tasks import Task, TaskKind, get_task
from ..tasks.defaults import SWEEP
from ..tasks.problem import TRAINED_KINDS
from ..values import axis_values, format_value

RULES = ("linear", "sqrt", "none", "tuned")
TUNED_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)  # the `tuned` grid around the sqrt rule

# A grid larger than this is a typo (--seeds 100000000), not a study: refused before it is expanded.
MAX_CELLS = 100_000


@dataclass
class SweepSpec:
    """Everything that decides a sweep; lists are crossed as a grid. Defaults: `tasks.defaults.SWEEP`."""

    batch_sizes: tuple = SWEEP["batch_sizes"]
    lr_scales: tuple = SWEEP["lr_scales"]
    optimizers: tuple = SWEEP["optimizers"]
    hparams: dict = field(default_factory=dict)  # extra axes: name -> list of values (lr too)
    task: str = SWEEP["task"]
    model: str = SWEEP["model"]
    base_lr: float | None = None  # default: the optimizer spec's lr, else the task's default
    base_batch_size: int | None = None  # default: the smallest batch size
    warmup_epochs: int = SWEEP["warmup_epochs"]
    epochs: int | None = None  # budget per cell in epochs
    steps: int | None = None  # budget per cell in optimizer steps (caps epochs; training: SWEEP's)
    seeds: int = SWEEP["seeds"]
    seed: int = SWEEP["seed"]  # seeds are seed, seed+1, ..., seed+seeds-1
    noise: float = SWEEP["noise"]  # surface tasks: per-sample gradient noise std
    device: str = SWEEP["device"]
    data_dir: str | None = None
    evaluations: int | None = None  # training: validation evaluations per cell (default: SWEEP's)
    threads: int = SWEEP["threads"]  # torch threads per cell
    # analysis only (changing them never reruns a cell); both None: the task's own target
    target_accuracy: float | None = None
    target_loss: float | None = None

    @classmethod
    def from_settings(cls, **settings) -> SweepSpec:
        """A spec from keyword settings in the forms the CLI takes: batch_sizes [16, 64] or "16,64";
        lr_scales ["linear", "none"] or "linear,none"; optimizers "adam:lr=0.1" or a list of specs;
        hparams {name: values}, and any other keyword that is no field (lr, momentum, ...) an extra
        axis, its values a list, "0,0.9" or a range "1e-4:1:16[:log|lin]" (`values.parse_range`).
        Raises OptbenchError naming a malformed value."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in settings.items() if k in names}
        hparams = {k: axis_values(k, v) for k, v in dict(values.pop("hparams", None) or {}).items()}
        hparams.update({k: axis_values(k, v) for k, v in settings.items() if k not in names})
        for name in ("batch_sizes", "lr_scales", "optimizers"):
            if isinstance(values.get(name), str):
                items = (
                    [item.strip() for item in values[name].split(",")]
                    if name != "optimizers"
                    else [values[name]]
                )
                values[name] = tuple(int(i) if name == "batch_sizes" and i.isdigit() else i for i in items)
            elif isinstance(values.get(name), (list, tuple, int)):
                values[name] = tuple(values[name]) if not isinstance(values[name], int) else (values[name],)
        return cls(**values, hparams=hparams)

    @property
    def resolved_task(self) -> Task:
        """The task `task` names (`tasks.get_task`); unknown names are user errors."""
        return get_task(self.task)

    @property
    def kind(self) -> TaskKind:
        return self.resolved_task.kind

    def resolved_targets(self) -> tuple[float | None, float | None]:
        """(target accuracy, target loss) the analysis counts steps to: the ones given, else the
        task's `Target` where it scores validation accuracy or loss (digits: accuracy 0.9)."""
        if self.target_accuracy is not None or self.target_loss is not None:
            return self.target_accuracy, self.target_loss
        target = self.resolved_task.target
        if target is not None and target.metric == "val_accuracy":
            return target.value, None
        if target is not None and target.metric == "val_loss":
            return None, target.value
        return None, None

    def grid(self) -> dict:
        """The settings that decide the cells, in canonical order (for the changed-spec check)."""
        training = self.kind in TRAINED_KINDS
        return {
            "task": self.task,
            "model": self.model if self.kind is TaskKind.CLASSIFICATION else None,
            "optimizers": sorted(self.optimizers),
            "batch_sizes": sorted(self.batch_sizes),
            "lr_scales": [r for r in RULES if r in self.lr_scales],
            "hparams": {k: sorted(map(jsonable, v), key=repr) for k, v in sorted(self.hparams.items())},
            "base_lr": self.base_lr,
            "base_batch_size": self.resolved_base_batch_size(),
            "warmup_epochs": self.warmup_epochs,
            "epochs": self.epochs,
            "steps": self.resolved_steps(),
            "seeds": list(self.seed_values()),
            "noise": self.noise if self.kind is TaskKind.SURFACE else None,
            "device": self.device if training else None,
            "evaluations": self.resolved_evaluations(),
            "threads": self.threads,
        }

    def to_dict(self) -> dict:
        return {
            "grid": self.grid(),
            "analysis": {"target_accuracy": self.target_accuracy, "target_loss": self.target_loss},
            "spec": jsonable(asdict(self)),
            "origins": self.origins(),
        }

    def origins(self) -> dict:
        """Where each external optimizer class came from (`external.Origin`), by its spec text."""
        specs = [parse_optimizer(text) for text in self.optimizers]
        return {spec.text: spec.origin.as_dict() for spec in specs if spec.origin is not None}

    @classmethod
    def from_dict(cls, saved: dict) -> SweepSpec:
        """The spec recorded by `to_dict` (in a folder's meta.json); a damaged record is a user error."""
        try:
            values = dict(saved["spec"])
            for name in ("batch_sizes", "lr_scales", "optimizers"):
                values[name] = tuple(values[name])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as error:
            raise OptbenchError(
                f"the recorded sweep spec is damaged ({type(error).__name__}: {error})"
            ) from None

    def seed_values(self) -> range:
        return range(self.seed, self.seed + self.seeds)

    def resolved_base_batch_size(self) -> int:
        return self.base_batch_size or min(self.batch_sizes)

    def resolved_evaluations(self) -> int | None:
        if self.kind not in TRAINED_KINDS:
            return None  # regression and surfaces evaluate after every step
        return self.evaluations or SWEEP["evaluations"]

    def resolved_steps(self) -> int | None:
        if self.kind is TaskKind.CLASSIFICATION and self.epochs is None and self.steps is None:
            return SWEEP["training_steps"]
        if self.kind is TaskKind.LANGUAGE_MODEL and self.epochs is None and self.steps is None:
            return self.resolved_task.budget.steps  # a language model's budget is in steps
        return self.steps


def scaled_lr(rule: str, base_lr: float, batch_size: int, base_batch_size: int) -> float:
    ratio = batch_size / base_batch_size
    return {"linear": base_lr * ratio, "sqrt": base_lr * math.sqrt(ratio), "none": base_lr}[rule]


def rule_lrs(rule: str, base_lr: float, batch_size: int, base_batch_size: int) -> list[float]:
    """The learning rates a rule runs at one batch size: one, or the `tuned` grid (TUNED_FACTORS)."""
    if rule == "tuned":
        sqrt_lr = scaled_lr("sqrt", base_lr, batch_size, base_batch_size)
        return [sqrt_lr * factor for factor in TUNED_FACTORS]
    return [scaled_lr(rule, base_lr, batch_size, base_batch_size)]


def validate(spec: SweepSpec) -> None:
    """Every mistake that the spec shows by itself, as one OptbenchError naming the value.

    What needs the data or an optimizer instance (a batch larger than the data set, lr=-0.1) is
    checked by `adapters.check_runnable`; both run before anything is written.
    """
    if not isinstance(spec.task, str):
        raise OptbenchError(f"task must be a name, got {spec.task!r}")
    if not spec.batch_sizes:
        raise OptbenchError("give at least one batch size")
    for b in spec.batch_sizes:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise OptbenchError(f"batch size must be a whole number >= 1, got {b}")
    if not spec.lr_scales:
        raise OptbenchError("give at least one lr-scale rule")
    for rule in spec.lr_scales:
        if rule not in RULES:
            raise did_you_mean("lr-scale rule", str(rule), RULES)
    if not spec.optimizers:
        raise OptbenchError("give at least one optimizer")
    for text in spec.optimizers:
        if not isinstance(text, str):
            raise OptbenchError(f"an optimizer is given as text such as 'adam:lr=0.01', got {text!r}")
    _whole("seeds", spec.seeds, minimum=1)
    _whole("seed", spec.seed, minimum=0)
    _whole("threads", spec.threads, minimum=1)
    # More threads than cores is allowed (a sharded sweep keys its cells by thread count, whatever
    # machine runs a shard); beyond MAX_THREADS it is a typo.
    if spec.threads > MAX_THREADS:
        raise OptbenchError(f"--threads must be at most {MAX_THREADS}, got {spec.threads}")
    for name in ("base_batch_size", "epochs", "steps", "evaluations"):
        if getattr(spec, name) is not None:
            _whole(name.replace("_", "-"), getattr(spec, name), minimum=1)
    if spec.base_lr is not None:
        _positive("base-lr", spec.base_lr)
    _whole("warmup-epochs", spec.warmup_epochs, minimum=0)
    if spec.target_accuracy is not None and not (
        _is_number(spec.target_accuracy) and 0 < spec.target_accuracy <= 1
    ):
        raise OptbenchError(f"target-accuracy must be in (0, 1], got {spec.target_accuracy}")
    if spec.target_loss is not None and not (
        _is_number(spec.target_loss) and math.isfinite(spec.target_loss)
    ):
        raise OptbenchError(f"target-loss must be a finite number, got {spec.target_loss}")
    _validate_task(spec)
    for name, values in spec.hparams.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise OptbenchError(f"--{name.replace('_', '-')} needs a list of at least one value")
    rules = set(spec.lr_scales)
    count = (
        len(spec.optimizers)
        * (len(rules) + (len(TUNED_FACTORS) - 1) * ("tuned" in rules))
        * len(set(spec.batch_sizes))
        * spec.seeds
    )
    for values in spec.hparams.values():
        count *= len(values)
    if count > MAX_CELLS:
        raise OptbenchError(
            f"this sweep has {count} cells, more than the {MAX_CELLS} one sweep may hold "
            "(cells = optimizers x grid values x lr-scale rules x batch sizes x seeds)"
        )
    seen = {}
    for text in spec.optimizers:
        optimizer = parse_optimizer(text)
        same = (optimizer.family, optimizer.use_torch, repr(sorted(optimizer.resolved().items())))
        if same in seen:
            raise OptbenchError(f"optimizers '{seen[same]}' and '{text}' are the same setting; give it once")
        seen[same] = text
        for name, values in spec.hparams.items():  # names and values the optimizer accepts
            for value in values:
                parse_optimizer(f"{optimizer.family}:{name}={format_value(value)}")


def _validate_task(spec: SweepSpec) -> None:
    task = spec.resolved_task.require("sweep")
    kind = task.kind
    if kind is TaskKind.CLASSIFICATION:
        model = str(spec.model).lower().replace("-", "").replace("_", "")
        if model not in MODELS and model != "lenet5":
            raise did_you_mean("model", str(spec.model), MODELS)
        from ..runners.training import resolve_device

        resolve_device(str(spec.device))
        return
    if kind is TaskKind.LANGUAGE_MODEL:
        from ..runners.training import resolve_device

        resolve_device(str(spec.device))
        if spec.target_accuracy is not None:
            raise OptbenchError(f"task '{spec.task}' has no accuracy; use --target-loss")
        return
    for name, value, default in (
        ("--warmup-epochs", spec.warmup_epochs, 0),
        ("--evaluations", spec.evaluations, None),
        ("--data-dir", spec.data_dir, None),
        ("--device", spec.device, "auto"),
    ):
        if value != default:
            raise OptbenchError(
                f"{name} needs a training task ('{spec.task}' runs on the CPU and is "
                f"evaluated at every step), got {name} {value}"
            )
    if spec.target_accuracy is not None:
        raise OptbenchError(f"task '{spec.task}' has no accuracy; use --target-loss")
    if kind is TaskKind.SURFACE:
        if spec.epochs is not None:
            raise OptbenchError("a surface has no epochs; give --steps")
        if not (_is_number(spec.noise) and math.isfinite(spec.noise) and spec.noise >= 0):
            raise OptbenchError(f"noise must be a finite number >= 0, got {spec.noise}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(name, value, minimum: int) -> None:
    if not (_is_number(value) and math.isfinite(value) and int(value) == value and value >= minimum):
        raise OptbenchError(f"{name} must be a whole number >= {minimum}, got {value}")


def _positive(name, value) -> None:
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise OptbenchError(f"{name} must be a finite number > 0, got {value}")


def jsonable(value):
    """Tuples as lists and keys as text, so a spec survives a JSON round trip unchanged."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    return value
