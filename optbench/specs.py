"""Parsing what users type: optimizer specs (`adam:lr=0.5,betas=0.9/0.99`) and number lists.

An optimizer spec is `[torch:]NAME[:key=value,...]`. NAME is an algorithm from the registry or a
preset (`momentum` = SGD with momentum 0.9). `torch:` runs torch.optim's class instead of ours,
for a side-by-side check. Values are numbers, `true`/`false`, `none`, or `/`-separated tuples.

NAME may also be a class outside optbench (`package.module:Class`, `path/to/file.py:Class`,
`pytorch_optimizer:lion`; see `optimizers.external`), whose settings are checked against its
constructor. `lookahead:inner=adam` wraps another algorithm than Lookahead's default SGD.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .errors import OptbenchError, did_you_mean, failure
from .optimizers.external import (
    ExternalAlgorithm,
    external_algorithm,
    hyperparameter_names,
    split_spec,
)
from .optimizers.registry import ALGORITHMS, PRESETS, TORCH_ALGORITHMS, Algorithm, get, is_external
from .values import CHOICES, check_hyperparameter, format_value, named_settings, parse_value


class Hyperparameters(Mapping):
    """A read-only name -> value mapping, hashable so that a spec can key a dict or a cache.

    Values are numbers, booleans, None, strings, tuples of these, or (in batched runs) tensors.
    """

    __slots__ = ("_values",)

    def __init__(self, values=()):
        self._values = dict(values)

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __hash__(self):
        return hash(tuple(sorted((name, _hashable(value)) for name, value in self._values.items())))

    def __eq__(self, other):
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __repr__(self):
        return f"Hyperparameters({self._values!r})"

    def __reduce__(self):
        return (Hyperparameters, (self._values,))


@dataclass(frozen=True)
class OptimizerSpec:
    """A parsed optimizer spec: parse it once where the user's text comes in, then pass this object.

    Frozen and hashable; `parse(text)` reads `[torch:]NAME[:key=value,...]` and `to_text()` writes
    a spec that parses back to the same algorithm, hyperparameters and class.
    """

    text: str  # what the user typed, used as the label in tables and plots
    algorithm: Algorithm = field(compare=False, repr=False)  # identified by its name, in `family`
    hparams: Mapping = field(default_factory=Hyperparameters)  # preset values overridden by the user's
    use_torch: bool = False
    preset: str | None = None  # the preset NAME named ('momentum'), whose built-in defaults it takes

    def __post_init__(self):
        if not isinstance(self.hparams, Hyperparameters):
            object.__setattr__(self, "hparams", Hyperparameters(self.hparams))

    def __hash__(self):
        return hash((self.text, self.algorithm.name, self.hparams, self.use_torch, self.preset))

    def __eq__(self, other):
        return (
            isinstance(other, OptimizerSpec)
            and self.algorithm.name == other.algorithm.name
            and (self.text, self.hparams, self.use_torch, self.preset)
            == (other.text, other.hparams, other.use_torch, other.preset)
        )

    def __reduce__(self):
        # the registry's Algorithm holds lambdas, which pickle cannot carry to a spawned process; an
        # external class is resolved again there (from its module or file)
        inner = _changed_inner(self.algorithm)
        return (
            _rebuild,
            (
                self.text,
                self.algorithm.name,
                dict(self.hparams),
                self.use_torch,
                isinstance(self.algorithm, ExternalAlgorithm),
                inner,
                self.preset,
            ),
        )

    @classmethod
    def parse(cls, text: str) -> OptimizerSpec:
        """'torch:adam:lr=0.1,betas=0.9/0.99' -> OptimizerSpec; see `parse_optimizer`."""
        return parse_optimizer(text)

    def to_text(self) -> str:
        """A spec text that `parse` reads back to this algorithm, class and hyperparameters
        (presets are written out: 'momentum' -> 'sgd:momentum=0.9')."""
        head = ("torch:" if self.use_torch else "") + self.algorithm.name
        inner = _changed_inner(self.algorithm)
        settings = {**({"inner": inner} if inner else {}), **self.hparams}
        if not settings:
            return head
        return f"{head}:" + ",".join(
            f"{name}={format_value(value)}" for name, value in sorted(settings.items())
        )

    @property
    def name(self) -> str:
        """The display name: the spec as typed, e.g. 'adam' or 'torch:adam:lr=0.1'."""
        return self.text

    @property
    def family(self) -> str:
        """The algorithm's registry name, used for colours: 'sgd' for 'momentum'."""
        return self.algorithm.name

    @property
    def defaults_name(self) -> str:
        """The name whose built-in defaults this spec takes (`tasks.defaults`): its preset
        ('nesterov'), else its algorithm ('sgd')."""
        return self.preset or self.algorithm.name

    @property
    def cls(self) -> type:
        return self.algorithm.theirs if self.use_torch else self.algorithm.ours

    @property
    def origin(self):
        """Where an external class came from (`external.Origin`); None for optbench's algorithms."""
        return getattr(self.algorithm, "origin", None)

    def resolved(self, defaults: dict | None = None) -> dict:
        """Every hyperparameter as the optimizer will get it: class defaults < `defaults` < spec."""
        return {**self.algorithm.defaults(), **(defaults or {}), **self.hparams}

    @property
    def has_fast_path(self) -> bool:
        from .optimizers.fast_path import FAST_ALGORITHMS

        return not self.use_torch and self.algorithm.name in FAST_ALGORITHMS

    def build(
        self,
        params,
        defaults: dict | None = None,
        fast: bool = False,
        expected_steps: int | None = None,
        **overrides,
    ) -> torch.optim.Optimizer:
        """Construct the optimizer (on the fast path when asked and the algorithm has one);
        torch's own argument errors become one-line user errors.

        expected_steps: the run's length in optimizer steps where the caller knows it; the fast path
        compiles only a run long enough to repay compiling (`fast_path.compiled.BREAK_EVEN_STEPS`)."""
        hparams = {**(defaults or {}), **self.hparams, **overrides}
        cls = self.cls
        if fast and self.has_fast_path:
            from .optimizers.fast_path import fast as fast_class

            cls = fast_class(cls)
        try:
            optimizer = cls(params, **hparams)
        except (ValueError, TypeError) as error:
            raise OptbenchError(f"{self.text}: {error}") from None
        if fast and self.has_fast_path:
            optimizer.expected_steps = expected_steps
        from .verify import ready

        return ready(optimizer)  # Schedule-Free starts in eval mode and refuses to step until told


def as_spec(optimizer: str | OptimizerSpec, supplied: dict | None = None) -> OptimizerSpec:
    """The spec itself, or the text parsed (`parse_optimizer`, with `supplied`): for functions that
    accept either. A class is taken as the 'module:Class' text naming it (one defined in `__main__`,
    such as a notebook's, is refused: worker processes and reruns could not find it by name). Raises
    OptbenchError for anything else."""
    if isinstance(optimizer, OptimizerSpec):
        return optimizer
    if isinstance(optimizer, type):
        if optimizer.__module__ == "__main__" or "<locals>" in optimizer.__qualname__:
            raise OptbenchError(
                f"optimizer class {optimizer.__qualname__} is defined in __main__ or inside a function, "
                f"where optbench cannot find it by name: put it in a file and pass 'file.py:{optimizer.__name__}'"
            )
        optimizer = f"{optimizer.__module__}:{optimizer.__qualname__}"
    if not isinstance(optimizer, str):
        raise OptbenchError(
            "an optimizer is a name or a spec such as 'adam', 'adam:betas=0.9/0.99' or 'mymod:MyOpt', "
            f"or a class, got {type(optimizer).__name__} {optimizer!r}"
        )
    return parse_optimizer(optimizer, supplied)


def _rebuild(
    text: str,
    algorithm: str,
    hparams: dict,
    use_torch: bool,
    external: bool = False,
    inner: str | None = None,
    preset: str | None = None,
) -> OptimizerSpec:
    found = external_algorithm(algorithm) if external else ALGORITHMS[algorithm]
    algorithm = dataclasses.replace(found, inner=inner) if inner else found
    return OptimizerSpec(text, algorithm, hparams, use_torch, preset)


def _changed_inner(algorithm: Algorithm) -> str | None:
    """The inner algorithm of a wrapper (Lookahead) when it is not the registry's default, else None."""
    inner = getattr(algorithm, "inner", "")
    return inner if inner and inner != ALGORITHMS[algorithm.name].inner else None


def _external(text: str, use_torch: bool) -> tuple[Algorithm, str]:
    """A class outside optbench: ('module:Class:settings' -> its ExternalAlgorithm, 'settings')."""
    if use_torch:
        raise OptbenchError(
            f"'torch:' names torch.optim's twin of an optbench algorithm; "
            f"'{text}' names a class: drop 'torch:'"
        )
    target, settings = split_spec(text)
    return external_algorithm(target), settings


def _with_inner(algorithm: Algorithm, settings: str, text: str) -> tuple[Algorithm, str]:
    """A wrapper's `inner=NAME` setting taken out of `settings` and built into its algorithm."""
    if not getattr(algorithm, "inner", ""):
        return algorithm, settings
    items = [item for item in settings.split(",") if item.strip()] if settings else []
    chosen = [item.partition("=")[2].strip() for item in items if item.partition("=")[0].strip() == "inner"]
    if not chosen:
        return algorithm, settings
    inner = chosen[-1].lower()
    if inner not in TORCH_ALGORITHMS or inner == "lbfgs":
        raise did_you_mean(
            f"inner optimizer of {algorithm.name} (in '{text}')",
            chosen[-1],
            [name for name in TORCH_ALGORITHMS if name != "lbfgs"],
        )
    rest = [item for item in items if item.partition("=")[0].strip() != "inner"]
    return dataclasses.replace(algorithm, inner=inner), ",".join(rest)


def allowed_hyperparameters(algorithm: Algorithm) -> list[str]:
    """The setting names a spec may give `algorithm`: its constructor's keyword defaults (ours, which
    for the zoo algorithms differs from the reference's signature), or an external class's names."""
    if isinstance(algorithm, ExternalAlgorithm):
        return hyperparameter_names(algorithm.cls)
    return list(algorithm.defaults())


def _takes_text(algorithm: Algorithm, name: str) -> bool:
    """Whether setting `name` may be a string: the known string options, any setting of a class outside
    optbench (whose types optbench cannot know)."""
    return name in CHOICES or isinstance(algorithm, ExternalAlgorithm)


def _hashable(value):
    return tuple(map(_hashable, value)) if isinstance(value, list) else value


def parse_optimizer(text: str, supplied: dict | None = None) -> OptimizerSpec:
    """'torch:adam:lr=0.1,betas=0.9/0.99' -> OptimizerSpec; bad names and values are user errors.

    The spec is built once on a dummy parameter so that torch's range checks refuse bad values before
    any work. supplied: settings the caller gives every run itself (the benchmark tunes lr), with a
    value for that check build only (where the constructor takes them), so a class whose constructor
    requires them is not refused."""
    rest, use_torch = text.strip(), False
    if rest.lower().startswith("torch:"):
        rest, use_torch = rest[len("torch:") :], True
    name, _, settings = rest.partition(":")
    if not name:
        raise OptbenchError(f"empty optimizer name in '{text}'")
    key, preset = name.lower(), None
    if is_external(rest):
        (algorithm, settings), hparams = _external(rest, use_torch), {}
    elif key in PRESETS:
        base_name, hparams = PRESETS[key]
        algorithm, preset = ALGORITHMS[base_name], key
        hparams = dict(hparams)
    else:
        algorithm, hparams = get(name), {}
    algorithm, settings = _with_inner(algorithm, settings, text)
    allowed = allowed_hyperparameters(algorithm)
    for hname, raw, _item in named_settings(
        settings or "", text, allowed, f"hyperparameter of {algorithm.name}"
    ):
        value = parse_value(raw)
        if "_" in raw and not isinstance(value, str):  # float() reads '1_0' as 10: a typo, not a value
            raise OptbenchError(f"{hname}={raw} in '{text}' is not a number")
        if isinstance(value, str) and _takes_text(algorithm, hname) and hname not in CHOICES:
            hparams[hname] = value  # a user's class may take text; its own constructor checks it
            continue
        hparams[hname] = check_hyperparameter(
            hname, value, algorithm.defaults().get(hname), f"{hname}={raw}", text
        )
    if algorithm.sparse_grad:
        raise OptbenchError(
            f"{algorithm.name} steps sparse gradients only (nn.Embedding(sparse=True)); "
            "every optbench task gives dense gradients: use adam"
        )
    spec = OptimizerSpec(text.strip(), algorithm, hparams, use_torch, preset)
    with left_to_the_run(spec):
        given = {name: value for name, value in (supplied or {}).items() if name in allowed}
        spec.build([torch.zeros(2, 2, requires_grad=True)], given)  # torch's own range checks
    return spec


@contextmanager
def left_to_the_run(spec: OptimizerSpec):
    """Around a check that builds `spec`'s optimizer before any work. An argument error (ValueError or
    TypeError, an OptbenchError by then) is refused as ever; any other exception from a user's class is
    its own failure: the check lets it pass, and each run of that class fails and is recorded with the
    message while the other runs keep going. optbench's own classes raising is a bug, and propagates.
    A user's constructor raising SystemExit or KeyboardInterrupt is refused in one line (left to the
    run, it would end the command silently, or read as a Ctrl-C)."""
    try:
        yield
    except OptbenchError:
        raise
    except (SystemExit, KeyboardInterrupt) as error:
        if spec.origin is None:
            raise
        raise OptbenchError(f"{spec.text}: its constructor raised {failure(error)}") from None
    except Exception:  # noqa: BLE001
        if spec.origin is None:
            raise
