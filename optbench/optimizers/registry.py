"""One table of every algorithm: our class, torch's twin, and the flag space the certificate enumerates.

Everything that needs "all optimizers" reads this table: the equivalence tests, `optbench verify`,
`optbench list`, and the spec parser that turns `adam:lr=0.1` into an optimizer.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import OptbenchError, did_you_mean


@dataclass(frozen=True)
class Algorithm:
    name: str                     # the CLI name: 'adam', 'rmsprop', ...
    class_name: str               # 'Adam': our class and torch.optim's share it
    module: str                   # our module under optbench.optimizers
    flags: dict                   # behavioural flag -> values to cross in the certificate
    test_hparams: dict = field(default_factory=dict)  # fixed non-default settings the certificate uses
    valid: Callable[[dict], bool] = lambda combo: True  # combos torch itself rejects are skipped
    tensor_hparams: tuple = ()    # hyperparameters that may be tensors broadcast against the parameter
    elementwise: bool = True      # False: reduces across a tensor, so trials need separate parameters
    param_shapes: tuple = ((4, 3), (5,), (2, 3, 2))   # shapes of the certificate's parameters
    param_groups: int = 2         # LBFGS supports only one
    sparse_grad: bool = False     # SparseAdam steps on sparse gradients
    complex_ok: bool = True       # torch supports complex parameters for this algorithm

    @property
    def ours(self) -> type:
        return getattr(importlib.import_module(f"optbench.optimizers.{self.module}"), self.class_name)

    @property
    def theirs(self) -> type:
        import torch  # here, not at import: the CLI checks names before it loads torch

        return getattr(torch.optim, self.class_name)

    def defaults(self) -> dict:
        """Constructor defaults, read from torch's signature (ours has the same)."""
        signature = inspect.signature(self.theirs.__init__)
        return {name: p.default for name, p in signature.parameters.items()
                if p.default is not inspect.Parameter.empty and name not in IMPLEMENTATION_ONLY}

    def combinations(self) -> list[dict]:
        """Every valid crossing of the flag space, in a fixed order."""
        names = list(self.flags)
        combos = [dict(zip(names, values, strict=False)) for values in itertools.product(*self.flags.values())]
        return [combo for combo in combos if self.valid(combo)]


IMPLEMENTATION_ONLY = {"foreach", "fused", "capturable", "differentiable"}
BOOL = (False, True)
MATRICES = ((4, 3), (3, 5), (6, 2))

ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in [
    Algorithm("sgd", "SGD", "sgd",
              flags=dict(momentum=(0.0, 0.9), dampening=(0.0, 0.3), nesterov=BOOL,
                         weight_decay=(0.0, 0.1), maximize=BOOL),
              test_hparams=dict(lr=0.05),
              valid=lambda c: not c["nesterov"] or (c["momentum"] > 0 and c["dampening"] == 0),
              tensor_hparams=("lr", "momentum", "dampening", "weight_decay")),
    Algorithm("adam", "Adam", "adam",
              flags=dict(amsgrad=BOOL, weight_decay=(0.0, 0.1), decoupled_weight_decay=BOOL,
                         maximize=BOOL),
              test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
              valid=lambda c: c["weight_decay"] > 0 or not c["decoupled_weight_decay"],
              tensor_hparams=("lr", "betas", "eps", "weight_decay")),
    Algorithm("adamw", "AdamW", "adamw",
              flags=dict(amsgrad=BOOL, weight_decay=(0.0, 0.1), maximize=BOOL),
              test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
              tensor_hparams=("lr", "betas", "eps", "weight_decay")),
    Algorithm("rmsprop", "RMSprop", "rmsprop",
              flags=dict(centered=BOOL, momentum=(0.0, 0.9), weight_decay=(0.0, 0.1), maximize=BOOL),
              test_hparams=dict(lr=0.01, alpha=0.9),
              tensor_hparams=("lr", "alpha", "eps", "weight_decay", "momentum")),
    Algorithm("adagrad", "Adagrad", "adagrad",
              flags=dict(lr_decay=(0.0, 0.05), weight_decay=(0.0, 0.1),
                         initial_accumulator_value=(0.0, 0.1), maximize=BOOL),
              test_hparams=dict(lr=0.1),
              tensor_hparams=("lr", "lr_decay", "weight_decay", "eps")),
    Algorithm("adadelta", "Adadelta", "adadelta",
              flags=dict(weight_decay=(0.0, 0.1), rho=(0.9, 0.5), maximize=BOOL),
              test_hparams=dict(lr=1.0),
              tensor_hparams=("lr", "rho", "eps", "weight_decay")),
    Algorithm("adamax", "Adamax", "adamax",
              flags=dict(weight_decay=(0.0, 0.1), maximize=BOOL),
              test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
              tensor_hparams=("lr", "betas", "eps", "weight_decay")),
    Algorithm("nadam", "NAdam", "nadam",
              flags=dict(weight_decay=(0.0, 0.1), decoupled_weight_decay=BOOL,
                         momentum_decay=(0.004, 0.05), maximize=BOOL),
              test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
              valid=lambda c: c["weight_decay"] > 0 or not c["decoupled_weight_decay"],
              tensor_hparams=("lr", "betas", "eps", "weight_decay", "momentum_decay")),
    Algorithm("radam", "RAdam", "radam",
              flags=dict(weight_decay=(0.0, 0.1), decoupled_weight_decay=BOOL, maximize=BOOL),
              # beta2 = 0.9 makes the variance rectification switch on within the run (rho_t > 5 at t >= 6)
              test_hparams=dict(lr=0.05, betas=(0.8, 0.9)),
              valid=lambda c: c["weight_decay"] > 0 or not c["decoupled_weight_decay"],
              tensor_hparams=("lr", "eps", "weight_decay")),
    Algorithm("asgd", "ASGD", "asgd",
              flags=dict(lambd=(1e-4, 0.05), t0=(1e6, 4.0), weight_decay=(0.0, 0.1), maximize=BOOL),
              test_hparams=dict(lr=0.05, alpha=0.75),
              tensor_hparams=("lr", "lambd", "alpha", "t0", "weight_decay")),
    Algorithm("rprop", "Rprop", "rprop",
              flags=dict(etas=((0.5, 1.2), (0.3, 1.5)), step_sizes=((1e-6, 50.0), (1e-3, 0.05)),
                         maximize=BOOL),
              test_hparams=dict(lr=0.01),
              tensor_hparams=("lr", "etas", "step_sizes")),
    Algorithm("adafactor", "Adafactor", "adafactor",
              # torch requires d >= 1: d = 1 clips some updates on the certificate's objective, d = 2 none
              flags=dict(beta2_decay=(-0.8, -0.5), eps=((None, 1e-3), (1e-20, 1e-2)), d=(1.0, 2.0),
                         weight_decay=(0.0, 0.1), maximize=BOOL),
              test_hparams=dict(lr=0.05),
              elementwise=False, complex_ok=False),
    Algorithm("lbfgs", "LBFGS", "lbfgs",
              flags=dict(line_search_fn=(None, "strong_wolfe"), history_size=(100, 3), max_iter=(20, 4)),
              test_hparams=dict(lr=0.5),
              elementwise=False, param_groups=1),
    Algorithm("muon", "Muon", "muon",
              flags=dict(nesterov=BOOL, weight_decay=(0.0, 0.1), ns_steps=(5, 3),
                         adjust_lr_fn=(None, "original", "match_rms_adamw")),
              test_hparams=dict(lr=0.02, momentum=0.9),
              elementwise=False, param_shapes=MATRICES, complex_ok=False),
    Algorithm("sparseadam", "SparseAdam", "sparse_adam",
              flags=dict(maximize=BOOL),
              test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
              tensor_hparams=("lr", "betas", "eps"),
              param_shapes=MATRICES, sparse_grad=True, complex_ok=False),
]}

# Common names for an algorithm at particular settings, usable wherever a name is.
PRESETS: dict[str, tuple[str, dict]] = {
    "momentum": ("sgd", dict(momentum=0.9)),
    "nesterov": ("sgd", dict(momentum=0.9, nesterov=True)),
}


# Packages of optimizers that may be named by prefix alone, with the PyPI name to install.
ZOO_PACKAGES = {
    "pytorch_optimizer": "pytorch-optimizer",
    "heavyball": "heavyball",
    "torch_optimizer": "torch-optimizer",
    "lion_pytorch": "lion-pytorch",
    "schedulefree": "schedulefree",
    "prodigyopt": "prodigyopt",
}


def is_external(text: str) -> bool:
    """True when the optimizer part of a spec names a class rather than one of optbench's algorithms:
    'file.py:Class', 'dir/f.py:Class', 'pkg.mod:Class', 'zoo:name', and a top-level module's class
    'myopt:MyOpt' (a head that is no algorithm, preset or 'torch', then a name where a built-in's spec
    would have name=value settings)."""
    head, colon, rest = text.strip().partition(":")
    if not colon:
        return False
    if head.endswith(".py") or "/" in head or "." in head or head in ZOO_PACKAGES:
        return True
    known = head.lower() in ALGORITHMS or head.lower() in PRESETS or head.lower() == "torch"
    return not known and rest.partition(":")[0].strip().isidentifier()


def check_spec_name(text: str) -> None:
    """Refuse a spec (`adam:lr=0.1`, `torch:adam`) whose optimizer is no algorithm or preset here, as
    `get` does; a class named as module:Class, file.py:Class or zoo:name is checked when it is loaded.
    Needs no torch, so the CLI answers a typo before loading it."""
    rest = text.strip()
    if rest.lower().startswith("torch:"):
        rest = rest[len("torch:") :]
    name = rest.partition(":")[0]
    if name and not is_external(rest):
        get(name)


def get(name: str) -> Algorithm:
    """The algorithm called `name` (case-insensitive; a preset gives its algorithm), or an
    OptbenchError listing the valid names."""
    key = name.lower().replace("-", "").replace("_", "")
    if key in PRESETS:
        return ALGORITHMS[PRESETS[key][0]]
    if key not in ALGORITHMS:
        parts = [part.strip().lower() for part in name.split(",")]
        if len(parts) > 1 and all(part in ALGORITHMS or part in PRESETS for part in parts):
            raise OptbenchError(
                f"unknown optimizer '{name}': give several optimizers separated by spaces "
                f"('{' '.join(parts)}'), not commas"
            )
        raise did_you_mean("optimizer", name, list(ALGORITHMS) + list(PRESETS))
    return ALGORITHMS[key]


# ---- Newer algorithms, certified against their reference packages (issue 15) ----------------------
# Their twins are not in torch.optim but in optional packages (`pip install "optbench[zoo]"`), pinned
# in pyproject.toml; optbench runs without them, only `verify` needs them.

@dataclass(frozen=True)
class ReferencedAlgorithm(Algorithm):
    reference: str = ""           # 'module:Class' of the reference implementation
    distribution: str = ""        # the PyPI name that provides it, e.g. 'lion-pytorch'
    group_state: tuple = ()       # per-group entries that are optimizer state (certified like `state`)
    complex_ok: bool = False
    second_group_lr_ratio: float = 0.4   # the certificate's second param group runs at this × lr
    inner: str = ""               # a wrapper (Lookahead): the registry algorithm it wraps, built from params

    @property
    def ours(self):
        wrapper = super().ours
        return _built_over(wrapper, ALGORITHMS[self.inner].ours) if self.inner else wrapper

    @property
    def theirs(self):
        module_name, class_name = self.reference.split(":")
        try:
            wrapper = getattr(importlib.import_module(module_name), class_name)
        except ImportError:
            from ..errors import OptbenchError
            raise OptbenchError(f"the reference for '{self.name}' needs {self.distribution}, which is not "
                                f"installed: pip install \"optbench[zoo]\"") from None
        return _built_over(wrapper, ALGORITHMS[self.inner].theirs) if self.inner else wrapper

    @property
    def reference_version(self) -> str | None:
        """The installed version of the reference package, or None when it is not installed."""
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version(self.distribution)
        except PackageNotFoundError:
            return None

    def defaults(self) -> dict:
        """Constructor defaults, read from our class (the reference's signature may carry extras); a
        wrapper's come after its inner algorithm's."""
        signature = inspect.signature(self.ours if self.inner else self.ours.__init__)
        own = {name: p.default for name, p in signature.parameters.items()
               if p.default is not inspect.Parameter.empty and name not in IMPLEMENTATION_ONLY}
        return {**ALGORITHMS[self.inner].defaults(), **own} if self.inner else own


def _built_over(wrapper: type, inner: type):
    """A wrapper class (Lookahead) as a factory taking params, like every other optimizer."""
    return functools.partial(importlib.import_module("optbench.optimizers.lookahead").over_inner, wrapper, inner)


TORCH_ALGORITHMS: dict[str, Algorithm] = dict(ALGORITHMS)   # the torch.optim twins alone

SCHEDULE_FREE_STATE = ("k", "weight_sum", "lr_max", "scheduled_lr", "train_mode")

REFERENCED_ALGORITHMS: dict[str, ReferencedAlgorithm] = {a.name: a for a in [
    ReferencedAlgorithm("lion", "Lion", "lion",
                        flags=dict(weight_decay=(0.0, 0.1), decoupled_weight_decay=BOOL,
                                   betas=((0.9, 0.99), (0.95, 0.98))),
                        test_hparams=dict(lr=0.01),
                        valid=lambda c: c["weight_decay"] > 0 or not c["decoupled_weight_decay"],
                        tensor_hparams=("lr", "betas", "weight_decay"),
                        reference="lion_pytorch:Lion", distribution="lion-pytorch"),
    ReferencedAlgorithm("adamwschedulefree", "AdamWScheduleFree", "schedule_free",
                        flags=dict(weight_decay=(0.0, 0.1), warmup_steps=(0, 4), r=(0.0, 1.0),
                                   weight_lr_power=(2.0, 0.0)),
                        test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
                        tensor_hparams=("lr", "betas", "eps", "weight_decay"),
                        reference="schedulefree:AdamWScheduleFree", distribution="schedulefree",
                        group_state=SCHEDULE_FREE_STATE),
    ReferencedAlgorithm("sgdschedulefree", "SGDScheduleFree", "schedule_free",
                        flags=dict(weight_decay=(0.0, 0.1), warmup_steps=(0, 4), r=(0.0, 1.0),
                                   momentum=(0.9, 0.5)),
                        test_hparams=dict(lr=0.05),
                        tensor_hparams=("lr", "momentum", "weight_decay"),
                        reference="schedulefree:SGDScheduleFree", distribution="schedulefree",
                        group_state=SCHEDULE_FREE_STATE),
    ReferencedAlgorithm("lookahead", "Lookahead", "lookahead",
                        flags=dict(k=(5, 2), alpha=(0.5, 0.8), pullback_momentum=("none", "reset", "pullback"),
                                   momentum=(0.0, 0.9)),
                        test_hparams=dict(lr=0.05),
                        tensor_hparams=("lr", "momentum", "alpha"),
                        reference="pytorch_optimizer:Lookahead", distribution="pytorch-optimizer",
                        inner="sgd"),
    ReferencedAlgorithm("lamb", "Lamb", "lamb",
                        flags=dict(weight_decay=(0.0, 0.1), weight_decouple=BOOL, fixed_decay=BOOL,
                                   grad_averaging=BOOL, adam=BOOL, maximize=BOOL),
                        test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
                        valid=lambda c: (c["weight_decay"] > 0 or c["weight_decouple"])
                        and (c["weight_decouple"] or not c["fixed_decay"])
                        and (c["weight_decay"] > 0 or not c["fixed_decay"]),
                        elementwise=False,
                        reference="pytorch_optimizer:Lamb", distribution="pytorch-optimizer",
                        group_state=("step",)),
    # prodigyopt refuses groups with different lrs, so both groups run at one lr
    ReferencedAlgorithm("prodigy", "Prodigy", "prodigy",
                        flags=dict(weight_decay=(0.0, 0.1), decouple=BOOL, use_bias_correction=BOOL,
                                   safeguard_warmup=BOOL, betas=((0.8, 0.95), (0.0, 0.95)),
                                   growth_rate=(float("inf"), 1.5)),
                        test_hparams=dict(lr=1.0, d0=1e-3),
                        valid=lambda c: c["weight_decay"] > 0 or c["decouple"],
                        elementwise=False,
                        reference="prodigyopt:Prodigy", distribution="prodigyopt",
                        group_state=("d", "d_max", "d_numerator", "d_denom", "d_hat", "k"),
                        second_group_lr_ratio=1.0),
    ReferencedAlgorithm("adopt", "ADOPT", "adopt",
                        flags=dict(weight_decay=(0.0, 0.1), weight_decouple=BOOL, fixed_decay=BOOL,
                                   maximize=BOOL),
                        test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
                        valid=lambda c: (c["weight_decay"] > 0 or not c["weight_decouple"])
                        and (c["weight_decouple"] or not c["fixed_decay"]),
                        tensor_hparams=("lr", "betas", "eps", "weight_decay"),
                        reference="pytorch_optimizer:ADOPT", distribution="pytorch-optimizer",
                        group_state=("step",), complex_ok=True),
    # max_precondition_dim=4 leaves the size-5 vector unrotated even with precondition_1d; maximize and
    # the small limit are crossed with the settings they interact with only, to keep 128 runs to 52
    ReferencedAlgorithm("soap", "SOAP", "soap",
                        flags=dict(weight_decay=(0.0, 0.1), precondition_frequency=(10, 2),
                                   max_precondition_dim=(10000, 4), precondition_1d=BOOL, correct_bias=BOOL,
                                   normalize_gradient=BOOL, maximize=BOOL),
                        test_hparams=dict(lr=0.05, betas=(0.8, 0.95)),
                        valid=lambda c: (not c["maximize"] or (c["weight_decay"] > 0
                                                               and c["precondition_frequency"] == 2))
                        and (c["max_precondition_dim"] == 10000 or (c["precondition_1d"]
                                                                    and c["precondition_frequency"] == 2)),
                        elementwise=False,
                        reference="pytorch_optimizer:SOAP", distribution="pytorch-optimizer",
                        group_state=("step",)),
]}
ALGORITHMS.update(REFERENCED_ALGORITHMS)
