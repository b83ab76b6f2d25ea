"""The equivalence certificate for any optimizer class against any reference class.

`optbench verify A --against B` and the tests of the newer algorithms call `certify_classes`: the same
runs, tolerances and state_dict round trip as `optbench.verify.compare_with_torch`, over the flags both
constructors share (`introspect_flags`) or the flags given.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from dataclasses import dataclass

import torch

from .optimizers.registry import IMPLEMENTATION_ONLY, Algorithm
from .verify import Check, compare_with_torch, quietly

MAX_INTROSPECTED_COMBINATIONS = 64


@dataclass(frozen=True)
class ClassPair(Algorithm):
    """Two given classes in the registry's shape, so the one certificate machinery runs them."""

    ours_class: type | None = None
    reference_class: type | None = None
    group_state: tuple = ()
    compare_state: bool = True  # False: parameters only (the two classes name their state differently)

    @property
    def ours(self) -> type:
        return self.ours_class

    @property
    def theirs(self) -> type:
        return self.reference_class

    def defaults(self) -> dict:
        return keyword_defaults(self.reference_class)


def keyword_defaults(cls: type) -> dict:
    """The keyword arguments of `cls.__init__` that have a default, with it."""
    return {
        n: p.default
        for n, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def introspect_flags(ours_cls: type, reference_cls: type) -> dict:
    """The flag space both constructors share: every boolean argument, and weight_decay at 0 and 0.1.

    Returned as {name: values}; crossed in full by `certify_classes` up to MAX_INTROSPECTED_COMBINATIONS,
    beyond that each flag is varied alone.
    """
    ours, theirs = keyword_defaults(ours_cls), keyword_defaults(reference_cls)
    flags = {}
    for name, default in theirs.items():
        if name not in ours or name in IMPLEMENTATION_ONLY:
            continue
        if isinstance(default, bool):
            flags[name] = (default, not default)
        elif name == "weight_decay" and isinstance(default, (int, float)):
            flags[name] = (default, 0.1 if default == 0 else 0.0)
    return flags


def flag_combinations(flags: dict) -> list[dict]:
    """Every crossing of `flags`, or, when that exceeds MAX_INTROSPECTED_COMBINATIONS, each flag alone."""
    full = [dict(zip(flags, values, strict=False)) for values in itertools.product(*flags.values())]
    if len(full) <= MAX_INTROSPECTED_COMBINATIONS:
        return full
    base = {name: values[0] for name, values in flags.items()}
    return [base] + [{**base, name: value} for name, values in flags.items() for value in values[1:]]


def certify_classes(
    ours_cls: type,
    reference_cls: type,
    flags: dict | None = None,
    hparams: dict | None = None,
    name: str | None = None,
    group_state: tuple = (),
    compare_state: bool = True,
    param_groups: int = 2,
    dtypes=(torch.float64,),
    progress=None,
) -> list[Check]:
    """The certificate of `ours_cls` against `reference_cls`, both `torch.optim.Optimizer` classes.

    flags: {argument: values to cross} (default: `introspect_flags`); hparams: fixed settings (default:
    the reference's own lr); compare_state=False compares parameters only, for classes whose state
    keys differ. Combinations the reference refuses to construct are left out. Same runs,
    tolerances and state_dict round trip as the torch certificate; returns one Check per combination
    and dtype (float64 crosses the flags, other dtypes run the first combination).
    """
    flags = introspect_flags(ours_cls, reference_cls) if flags is None else flags
    pair = ClassPair(
        name or f"{ours_cls.__name__} vs {reference_cls.__name__}",
        ours_cls.__name__,
        "",
        flags,
        ours_class=ours_cls,
        reference_class=reference_cls,
        group_state=group_state,
        compare_state=compare_state,
        param_groups=param_groups,
    )
    fixed = dict(hparams or {})
    fixed.setdefault("lr", pair.defaults().get("lr", 1e-3))
    pair = dataclasses.replace(pair, test_hparams=fixed)
    combos = [c for c in flag_combinations(flags) if _constructs(reference_cls, {**fixed, **c})]
    checks = []
    for dtype in dtypes:
        for combo in combos if dtype == torch.float64 else combos[:1]:
            checks.append(compare_with_torch(pair, combo, dtype))
            if progress:
                progress(checks[-1])
    return checks


def _constructs(cls: type, hparams: dict) -> bool:
    try:
        quietly(cls, [torch.zeros(2, requires_grad=True)], hparams)
    except Exception:  # noqa: BLE001 - any refusal means "not a valid combination"
        return False
    return True
